-- Runs an Argo CD health script (manifests/gitops/argocd/health.lua) the way Argo CD
-- does, with the live object as the global `obj`, on each object of a JSON object or
-- List on stdin (`kubectl get -o json`). Prints "<namespace>/<name>\t<status>\t<message>".
--   lua5.1 tests/gitops/argocd_health.lua HEALTH_LUA < objects.json
-- Lua 5.1 because Argo CD's interpreter (gopher-lua) implements 5.1; lua-cjson reads
-- JSON null as cjson.null, which Kubernetes objects do not use.
local cjson = require("cjson")
local file = assert(io.open(arg[1]), "cannot open " .. tostring(arg[1]))
local script = file:read("*a")
file:close()
local doc = cjson.decode(io.read("*a"))
local items = doc.items or {doc}
for _, o in ipairs(items) do
  obj = o
  local check = assert(loadstring(script, "health.lua"))
  local ok, hs = pcall(check)
  if not ok then
    io.stderr:write(o.metadata.name .. ": health script failed: " .. tostring(hs) .. "\n")
    os.exit(1)
  end
  print((o.metadata.namespace or "") .. "/" .. o.metadata.name .. "\t" .. tostring(hs.status) .. "\t" ..
    tostring(hs.message or ""))
end
