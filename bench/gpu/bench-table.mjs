#!/usr/bin/env node
// The Markdown tables of bench/results/README.md's `tailguard bench` section, printed from the combined result files
// (each `tailguard bench --combine` of three single-repetition invocations), so the published figures have one source:
// test/bench-results.test.ts checks that the README holds exactly this output.
// Usage: node bench/gpu/bench-table.mjs [DIR]   (DIR: bench/results/h100-bench-2026-11-24)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const defaultDir = path.join(here, "../results/h100-bench-2026-11-24");
export const cases = [
  { dir: "default-eager", label: "default, eager" },
  { dir: "default-graph", label: "default, graph" },
  { dir: "intensive-eager", label: "intensive, eager" },
  { dir: "intensive-graph", label: "intensive, graph" },
];
const modes = ["high-alone", "low-alone", "native", "telemetry", "tailguard"];

const ms = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(3));
const ratio = (x) => `${x.toFixed(2)}×`;
const rate = (x) => x.toFixed(x >= 100 ? 1 : 2);

function load(dir, name) {
  return JSON.parse(fs.readFileSync(path.join(dir, name, "result.json"), "utf8"));
}

/** Per repetition: mode -> run. */
function repetitions(result) {
  const reps = new Map();
  for (const run of result.runs) {
    if (!reps.has(run.repetition)) reps.set(run.repetition, {});
    reps.get(run.repetition)[run.mode] = run;
  }
  return [...reps.keys()].sort((a, b) => a - b).map((k) => reps.get(k));
}

export function medianTable(dir = defaultDir) {
  const rows = [
    "| case | mode | high P50 ms (× alone) | high P99 ms (× alone) | low it/s (× alone) | holds per run (time held) |",
    "|---|---|---|---|---|---|",
  ];
  for (const c of cases) {
    const s = load(dir, c.dir).summary;
    for (const mode of modes) {
      const m = s[mode];
      const lat = (k) => !m.latency ? "" : mode === "high-alone"
        ? `${ms(m.latency[k].median)} (${ms(m.latency[k].min)}–${ms(m.latency[k].max)})`
        : `${ms(m.latency[k].median)} (${ratio(m.latency[k].ratio)})`;
      const thr = !m.lowThroughput ? "" : mode === "low-alone"
        ? `${rate(m.lowThroughput.median)} (${rate(m.lowThroughput.min)}–${rate(m.lowThroughput.max)})`
        : `${rate(m.lowThroughput.median)} (${ratio(m.lowThroughput.ratio)})`;
      const holds = !m.holds ? "" : `${m.holds.count.median} (${(m.holds.totalMs.median / 1000).toFixed(2)} s)`;
      rows.push(`| ${c.label} | ${mode} | ${lat("p50")} | ${lat("p99")} | ${thr} | ${holds} |`);
    }
  }
  return rows.join("\n");
}

/** The goal, per repetition: each ratio taken inside one invocation (one host). */
export function goalTable(dir = defaultDir) {
  const rows = [
    "| case | tailguard P50 ÷ alone | tailguard P99 ÷ alone | native P99 ÷ alone | low it/s, tailguard ÷ native |",
    "|---|---|---|---|---|",
  ];
  for (const c of cases) {
    const reps = repetitions(load(dir, c.dir));
    const per = (f) => reps.map((r) => f(r).toFixed(2)).join(", ");
    const lat = (r, mode, k) => r[mode].high.latency[k] / r["high-alone"].high.latency[k];
    rows.push(`| ${c.label} | ${per((r) => lat(r, "tailguard", "p50"))} | ${per((r) => lat(r, "tailguard", "p99"))} | ` +
      `${per((r) => lat(r, "native", "p99"))} | ${per((r) => r.tailguard.low.iterPerS / r.native.low.iterPerS)} |`);
  }
  return rows.join("\n");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] ?? defaultDir;
  process.stdout.write(`${medianTable(dir)}\n\n${goalTable(dir)}\n`);
}
