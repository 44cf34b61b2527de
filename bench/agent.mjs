// `npm run bench:agent`: the agent's ingest speed, sustained load, memory and span export (issue 4's targets).
//
//  ingest     records decoded, assembled into request windows and recorded into the HDR histograms per second, on
//             one core: the agent's own code (agent/dist/ingest/windows.js + histograms.js) over batches of real-layout
//             records (windows of K launches, 1 in 8 launches timed, a sync, begin and end), median of repeated
//             runs; baseline in the same run: a loop that only reads each record's kind.
//  sustained  the real agent (`tailguard agent`, its own process) while a producer process makes records through
//             the shim at a fixed rate (bench/agent/producer.c on the do-nothing driver) for SECONDS: records the
//             agent took vs records the shim made and dropped (zero loss = dropped 0 and every record taken), the
//             agent's peak RSS (VmHWM), and spans: one per request window (plus launch spans for slow and sampled
//             windows) exported over OTLP/HTTP protobuf to a loopback sink in this process, counted as they arrive.
//             Then again for at most 20 s without span export (metrics only), to show what the spans cost.
//
// Usage: node bench/agent.mjs [--runs 7] [--records 4000000] [--rate 1000000] [--seconds 60] [--out FILE.json]
// (default: results/agent-DATE/agent.json, bench/report.mjs)
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { gunzipSync } from "node:zlib";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { buildNullDriver, countSpans, include, median, root } from "./common.mjs";
import { provenance, resultsPath } from "./report.mjs";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "7" },
    records: { type: "string", default: "4000000" },
    rate: { type: "string", default: "1000000" },
    seconds: { type: "string", default: "60" },
    k: { type: "string", default: "16" },
    out: { type: "string" },
  },
});
const runs = Number(values.runs);
const k = Number(values.k);

const { WindowAssembler } = await import(path.join(root, "agent/dist/ingest/windows.js"));
const { AGENT_NODE_OPTIONS } = await import(path.join(root, "agent/dist/cli/agent.js"));
const { Histograms } = await import(path.join(root, "agent/dist/telemetry/histograms.js"));
const { Kind, Flag, RECORD_SIZE, RecordField } = await import(path.join(root, "agent/dist/ingest/record.js"));


// ---- ingest ----

/** Batches of records laid out as the shim writes them: per window, begin, K launches (1 in 8 timed), sync, end. */
function makeBatches(total, batchRecords = 1 << 16) {
  const perWindow = k + 3;
  const windows = Math.ceil(total / perWindow);
  const buf = Buffer.alloc(windows * perWindow * RECORD_SIZE);
  let o = 0;
  let t = 1_000_000_000_000n;
  const put = (kind, op, dur, flags, fill) => {
    buf[o + RecordField.kind[0]] = kind;
    buf[o + RecordField.op[0]] = op;
    buf.writeBigUInt64LE(t, RecordField.t_start[0] + o);
    buf.writeUInt32LE(dur, RecordField.dur[0] + o);
    buf.writeUInt16LE(flags, RecordField.flags[0] + o);
    fill?.(o);
    o += RECORD_SIZE;
    t += 2000n;
  };
  for (let w = 1; w <= windows; w++) {
    const begin = t;
    put(Kind.WINDOW, 1, 0, 0, (at) => buf.writeBigUInt64LE(BigInt(w), RecordField["window.seq"][0] + at));
    for (let i = 0; i < k; i++)
      put(Kind.LAUNCH, 1, i % 8 === 0 ? 1500 + (w % 700) : 0, i % 8 === 0 ? 0 : Flag.UNTIMED, (at) => {
        buf.writeUInt32LE(1 + (i % 4), RecordField["launch.kernel"][0] + at);
        buf.writeUInt32LE(128, RecordField["launch.grid"][0] + at);
      });
    put(Kind.SYNC, 1, 50_000, 0);
    const dur = Number(t - begin) + (w % 97) * 1000;
    put(Kind.WINDOW, 2, dur, 0, (at) => {
      buf.writeBigUInt64LE(begin, RecordField.t_start[0] + at);
      buf.writeBigUInt64LE(BigInt(w), RecordField["window.seq"][0] + at);
      buf.writeUInt32LE(k, RecordField["window.launches"][0] + at);
      buf.writeUInt32LE(1, RecordField["window.streams"][0] + at);
    });
  }
  const batches = [];
  for (let at = 0; at < buf.length; at += batchRecords * RECORD_SIZE) batches.push(buf.subarray(at, at + batchRecords * RECORD_SIZE));
  return { batches, records: buf.length / RECORD_SIZE };
}

function ingestOnce({ batches, records }) {
  const histograms = new Histograms();
  const key = { pid: 1, priority: 0, gpu: "GPU-bench" };
  const request = histograms.series("request_latency", key);
  const hold = histograms.series("hold_time", key);
  const api = histograms.series("launch_api_time", key);
  const names = new Map([[1, "gemm"], [2, "softmax"], [3, "layernorm"], [4, "attention"]]);
  const meta = { pid: 1, ppid: 0, cmdline: ["bench"], priority: 0, gpu: null, anchorMonotonic: 0n, anchorRealtime: 0n, resource: {} };
  let windows = 0;
  const a = new WindowAssembler(meta, null, {
    window: (_, w) => {
      request.record(w.durNs);
      windows++;
    },
    hold: (_, h) => hold.record(h.durNs),
    launchApiTime: (_, ns) => api.record(ns),
    // as in the agent: launches are decoded for the windows whose spans show them (slow or sampled, ~1-2 %)
    wantsLaunches: () => Math.random() < 0.02,
  }, names);
  const t0 = process.hrtime.bigint();
  for (const b of batches) {
    a.ingest(b);
    a.settle();
  }
  a.settle(true);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const ok = windows === Math.floor(records / (k + 3)) && request.count === windows;
  histograms.close();
  if (!ok) throw new Error(`ingest lost windows: ${windows} of ${records / (k + 3)}`);
  return records / s;
}

function kindsOnce({ batches, records }) {
  let x = 0;
  const t0 = process.hrtime.bigint();
  for (const b of batches) for (let o = 0; o < b.length; o += RECORD_SIZE) x += b[o + 8];
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (x === 0) throw new Error("no records");
  return records / s;
}

const data = makeBatches(Number(values.records));
ingestOnce(data); // warm up the JIT
const ingest = [];
const kinds = [];
for (let r = 0; r < runs; r++) {
  kinds.push(kindsOnce(data));
  ingest.push(ingestOnce(data));
}
const ingestResult = {
  records_per_run: data.records,
  launches_per_window: k,
  records_per_s_median: Math.round(median(ingest)),
  records_per_s_runs: ingest.map(Math.round),
  baseline_read_kind_only_per_s_median: Math.round(median(kinds)),
  target_records_per_s: 5_000_000,
};
console.log(`ingest: ${(ingestResult.records_per_s_median / 1e6).toFixed(2)} M records/s on one core (median of ${runs}; ` +
  `reading only each record's kind: ${(ingestResult.baseline_read_kind_only_per_s_median / 1e6).toFixed(1)} M/s)`);

// ---- sustained ----

const work = mkdtempSync(path.join(os.tmpdir(), "tg-bench-agent-"));
const nullDir = buildNullDriver(path.join(work, "null"));
const producer = path.join(work, "producer");
execFileSync("gcc", ["-std=gnu11", "-O2", include, "-o", producer, path.join(root, "bench/agent/producer.c"), `-L${nullDir}`, "-lcuda"]);

let spansReceived = 0;
const sink = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    if (req.url === "/v1/traces") spansReceived += countSpans(req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body).spans;
    // the agent's metrics arrive at /v1/metrics: accepted, not counted
    res.writeHead(200, { "content-type": "application/x-protobuf" });
    res.end();
  });
});
await new Promise((r) => sink.listen(0, "127.0.0.1", r));
const sinkUrl = `http://127.0.0.1:${sink.address().port}`;

/** The agent in its own process while the producer runs for `seconds`; with `spans`, it exports them to the sink. */
async function sustainedRun(seconds, spans) {
  const rings = path.join(work, spans ? "rings-spans" : "rings");
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("OTEL_")) delete env[k];
  if (spans) Object.assign(env, { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" });
  // as npm start and the container image run it: with the agent's heap settings
  const agent = spawn(process.execPath, [...AGENT_NODE_OPTIONS.split(" "), path.join(root, "agent/dist/cli.js"), "agent", "--dir", rings, "--port", "0"],
    { env, stdio: ["ignore", "pipe", "inherit"] });
  let agentOut = "";
  agent.stdout.on("data", (d) => (agentOut += d));
  while (!existsSync(path.join(rings, "agent.pid"))) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300));
  const spansBefore = spansReceived;
  const spanSamples = [];
  const sampler = setInterval(() => spanSamples.push({ t: Date.now(), spans: spansReceived }), 1000);
  const produced = await new Promise((resolve, reject) => {
    const p = spawn(producer, [values.rate, String(seconds), String(k)], {
      env: { ...process.env, LD_PRELOAD: path.join(root, "native/build/libtailguard.so"), LD_LIBRARY_PATH: nullDir, TAILGUARD_DIR: rings },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`producer exited ${code}`))));
  });
  clearInterval(sampler);
  // let the agent drain and export what is left, then read its peak memory and stop it
  await new Promise((r) => setTimeout(r, 3000));
  const hwmKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, "utf8"))[1]);
  agent.kill("SIGTERM");
  await new Promise((r) => agent.on("exit", r));
  const summary = /stopped after (\d+) records, (\d+) request windows/.exec(agentOut);
  const dropped = /the shims dropped (\d+) records/.exec(agentOut);
  const spanLine = /spans (\d+) exported, (\d+) dropped, (\d+) failed/.exec(agentOut);
  const rates = spanSamples.slice(1).map((x, i) => (x.spans - spanSamples[i].spans) / ((x.t - spanSamples[i].t) / 1000));
  const run = {
    seconds,
    span_export: spans,
    requested_records_per_s: Number(values.rate),
    producer: produced,
    agent_records_taken: summary ? Number(summary[1]) : null,
    agent_request_windows: summary ? Number(summary[2]) : null,
    shim_records_dropped: dropped ? Number(dropped[1]) : null,
    agent_peak_rss_mib: +(hwmKiB / 1024).toFixed(1),
    spans_received: spansReceived - spansBefore,
    agent_spans: spanLine ? { exported: Number(spanLine[1]), dropped: Number(spanLine[2]), failed: Number(spanLine[3]) } : null,
    spans_per_s_median: Math.round(median(rates.length ? rates : [0])),
  };
  console.log(`sustained ${seconds} s at ${(produced.records_per_s / 1e6).toFixed(2)} M records/s${spans ? ", spans over OTLP" : ", no span export"}: ` +
    `agent took ${run.agent_records_taken} records (${run.agent_request_windows} windows; producer made ${produced.windows}), ` +
    `shim dropped ${run.shim_records_dropped}, agent peak RSS ${run.agent_peak_rss_mib} MiB` +
    (spans ? `, spans ${run.spans_received} received (${run.spans_per_s_median}/s median), ${run.agent_spans?.dropped} dropped by the agent` : ""));
  return run;
}

const sustained = {
  with_spans: await sustainedRun(Number(values.seconds), true),
  metrics_only: await sustainedRun(Math.min(20, Number(values.seconds)), false),
  targets: { loss: 0, rss_mib: 150, spans_per_s: 50_000 },
};
sink.close();

const result = {
  ...provenance(),
  ingest: ingestResult,
  sustained,
};
const out = resultsPath("agent", values.out, "agent.json");
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
console.log(`results: ${path.relative(process.cwd(), out)}`);
