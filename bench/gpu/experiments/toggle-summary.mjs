#!/usr/bin/env node
// The runs of toggle-b8.mjs as one table (the figures docs/scheduling.md publishes; test/e2e/bench.test.ts checks that it
// holds exactly this output): per run, the batch job's throughput with priorities in effect (A) and with the requests
// paused (C), each over equal priorities (B) of the same cycle, as a geometric mean over cycles ± 2 standard errors;
// then, for the runs that recorded it, ms per batch iteration by where the iteration fell relative to the requests.
// Usage: node bench/gpu/experiments/toggle-summary.mjs [RUNDIR ...] (default: the H100 runs' figures in
//        bench/results/figures/toggle-summary.json, from results:h100-pinned-2026-11-24/toggle-*, bench/gpu/figures.mjs)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { publishedFigures, rawFiles } from "../figures.mjs";

/** The published runs: their folders on the results branch. */
export const RUNS = ["toggle-288s", "toggle-192s", "toggle-192s-holds0", "toggle-480s", "toggle-240s-ts0"]
  .map((d) => `h100-pinned-2026-11-24/${d}`);

/** The batch job's throughput in each segment of `state` over that of state B in the same cycle (cycles with both). */
export function cycleRatios(segments, state) {
  return segments.filter((s) => s.state === state).flatMap((s) => {
    const b = segments.find((o) => o.state === "B" && o.cycle === s.cycle);
    return b ? [s.itPerS / b.itPerS] : [];
  });
}

/** What the table is printed from, per run (`read`: path -> parsed toggle.json; `dirs`: the runs' folders): its
 *  settings, the per-cycle ratios A÷B and C÷B, and ms per batch iteration by state and class (runs that recorded
 *  them; else null). */
export function extract(read, dirs = RUNS) {
  return dirs.map((d) => {
    const r = read(`${d}/toggle.json`);
    return { name: path.basename(d), seconds: r.seconds, segment: r.segment, shimEnv: r.shimEnv ?? {},
      AB: cycleRatios(r.segments, "A"), CB: cycleRatios(r.segments, "C"),
      msPerIter: r.classes ? Object.fromEntries(Object.entries(r.classes).map(([k, c]) => [k, c.ns / c.n / 1e6])) : null };
  });
}

/** Geometric mean of per-cycle ratios x÷B, and twice its standard error, as factors. */
function paired(ratios) {
  const logs = ratios.map(Math.log);
  const m = logs.reduce((a, v) => a + v, 0) / logs.length;
  const se = Math.sqrt(logs.reduce((a, v) => a + (v - m) ** 2, 0) / (logs.length - 1) / logs.length);
  return { n: logs.length, text: `${Math.exp(m).toFixed(2)} ± ${(Math.exp(m + 2 * se) - Math.exp(m)).toFixed(2)}` };
}

export function toggleSummary(runs = publishedFigures("toggle-summary")) {
  const env = (r) => Object.entries(r.shimEnv).map(([k, v]) => `${k}=${v}`).join(" ") || "–";
  const rows = ["| run | seconds, segment | shim settings | cycles | A ÷ B | C ÷ B |", "|---|---|---|---|---|---|"];
  for (const r of runs) {
    const a = paired(r.AB), c = paired(r.CB);
    rows.push(`| ${r.name} | ${r.seconds} s, ${r.segment} s | ${env(r)} | ${a.n} | ${a.text} | ${c.text} |`);
  }
  const withClasses = runs.filter((r) => r.msPerIter);
  const cell = (r, key) => (key in r.msPerIter ? r.msPerIter[key].toFixed(2) : "–");
  rows.push("", `| batch iteration, ms | ${withClasses.flatMap((r) => [`${r.name} A`, `${r.name} B`]).join(" | ")} |`,
    `|---|${withClasses.map(() => "---|---|").join("")}`);
  for (const [label, k] of [["overlapping a request", "during"], ["beginning ≤ 15 ms after one", "after"], ["the rest", "clear"]])
    rows.push(`| ${label} | ${withClasses.flatMap((r) => [cell(r, `A ${k}`), cell(r, `B ${k}`)]).join(" | ")} |`);
  return rows.join("\n");
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url))
  console.log(toggleSummary(process.argv.length > 2 ? extract(rawFiles(process.cwd()), process.argv.slice(2)) : undefined));
