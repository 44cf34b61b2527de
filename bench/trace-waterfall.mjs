// One trace as a waterfall (SVG, and PNG rendered from it by resvg), from the agent's spans file(s) (`--spans-file`:
// OTLP/JSON lines), as a tracing UI would draw it: a row per span, nested under its parent, on one time axis. The
// application's own span (the remote parent) heads it. For docs/tracing.md.
//   node bench/trace-waterfall.mjs SPANS_FILE... (--trace TRACE_ID | --most-spans) --out FILE (writes FILE.svg, FILE.png)
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { root } from "./common.mjs";

const { toSvg, renderPng, FONT_FAMILY } = await import(path.join(root, "agent/dist/bench/plot.js"));

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    trace: { type: "string" },
    "most-spans": { type: "boolean" },
    out: { type: "string" },
    title: { type: "string" },
    "max-launches": { type: "string", default: "12" },
  },
});
if (positionals.length === 0 || !values.out || !(values.trace || values["most-spans"])) {
  console.error("usage: node bench/trace-waterfall.mjs SPANS_FILE... (--trace TRACE_ID | --most-spans) --out FILE [--title T]");
  process.exit(2);
}

/** trace id -> its spans */
const traces = new Map();
for (const file of positionals)
  for (const line of readFileSync(file, "utf8").split("\n").filter(Boolean))
    for (const rs of JSON.parse(line).resourceSpans ?? []) {
      const service = rs.resource?.attributes?.find((a) => a.key === "service.name")?.value?.stringValue ?? "";
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? []) {
          const list = traces.get(s.traceId) ?? [];
          list.push({ ...s, service, start: BigInt(s.startTimeUnixNano), end: BigInt(s.endTimeUnixNano) });
          traces.set(s.traceId, list);
        }
    }
// --most-spans: the trace joined to an application's span (a remote parent) with the most spans
const joined = [...traces.entries()].filter(([, spans]) => spans.some((s) => s.flags & 0x100 && s.flags & 0x200));
const pick = values.trace ?? joined.sort((a, b) => b[1].length - a[1].length)[0]?.[0];
const spans = traces.get(pick);
if (!spans) {
  console.error(`trace-waterfall: no trace ${pick ?? "joined to an application span"} in ${positionals.join(", ")}`);
  process.exit(1);
}

// rows: depth-first from the spans whose parent is not in the file (the application's, remote)
const byId = new Map(spans.map((s) => [s.spanId, s]));
const children = new Map();
for (const s of spans) {
  const p = byId.has(s.parentSpanId) ? s.parentSpanId : "";
  children.set(p, [...(children.get(p) ?? []), s]);
}
for (const list of children.values()) list.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
const rows = [];
const appParents = [...new Set(spans.filter((s) => s.parentSpanId && !byId.has(s.parentSpanId)).map((s) => s.parentSpanId))];
// a parent's launch spans beyond --max-launches are one row that says how many
const maxLaunches = Number(values["max-launches"]);
const isLaunch = (s) => s.attributes?.some((a) => a.key === "tailguard.launch.op");
const walk = (s, depth) => {
  rows.push({ s, depth });
  let launches = 0;
  const more = [];
  for (const c of children.get(s.spanId) ?? []) {
    if (isLaunch(c) && ++launches > maxLaunches) more.push(c);
    else walk(c, depth + 1);
  }
  if (more.length) rows.push({ more, depth: depth + 1 });
};
for (const top of children.get("") ?? []) walk(top, 1);

const t0 = spans.reduce((m, s) => (s.start < m ? s.start : m), spans[0].start);
const t1 = spans.reduce((m, s) => (s.end > m ? s.end : m), spans[0].end);
const totalNs = Number(t1 - t0) || 1;

const kindOf = (s) =>
  s.name.startsWith("request") ? "request" : s.name === "gpu.queue" ? "queue" : s.name === "gpu.exec" ? "exec" : s.name === "hold" ? "hold"
    : s.attributes?.some((a) => a.key === "nvtx.domain" || a.key.startsWith("tailguard.nvtx")) ? "nvtx"
      : s.attributes?.some((a) => a.key === "tailguard.launch.op") ? "launch" : "other";
const COLOR = { app: [150, 150, 150], request: [31, 119, 180], nvtx: [148, 103, 189], queue: [255, 127, 14], exec: [44, 160, 44], hold: [214, 39, 40], launch: [90, 90, 90], other: [140, 86, 75] };
const label = (s) => {
  const name = s.name.length > 46 ? `${s.name.slice(0, 45)}…` : s.name;
  return s.name.startsWith("request") ? `${name} (${s.service})` : name;
};

const W = 1100, LABEL = 380, ROW = 22, TOP = 56, X0 = LABEL + 10, X1 = W - 20;
const H = TOP + (rows.length + 1) * ROW + 40;
const x = (t) => X0 + ((X1 - X0) * Number(t - t0)) / totalNs;
const shapes = [];
const text = (tx, ty, s, size = 12, color = [40, 40, 40], anchor = "start") => shapes.push({ kind: "text", x: tx, y: ty, text: s, size, color, anchor });
text(10, 22, values.title ?? `trace ${pick}`, 15);
text(10, 40, `${spans.length} spans by tailguard under the application's span; ${(totalNs / 1e6).toFixed(3)} ms`, 11, [90, 90, 90]);
// time axis
for (let i = 0; i <= 4; i++) {
  const gx = X0 + ((X1 - X0) * i) / 4;
  shapes.push({ kind: "line", points: [[gx, TOP - 6], [gx, H - 30]], color: [225, 225, 225], width: 1 });
  text(gx, H - 14, `${((totalNs * i) / 4 / 1e6).toFixed(2)} ms`, 10, [90, 90, 90], "middle");
}
// the application's span: known only by its id (it is another process's), drawn across the whole trace
let y = TOP;
text(10, y + 15, `application span ${appParents.join(", ")} (remote parent)`, 11, [110, 110, 110]);
shapes.push({ kind: "rect", x: X0, y: y + 4, w: X1 - X0, h: ROW - 8, color: COLOR.app, opacity: 0.25 });
for (const { s, more, depth } of rows) {
  y += ROW;
  if (more) {
    text(10 + depth * 12, y + 15, `… ${more.length} more launches`, 11, [110, 110, 110]);
    for (const m of more) shapes.push({ kind: "rect", x: x(m.start), y: y + 4, w: 2, h: ROW - 8, color: COLOR.launch, opacity: 0.6 });
    continue;
  }
  const k = kindOf(s);
  text(10 + depth * 12, y + 15, label(s), 11);
  const bx = x(s.start), bw = Math.max(2, x(s.end) - bx);
  shapes.push({ kind: "rect", x: bx, y: y + 4, w: bw, h: ROW - 8, color: COLOR[k], opacity: 0.85 });
}
const scene = { width: W, height: H, title: values.title ?? `trace ${pick}`, shapes };
const svg = toSvg(scene);
writeFileSync(`${values.out}.svg`, svg);
const png = renderPng(svg);
if ("error" in png) {
  console.error(`trace-waterfall: no PNG: ${png.error}`);
  process.exit(1);
}
writeFileSync(`${values.out}.png`, png.png);
console.log(`${values.out}.svg, ${values.out}.png: trace ${pick}, ${spans.length} spans (font ${FONT_FAMILY})`);
