#!/usr/bin/env node
// The eager batch-8 question of docs/scheduling.md as one table: every H100 run pair of native and tailguard made in
// the same `tailguard bench` invocation and repetition (minutes apart at most), the low-priority worker's throughput
// under tailguard over native's, with the worker's CPU ms per iteration where the bench recorded it; then the
// median, the geometric mean and how many pairs fell below 1, for the runs before and after the bench pinned itself.
// The published figures have this one source: test/e2e/bench.test.ts checks that bench/results/README.md and
// docs/scheduling.md hold exactly this output.
// Usage: node bench/gpu/pairs-b8.mjs
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { median } from "../common.mjs";

const results = path.join(path.dirname(fileURLToPath(import.meta.url)), "../results");
/** Invocations with the `default` eager scenario's native and tailguard modes, in the order they ran. */
export const SOURCES = [
  ...[1, 2, 3].map((r) => ({ dir: `h100-bench-2026-11-24/parts/default-eager-r${r}`, label: `bench r${r} (60 s)` })),
  ...[1, 2, 3, 4].map((r) => ({ dir: `h100-batch8-2026-11-24/levers-b8/r${r}-base`, label: `levers-b8 r${r} (30 s)` })),
  { dir: "h100-batch8-2026-11-24/alternating-a", label: "alternating-a (15 s)" },
  { dir: "h100-batch8-2026-11-24/alternating-cpu", label: "alternating-cpu (15 s)" },
  { dir: "h100-batch8-2026-11-24/alternating-b", label: "alternating-b (15 s)" },
  // the bench's own threads pinned off the workers' CPUs from here on (result.pinning.orchestrator)
  { dir: "h100-pinned-2026-11-24/alternating-3modes", label: "pinned, 3 modes (15 s)" },
  { dir: "h100-pinned-2026-11-24/full", label: "pinned, full (15 s)" },
  { dir: "h100-pinned-2026-11-24/high-alone", label: "pinned, high-alone (15 s)" },
];

export function pairs() {
  const out = [];
  for (const s of SOURCES) {
    const result = JSON.parse(fs.readFileSync(path.join(results, s.dir, "result.json"), "utf8"));
    if (result.scenario.name !== "default" || result.scenario.high.flavour !== "eager")
      throw new Error(`${s.dir}: not the default eager scenario`);
    const reps = [...new Set(result.runs.map((r) => r.repetition))].sort((a, b) => a - b);
    for (const rep of reps) {
      const of = (m) => result.runs.find((r) => r.repetition === rep && r.mode === m);
      const native = of("native"), tg = of("tailguard");
      if (!native || !tg) continue;
      out.push({ source: s.label, rep, tgFirst: tg.order < native.order, pinned: Boolean(result.pinning?.orchestrator),
        native: native.low, tailguard: tg.low });
    }
  }
  return out;
}

export function pairsTable() {
  const ps = pairs();
  const cpu = (low) => (low.cpu ? low.cpu.msPerIter.toFixed(2) : "–");
  const rows = [
    "| invocation | repetition | first | native it/s | tailguard it/s | tailguard ÷ native | CPU ms/it native | CPU ms/it tailguard |",
    "|---|---|---|---|---|---|---|---|",
    ...ps.map((p) => `| ${p.source} | ${p.rep} | ${p.tgFirst ? "tailguard" : "native"} | ${p.native.iterPerS.toFixed(1)} | ` +
      `${p.tailguard.iterPerS.toFixed(1)} | ${(p.tailguard.iterPerS / p.native.iterPerS).toFixed(2)} | ${cpu(p.native)} | ${cpu(p.tailguard)} |`),
  ];
  rows.push("");
  for (const [name, group] of [["orchestrator not pinned", ps.filter((p) => !p.pinned)], ["orchestrator pinned", ps.filter((p) => p.pinned)]]) {
    const ratios = group.map((p) => p.tailguard.iterPerS / p.native.iterPerS);
    const geo = Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length);
    const withCpu = group.filter((p) => p.native.cpu && p.tailguard.cpu);
    const cpuRatio = median(withCpu.map((p) => p.tailguard.cpu.msPerIter / p.native.cpu.msPerIter));
    rows.push(`${name}, ${group.length} pairs: tailguard ÷ native median ${median(ratios).toFixed(2)}, geometric mean ${geo.toFixed(2)}, ` +
      `range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}, below 1 in ${ratios.filter((r) => r < 1).length}; ` +
      `CPU ms per iteration, tailguard ÷ native, median of ${withCpu.length} pairs: ${cpuRatio.toFixed(2)}.`);
  }
  return rows.join("\n");
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) console.log(pairsTable());
