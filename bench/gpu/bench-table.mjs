#!/usr/bin/env node
// The Markdown tables of bench/results/README.md's `tailguard bench` section, printed from the combined result files
// (each `tailguard bench --combine` of three single-repetition invocations), so the published figures have one source:
// test/e2e/bench.test.ts checks that the README holds exactly this output.
// Usage: node bench/gpu/bench-table.mjs [DIR]   (DIR: a folder with the four cases' combined results; default: their
//        figures in bench/results/figures/bench-table.json, from results:h100-bench-2026-11-24, bench/gpu/figures.mjs)
import path from "node:path";
import { fileURLToPath } from "node:url";

import { publishedFigures, rawFiles } from "./figures.mjs";

/** The published runs: their folder on the results branch. */
export const RUNS = "h100-bench-2026-11-24";
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

/** Per repetition: mode -> run. */
function repetitions(result) {
  const reps = new Map();
  for (const run of result.runs) {
    if (!reps.has(run.repetition)) reps.set(run.repetition, {});
    reps.get(run.repetition)[run.mode] = run;
  }
  return [...reps.keys()].sort((a, b) => a - b).map((k) => reps.get(k));
}

/** What the tables are printed from, per case (`read`: path -> parsed result.json; `base`: the cases' folder):
 *  `summary`, per mode as the bench summarized it, P50 and P99 of the high-priority latency and the low-priority it/s,
 *  each [median, min, max, ratio] over the repetitions, and the holds [count, ms held], medians; `repetitions`, per
 *  repetition and mode, [high P50, high P99, low it/s]. */
export function extract(read, base = RUNS) {
  const stat = (x) => (x ? [x.median, x.min, x.max, x.ratio] : null);
  return Object.fromEntries(cases.map((c) => {
    const result = read(`${base}/${c.dir}/result.json`);
    const summary = Object.fromEntries(modes.map((m) => {
      const s = result.summary[m];
      return [m, { p50: stat(s.latency?.p50), p99: stat(s.latency?.p99), lowItPerS: stat(s.lowThroughput),
        holds: s.holds ? [s.holds.count.median, s.holds.totalMs.median] : null }];
    }));
    const reps = repetitions(result).map((r) => Object.fromEntries(modes.map((m) =>
      [m, [r[m].high?.latency.p50 ?? null, r[m].high?.latency.p99 ?? null, r[m].low?.iterPerS ?? null]])));
    return [c.dir, { summary, repetitions: reps }];
  }));
}

export function medianTable(figures = publishedFigures("bench-table")) {
  const rows = [
    "| case | mode | high P50 ms (× alone) | high P99 ms (× alone) | low it/s (× alone) | holds per run (time held) |",
    "|---|---|---|---|---|---|",
  ];
  for (const c of cases) {
    for (const mode of modes) {
      const m = figures[c.dir].summary[mode];
      // the alone rows show the range over the repetitions, the others the ratio to alone
      const lat = (s) => !s ? "" : mode === "high-alone" ? `${ms(s[0])} (${ms(s[1])}–${ms(s[2])})` : `${ms(s[0])} (${ratio(s[3])})`;
      const thr = (s) => !s ? "" : mode === "low-alone" ? `${rate(s[0])} (${rate(s[1])}–${rate(s[2])})` : `${rate(s[0])} (${ratio(s[3])})`;
      const holds = !m.holds ? "" : `${m.holds[0]} (${(m.holds[1] / 1000).toFixed(2)} s)`;
      rows.push(`| ${c.label} | ${mode} | ${lat(m.p50)} | ${lat(m.p99)} | ${thr(m.lowItPerS)} | ${holds} |`);
    }
  }
  return rows.join("\n");
}

/** The goal, per repetition: each ratio taken inside one invocation (one host). */
export function goalTable(figures = publishedFigures("bench-table")) {
  const rows = [
    "| case | tailguard P50 ÷ alone | tailguard P99 ÷ alone | native P99 ÷ alone | low it/s, tailguard ÷ native |",
    "|---|---|---|---|---|",
  ];
  const [P50, P99, LOW] = [0, 1, 2];
  for (const c of cases) {
    const reps = figures[c.dir].repetitions;
    const per = (f) => reps.map((r) => f(r).toFixed(2)).join(", ");
    const lat = (r, mode, k) => r[mode][k] / r["high-alone"][k];
    rows.push(`| ${c.label} | ${per((r) => lat(r, "tailguard", P50))} | ${per((r) => lat(r, "tailguard", P99))} | ` +
      `${per((r) => lat(r, "native", P99))} | ${per((r) => r.tailguard[LOW] / r.native[LOW])} |`);
  }
  return rows.join("\n");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const figures = process.argv[2] ? extract(rawFiles(process.argv[2]), ".") : undefined;
  process.stdout.write(`${medianTable(figures)}\n\n${goalTable(figures)}\n`);
}
