#!/usr/bin/env node
// The runs of toggle-b8.mjs as one table (the figures docs/scheduling.md publishes; test/e2e/bench.test.ts checks that it
// holds exactly this output): per run, the batch job's throughput with priorities in effect (A) and with the requests
// paused (C), each over equal priorities (B) of the same cycle, as a geometric mean over cycles ± 2 standard errors;
// then, for the runs that recorded it, ms per batch iteration by where the iteration fell relative to the requests.
// Usage: node bench/gpu/experiments/toggle-summary.mjs [RUNDIR ...] (default: the committed H100 runs)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const results = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../results/h100-pinned-2026-11-24");
export const RUNS = ["toggle-288s", "toggle-192s", "toggle-192s-holds0", "toggle-480s", "toggle-240s-ts0"].map((d) => path.join(results, d));

/** The batch job's throughput in each segment of `state` over that of state B in the same cycle (cycles with both). */
export function cycleRatios(segments, state) {
  return segments.filter((s) => s.state === state).flatMap((s) => {
    const b = segments.find((o) => o.state === "B" && o.cycle === s.cycle);
    return b ? [s.itPerS / b.itPerS] : [];
  });
}

/** Geometric mean of x÷B over the cycles that have both, and twice its standard error, as factors. */
function paired(segments, state) {
  const logs = cycleRatios(segments, state).map(Math.log);
  const m = logs.reduce((a, v) => a + v, 0) / logs.length;
  const se = Math.sqrt(logs.reduce((a, v) => a + (v - m) ** 2, 0) / (logs.length - 1) / logs.length);
  return { n: logs.length, text: `${Math.exp(m).toFixed(2)} ± ${(Math.exp(m + 2 * se) - Math.exp(m)).toFixed(2)}` };
}

export function toggleSummary(dirs = RUNS) {
  const runs = dirs.map((d) => ({ name: path.basename(d), ...JSON.parse(fs.readFileSync(path.join(d, "toggle.json"), "utf8")) }));
  const env = (r) => Object.entries(r.shimEnv ?? {}).map(([k, v]) => `${k}=${v}`).join(" ") || "–";
  const rows = ["| run | seconds, segment | shim settings | cycles | A ÷ B | C ÷ B |", "|---|---|---|---|---|---|"];
  for (const r of runs) {
    const a = paired(r.segments, "A"), c = paired(r.segments, "C");
    rows.push(`| ${r.name} | ${r.seconds} s, ${r.segment} s | ${env(r)} | ${a.n} | ${a.text} | ${c.text} |`);
  }
  const withClasses = runs.filter((r) => r.classes);
  const cell = (r, key) => { const c = r.classes[key]; return c ? (c.ns / c.n / 1e6).toFixed(2) : "–"; };
  rows.push("", `| batch iteration, ms | ${withClasses.flatMap((r) => [`${r.name} A`, `${r.name} B`]).join(" | ")} |`,
    `|---|${withClasses.map(() => "---|---|").join("")}`);
  for (const [label, k] of [["overlapping a request", "during"], ["beginning ≤ 15 ms after one", "after"], ["the rest", "clear"]])
    rows.push(`| ${label} | ${withClasses.flatMap((r) => [cell(r, `A ${k}`), cell(r, `B ${k}`)]).join(" | ")} |`);
  return rows.join("\n");
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url))
  console.log(toggleSummary(process.argv.length > 2 ? process.argv.slice(2) : RUNS));
