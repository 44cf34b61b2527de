// Which of bench/gpu/tracing.py's traced requests joined the app's trace: reads its traceparents.jsonl and the agent's
// spans file(s) (`--spans-file`: OTLP/JSON, one ExportTraceServiceRequest per line) and counts, per traceparent, a
// tailguard span in that trace whose parent is the app's span, and an NVTX range span (named by the range's message)
// in that trace.
//   node bench/gpu/tracing-check.mjs TRACEPARENTS SPANS_FILE... [--range resnet18]
import { existsSync, readFileSync } from "node:fs";

const args = process.argv.slice(2);
const at = args.indexOf("--range");
const range = at >= 0 ? args.splice(at, 2)[1] : "resnet18";
const [tpFile, ...spanFiles] = args;
if (!tpFile || spanFiles.length === 0) {
  console.error("usage: node bench/gpu/tracing-check.mjs TRACEPARENTS SPANS_FILE... [--range NAME]");
  process.exit(2);
}
const wanted = readFileSync(tpFile, "utf8").split("\n").filter(Boolean).map((tp) => {
  const [, trace, span] = tp.split("-");
  return { trace, span };
});
/** trace id -> its spans (name, parent) */
const traces = new Map();
let spans = 0;
for (const file of spanFiles.filter((f) => existsSync(f) || console.error(`tracing-check: no ${f}: no spans were written`)))
  for (const line of readFileSync(file, "utf8").split("\n").filter(Boolean))
    for (const rs of JSON.parse(line).resourceSpans ?? [])
      for (const ss of rs.scopeSpans ?? [])
        for (const s of ss.spans ?? []) {
          spans++;
          const list = traces.get(s.traceId) ?? [];
          list.push({ name: s.name, parent: s.parentSpanId ?? "" });
          traces.set(s.traceId, list);
        }
let joined = 0;
let withRange = 0;
for (const { trace, span } of wanted) {
  const mine = traces.get(trace) ?? [];
  if (mine.some((s) => s.parent === span)) joined++;
  if (mine.some((s) => s.name === range)) withRange++;
}
const pct = (n) => (wanted.length ? ((100 * n) / wanted.length).toFixed(2) : "-");
const out = { traced_requests: wanted.length, spans_read: spans, joined, joined_pct: Number(pct(joined)), with_nvtx_range: withRange,
  with_nvtx_range_pct: Number(pct(withRange)) };
console.log(JSON.stringify(out));
process.exit(wanted.length > 0 && joined === wanted.length && withRange === wanted.length ? 0 : 1);
