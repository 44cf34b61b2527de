// `npm run bench:sched`: what cross-process priority does for a latency-sensitive process on the simulated GPU, and
// what it costs the batch process beside it.
//
// Experiment 1, priority scheduling (bench/sim/contention.mjs): a high-priority process sends open-loop requests
// (50/s, one 0.5 ms kernel each) while a low-priority batch process runs kernels back to back on the same simulated
// GPU. Scenarios: `standalone` (the high process alone), and for low kernels of 200 us (10 per sync) and 5000 us
// (1 per sync): `native` (no shim in either process) and `tailguard` (shim preloaded, priorities high/low). Per run:
// the high process's device latency (first launch -> last kernel's end on the device: what GPU scheduling decides)
// and end-to-end latency (scheduled arrival -> sync returned: includes OS wake-up on a small machine), and the low
// process's iterations/s. Each scenario's figure is the median over runs of each run's P50/P90/P99/max; scenario
// order rotates between repetitions.
//
// Experiment 2, tracking cost: a low-priority batch process alone (shim preloaded) vs the same with an almost idle
// high-priority process attached to the GPU (1 request/s of one 100 us kernel), for the CUDA and HIP paths: the
// throughput the low process loses to the scheduler's tracking of a higher-priority peer.
//
// Usage: node bench/sched.mjs [--runs 5] [--count 300] [--out FILE.json]   (default: results/sched-DATE/sched.json)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { provenance, resultsPath } from "./report.mjs";
import { batchArgs, contend, median, requestsArgs, root, summary } from "./sim/contention.mjs";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    count: { type: "string", default: "300" },
    out: { type: "string" },
  },
});
const runs = Number(values.runs);
const count = Number(values.count);
const work = mkdtempSync(path.join(os.tmpdir(), "tg-bench-sched-"));

const RATE = 50;
const HIGH_DELAY_MS = 300;
const LOW_KERNELS_US = [200, 5000];
const high = (priority, startDelayMs) => ({
  name: "high", kind: "requests", priority, startDelayMs, args: requestsArgs({ rate: RATE, count, kernelUs: 500 }),
});
const low = (priority, L) => ({
  name: "low", kind: "continuous", priority,
  args: batchArgs({ seconds: HIGH_DELAY_MS / 1000 + count / RATE + 0.5, kernelUs: L, kernels: L >= 5000 ? 1 : 10 }),
});

const scenarios = [["standalone", () => [high("high", 0)]]];
for (const L of LOW_KERNELS_US) {
  scenarios.push([`native L=${L}us`, () => [low(null, L), high(null, HIGH_DELAY_MS)]]);
  scenarios.push([`tailguard L=${L}us`, () => [low("low", L), high("high", HIGH_DELAY_MS)]]);
}

function checked(results, label) {
  for (const r of results)
    if (r.code !== 0 || !r.result) throw new Error(`${label}: ${r.name} exited ${r.code ?? r.signal}: ${r.err.trim()}`);
  return results;
}
const ms = (x) => +x.toFixed(3);
const round = (s) => ({ n: s.n, p50: ms(s.p50), p90: ms(s.p90), p99: ms(s.p99), max: ms(s.max) });

// ---- experiment 1: priority scheduling ----
const raw = Object.fromEntries(scenarios.map(([name]) => [name, []]));
for (let i = 0; i < runs; i++) {
  for (let k = 0; k < scenarios.length; k++) {
    const [name, procs] = scenarios[(i + k) % scenarios.length];
    const res = checked(await contend(procs(), { work: path.join(work, "sched") }), name);
    const h = res.find((r) => r.name === "high");
    const l = res.find((r) => r.name === "low");
    const device = h.deviceMs.filter(Number.isFinite);
    raw[name].push({
      device: round(summary(device)),
      device_missing: h.deviceMs.length - device.length, // requests whose last kernel is not in the trace
      end_to_end: round(summary(h.endToEndMs)),
      low_iter_per_s: l ? l.result.iter_per_s : null,
    });
    process.stderr.write(".");
  }
}
const stats = ["p50", "p90", "p99", "max"];
const medOf = (rows, key) => Object.fromEntries(stats.map((s) => [s, ms(median(rows.map((r) => r[key][s])))]));
const sched = {};
for (const [name] of scenarios) {
  const rows = raw[name];
  sched[name] = {
    device_ms: medOf(rows, "device"),
    end_to_end_ms: medOf(rows, "end_to_end"),
    low_iter_per_s: rows[0].low_iter_per_s === null ? null : +median(rows.map((r) => r.low_iter_per_s)).toFixed(2),
  };
}
const base = sched.standalone.device_ms;
for (const [name] of scenarios) {
  const d = sched[name].device_ms;
  sched[name].device_vs_standalone = { p50: +(d.p50 / base.p50).toFixed(3), p99: +(d.p99 / base.p99).toFixed(3) };
}
const lowThroughputRatio = Object.fromEntries(LOW_KERNELS_US.map((L) => [`L=${L}us`,
  +(sched[`tailguard L=${L}us`].low_iter_per_s / sched[`native L=${L}us`].low_iter_per_s).toFixed(4)]));

// ---- experiment 2: tracking cost ----
const tracking = {};
for (const api of ["cuda", "hip"]) {
  const lowArgs = [...batchArgs({ seconds: 3, kernels: 10, kernelUs: 200 }), "--api", api];
  const idleHigh = { name: "high", kind: "requests", priority: "high",
    args: [...requestsArgs({ rate: 1, count: 5, kernelUs: 100 }), "--api", api] };
  const modes = {
    alone: () => [{ name: "low", kind: "continuous", priority: "low", args: lowArgs }],
    with_idle_high: () => [idleHigh, { name: "low", kind: "continuous", priority: "low", args: lowArgs, startDelayMs: 200 }],
  };
  const per = { alone: [], with_idle_high: [] };
  for (let i = 0; i < runs; i++) {
    for (const mode of i % 2 ? ["with_idle_high", "alone"] : ["alone", "with_idle_high"]) {
      const res = checked(await contend(modes[mode](), { work: path.join(work, `track-${api}`) }), `${api} ${mode}`);
      per[mode].push(res.find((r) => r.name === "low").result.iter_per_s);
      process.stderr.write(".");
    }
  }
  const a = median(per.alone);
  const w = median(per.with_idle_high);
  tracking[api] = {
    median_iter_per_s: { alone: +a.toFixed(2), with_idle_high: +w.toFixed(2) },
    ratio: +(w / a).toFixed(4),
    loss_pct: +((1 - w / a) * 100).toFixed(2),
    per_run_iter_per_s: per,
  };
}
process.stderr.write("\n");
rmSync(work, { recursive: true, force: true });

// ---- report ----
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const f = (x, d = 2) => (x === null ? "-" : x.toFixed(d));
console.log(`priority scheduling (simulated GPU): high = ${RATE} req/s x ${count}, 0.5 ms kernel; medians of ${runs} runs`);
console.log(`${pad("scenario", 20)}${lpad("device ms p50/p90/p99/max", 30)}${lpad("end-to-end ms p50/p90/p99/max", 34)}` +
  `${lpad("low it/s", 10)}${lpad("dev p50 x", 11)}${lpad("dev p99 x", 11)}`);
for (const [name] of scenarios) {
  const s = sched[name];
  const q = (o) => stats.map((k) => f(o[k])).join("/");
  console.log(`${pad(name, 20)}${lpad(q(s.device_ms), 30)}${lpad(q(s.end_to_end_ms), 34)}${lpad(f(s.low_iter_per_s, 1), 10)}` +
    `${lpad(f(s.device_vs_standalone.p50), 11)}${lpad(f(s.device_vs_standalone.p99), 11)}`);
}
for (const [L, r] of Object.entries(lowThroughputRatio)) console.log(`low throughput tailguard/native, ${L}: ${r}`);
console.log(`\ntracking cost: low (10 x 200 us kernels, 3 s) alone vs with an idle high-priority process; medians of ${runs} runs`);
console.log(`${pad("api", 6)}${lpad("alone it/s", 12)}${lpad("with high it/s", 16)}${lpad("ratio", 9)}${lpad("loss %", 9)}`);
for (const [api, t] of Object.entries(tracking))
  console.log(`${pad(api, 6)}${lpad(f(t.median_iter_per_s.alone, 1), 12)}${lpad(f(t.median_iter_per_s.with_idle_high, 1), 16)}` +
    `${lpad(t.ratio.toFixed(4), 9)}${lpad(t.loss_pct.toFixed(2), 9)}`);

const out = resultsPath("sched", values.out, "sched.json");
const report = {
  benchmark: "priority scheduling on the simulated GPU",
  ...provenance(),
  parameters: { runs, count, rate: RATE, high_kernel_us: 500, high_start_delay_ms: HIGH_DELAY_MS, low_kernel_us: LOW_KERNELS_US },
  scheduling: { medians: sched, low_throughput_tailguard_vs_native: lowThroughputRatio, per_run: raw },
  tracking_cost: tracking,
};
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
console.log(`results: ${path.relative(process.cwd(), out)}`);
