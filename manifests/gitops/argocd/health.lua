-- Argo CD health of a cronlane ScheduledTask, WorkerPool or Backfill, from the
-- conditions the operator writes (docs/crd-reference.md). Argo CD runs it with the
-- live object as `obj`; kustomization.yaml here puts this file in argocd-cm for each kind.
--   Stalled=True                  Degraded    the spec needs a person (reason, message)
--   Reconciling=True, or an older
--   observedGeneration, or none   Progressing the operator has not seen this spec yet
--   Ready=True, reason Suspended  Suspended   spec.suspend: intended, nothing fires
--   Ready=True, Complete=False    Progressing a Backfill still firing
--   Ready=True                    Healthy
--   Ready=False                   Progressing retried by the operator (e.g. Kafka down)
local hs = {status = "Progressing", message = "Waiting for the cronlane operator to observe this object"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and (obj.status.observedGeneration == nil or obj.status.observedGeneration < generation) then
  hs.message = "Waiting for the cronlane operator to observe generation " .. generation
  return hs
end
local found = {}
for _, c in ipairs(obj.status.conditions) do
  found[c.type] = c
end
local function describe(c)
  return (c.reason or "") .. ": " .. (c.message or "")
end
if found.Stalled ~= nil and found.Stalled.status == "True" then
  return {status = "Degraded", message = describe(found.Stalled)}
end
if found.Reconciling ~= nil and found.Reconciling.status == "True" then
  hs.message = describe(found.Reconciling)
  return hs
end
local ready = found.Ready
if ready == nil then
  return hs
end
if ready.status == "True" then
  if ready.reason == "Suspended" then
    return {status = "Suspended", message = describe(ready)}
  end
  if found.Complete ~= nil and found.Complete.status == "False" then
    return {status = "Progressing", message = describe(ready)}
  end
  return {status = "Healthy", message = describe(ready)}
end
hs.message = describe(ready)
return hs
