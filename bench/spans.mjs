// `node bench/spans.mjs`: span volume per load under the span policy (docs/agent.md, Span volume). The real agent
// (`tailguard agent --demo`, its own process: a high-priority request stream and a low-priority batch job on the
// simulated GPU) exports spans over OTLP/HTTP protobuf to a loopback sink in this process, which counts them as they
// arrive; for each load (the demo, the demo with --slo-ms 3) and each --spans mode (all, policy), spans/s received
// over SECONDS after a warm-up, the agent's own count of spans dropped (queue full) and of request windows; median of
// RUNS runs, the loads and modes interleaved within each run so that the machine's drift touches them alike.
//
// Usage: node bench/spans.mjs [--runs 3] [--seconds 15] [--out FILE.json] (default: results/spans-DATE/spans.json)
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { countSpans, median, root } from "./common.mjs";
import { provenance, resultsPath } from "./report.mjs";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    seconds: { type: "string", default: "15" },
    out: { type: "string" },
  },
});
const runs = Number(values.runs);
const seconds = Number(values.seconds);
if (!(Number.isInteger(runs) && runs >= 1) || !(seconds > 0)) {
  console.error(`bench/spans.mjs: --runs must be a whole number from 1 and --seconds a positive number, not ${runs} and ${seconds}`);
  process.exit(2);
}
const WARMUP_MS = 3000;

const { AGENT_NODE_OPTIONS } = await import(path.join(root, "agent/dist/cli/agent.js"));

const received = { spans: 0, errors: 0 };
const sink = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.url === "/v1/traces") {
      const n = countSpans(req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body, { errors: true });
      received.spans += n.spans;
      received.errors += n.errors;
    }
    res.writeHead(200, { "content-type": "application/x-protobuf" });
    res.end();
  });
});
await new Promise((r) => sink.listen(0, "127.0.0.1", r));
const sinkUrl = `http://127.0.0.1:${sink.address().port}`;
const work = mkdtempSync(path.join(os.tmpdir(), "tg-bench-spans-"));

/** `tailguard agent --demo` with `args` for WARMUP + SECONDS: spans and ERROR spans received per second after the
 *  warm-up, and what the agent says at exit. */
async function once(name, args) {
  const rings = path.join(work, `rings-${name}`);
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("OTEL_")) delete env[k];
  Object.assign(env, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${sinkUrl}/v1/traces`, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" });
  const agent = spawn(process.execPath, [...AGENT_NODE_OPTIONS.split(" "), path.join(root, "agent/dist/cli.js"), "agent", "--demo",
    "--dir", rings, "--port", "0", ...args], { env, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  agent.stdout.on("data", (d) => (out += d));
  let exited = null;
  const exit = new Promise((r) => agent.on("exit", (code, signal) => r((exited = { code, signal }))));
  while (!existsSync(path.join(rings, "agent.pid"))) {
    if (exited) throw new Error(`${name}: the agent exited at start (${JSON.stringify(exited)}):\n${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const before = { ...received, t: Date.now() };
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = { ...received, t: Date.now() };
  agent.kill("SIGTERM");
  await exit;
  rmSync(rings, { recursive: true, force: true });
  const s = (after.t - before.t) / 1000;
  const stop = /stopped after (\d+) records, (\d+) request windows, (\d+) holds;.*spans (\d+) exported, (\d+) dropped, (\d+) failed/.exec(out);
  if (!stop) throw new Error(`${name}: the agent did not say what it did:\n${out.slice(-2000)}`);
  const total = WARMUP_MS / 1000 + s; // the agent's counts are over its whole run
  return {
    spans_per_s: (after.spans - before.spans) / s,
    error_spans_per_s: (after.errors - before.errors) / s,
    windows_per_s: Number(stop[2]) / total,
    agent_exported: Number(stop[4]),
    agent_dropped: Number(stop[5]),
    agent_failed: Number(stop[6]),
  };
}

const CASES = [
  { load: "demo", spans: "all", args: ["--spans", "all"] },
  { load: "demo", spans: "policy", args: [] },
  { load: "demo --slo-ms 3", spans: "all", args: ["--spans", "all", "--slo-ms", "3"] },
  { load: "demo --slo-ms 3", spans: "policy", args: ["--slo-ms", "3"] },
];
const byCase = CASES.map(() => []);
for (let r = 0; r < runs; r++)
  for (const [i, c] of CASES.entries()) {
    const x = await once(`${r}-${i}`, c.args);
    byCase[i].push(x);
    console.log(`run ${r + 1}/${runs}  ${c.load.padEnd(16)} --spans ${c.spans.padEnd(6)}  ${Math.round(x.spans_per_s)} spans/s ` +
      `(${Math.round(x.error_spans_per_s)} ERROR), ${Math.round(x.windows_per_s)} windows/s, agent dropped ${x.agent_dropped}`);
  }
sink.close();
rmSync(work, { recursive: true, force: true });

const med = (xs, k) => Math.round(median(xs.map((x) => x[k])));
const cases = CASES.map((c, i) => ({
  load: c.load,
  spans: c.spans,
  args: c.args,
  spans_per_s_median: med(byCase[i], "spans_per_s"),
  error_spans_per_s_median: med(byCase[i], "error_spans_per_s"),
  windows_per_s_median: med(byCase[i], "windows_per_s"),
  agent_dropped_median: med(byCase[i], "agent_dropped"),
  runs: byCase[i],
}));
console.log(`\nmedian of ${runs} runs of ${seconds} s (after ${WARMUP_MS / 1000} s of warm-up):`);
console.log("| load | --spans | spans/s | of which ERROR | request windows/s | spans dropped by the agent per run |");
console.log("|---|---|---|---|---|---|");
for (const c of cases)
  console.log(`| ${c.load} | ${c.spans} | ${c.spans_per_s_median} | ${c.error_spans_per_s_median} | ${c.windows_per_s_median} | ${c.agent_dropped_median} |`);
const out = resultsPath("spans", values.out, "spans.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ ...provenance(), seconds, warmup_s: WARMUP_MS / 1000, runs, cases }, null, 2) + "\n");
console.log(`results: ${path.relative(process.cwd(), out)}`);
