// Draws manifests/monitoring/dashboard.json from a real Prometheus, for the
// monitoring e2e test's screenshot: Grafana is not packaged in Debian, so this
// stands in for it. It follows the dashboard's own layout (gridPos: 24 columns,
// rows of 30 px), titles, queries, legendFormat and units, querying
// /api/v1/query_range of the Prometheus whose page it runs in (same origin).
// A WebDriver async script: arguments are (dashboard, minutes, done); it calls
// done(summary) with the number of series each panel drew.
const [dashboard, minutes, done] = arguments;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#2f5fd0", "#d9822b", "#1f8a4c", "#c8352b", "#7b4fc9", "#148c95"];
const end = Date.now() / 1000, start = end - minutes * 60, step = Math.max(1, Math.round((end - start) / 240));

function el(tag, attrs, text) {
  const e = document.createElementNS(tag === "div" || tag === "span" ? "http://www.w3.org/1999/xhtml" : SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function legend(format, metric) {
  return (format || "").replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k) => metric[k] ?? "");
}
function fmt(v, unit) {
  if (!isFinite(v)) return "";
  const n = x => (Math.abs(x) >= 1000 ? +(x / 1000).toPrecision(3) + "k" : +x.toPrecision(3) + "");
  if (unit === "s") return v >= 1 || v === 0 ? n(v) + " s" : v >= 1e-3 ? n(v * 1e3) + " ms" : n(v * 1e6) + " µs";
  if (unit === "ops") return n(v) + "/s";
  return n(v);
}

async function panel(p) {
  const unit = p.fieldConfig?.defaults?.unit || "short";
  const series = [];
  for (const t of p.targets) {
    const url = "/api/v1/query_range?query=" + encodeURIComponent(t.expr) + "&start=" + start + "&end=" + end + "&step=" + step;
    const r = await (await fetch(url)).json();
    for (const s of r.data?.result || []) {
      series.push({ name: legend(t.legendFormat, s.metric) || t.expr, points: s.values.map(([x, y]) => [x, Number(y)]) });
    }
  }
  const box = el("div", { class: "panel", style: `grid-column: ${p.gridPos.x + 1} / span ${p.gridPos.w}; grid-row: ${p.gridPos.y + 1} / span ${p.gridPos.h}` });
  box.append(el("div", { class: "title" }, p.title));
  const w = 600, h = 190, left = 52, bottom = 18;
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none", class: "plot" });
  const ys = series.flatMap(s => s.points.map(q => q[1])).filter(isFinite);
  const top = Math.max(0, ...ys);
  const ymax = top > 0 ? top * 1.1 : 1;
  const X = x => left + ((x - start) / (end - start)) * (w - left - 4);
  const Y = y => h - bottom - (y / ymax) * (h - bottom - 6);
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    svg.append(el("line", { x1: left, x2: w, y1: Y(v), y2: Y(v), stroke: "#e3e6ee" }));
    svg.append(el("text", { x: left - 4, y: Y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#6b7385" }, fmt(v, unit)));
  }
  for (let m = 0; m <= minutes; m += Math.max(1, Math.round(minutes / 5))) {
    const x = X(end - m * 60);
    svg.append(el("text", { x, y: h - 4, "text-anchor": m ? "middle" : "end", "font-size": 10, fill: "#6b7385" }, m ? "-" + m + "m" : "now"));
  }
  series.forEach((s, i) => {
    const pts = s.points.filter(q => isFinite(q[1])).map(q => X(q[0]).toFixed(1) + "," + Y(q[1]).toFixed(1)).join(" ");
    svg.append(el("polyline", { points: pts, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.8 }));
  });
  box.append(svg);
  const keys = el("div", { class: "legend" });
  series.forEach((s, i) => {
    const last = s.points.length ? s.points[s.points.length - 1][1] : NaN;
    const k = el("span", { style: "color:" + COLORS[i % COLORS.length] }, "━ ");
    keys.append(k, el("span", {}, s.name + " " + fmt(last, unit) + "   "));
  });
  if (!series.length) keys.append(el("span", {}, "no data"));
  box.append(keys);
  return [box, series.length];
}

(async () => {
  document.head.innerHTML = "";
  document.body.innerHTML = "";
  const style = document.createElement("style");
  style.textContent = `body { margin: 0; background: #f6f7fa; font: 13px system-ui, "DejaVu Sans", sans-serif; color: #1d2330; }
    .bar { background: #1d2330; color: #fff; padding: 9px 16px; font-size: 15px; }
    .bar span { color: #b9c0d0; font-size: 12px; margin-left: 12px; }
    .grid { display: grid; grid-template-columns: repeat(24, 1fr); grid-auto-rows: 30px; gap: 8px; padding: 10px; }
    .panel { background: #fff; border: 1px solid #e3e6ee; border-radius: 4px; padding: 6px 8px; display: flex; flex-direction: column; min-width: 0; }
    .title { font-weight: 600; margin-bottom: 2px; }
    .plot { flex: 1; width: 100%; min-height: 0; }
    .legend { font-size: 11px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }`;
  document.head.append(style);
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.textContent = dashboard.title;
  const sub = document.createElement("span");
  sub.textContent = "manifests/monitoring/dashboard.json · last " + minutes + " min · drawn from Prometheus by the e2e test";
  bar.append(sub);
  const grid = document.createElement("div");
  grid.className = "grid";
  document.body.append(bar, grid);
  const summary = {};
  for (const p of dashboard.panels) {
    try {
      const [box, n] = await panel(p);
      grid.append(box);
      summary[p.title] = n;
    } catch (e) {
      summary[p.title] = "error: " + e;
    }
  }
  done(summary);
})();
