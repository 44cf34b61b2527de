// The cost of trace context in the shim (docs/tracing.md): ns per tailguard_begin + tailguard_end pair, through the
// header's dlsym wrappers, with the shim recording while a collector drains its ring ("recording"), with the shim and
// nobody reading ("no_reader": records dropped and counted), and without the shim ("absent": the wrappers' own cost).
// Each mode's figure is the median over --runs runs of the median round.
//
// Usage: node bench/context.mjs [--runs 7] [--pairs 1000] [--rounds 200]
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { include, median, root, runTimedLoop } from "./common.mjs";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "7" }, pairs: { type: "string", default: "1000" }, rounds: { type: "string", default: "200" } },
});
const addon = createRequire(import.meta.url)(path.join(root, "build/Release/tailguard.node"));
const shim = path.join(root, "native/build/libtailguard.so");
const work = mkdtempSync(path.join(os.tmpdir(), "tg-bench-context-"));
const loop = path.join(work, "context_loop");
execFileSync("gcc", ["-std=gnu11", "-O2", include, "-o", loop, path.join(root, "bench/shim/context_loop.c"), "-ldl"]);

function runOnce(mode, i) {
  const env = { ...process.env, TAILGUARD_DIR: path.join(work, "rings") };
  delete env.LD_PRELOAD;
  if (mode !== "absent") env.LD_PRELOAD = shim;
  const session = mode === "recording" ? `${process.pid}-ctx${i}` : null;
  const { out } = runTimedLoop(addon, loop, [values.pairs, values.rounds], env, session, `context loop (${mode})`);
  if ((out.shim !== 0) !== (mode !== "absent")) throw new Error(`the shim was ${out.shim ? "" : "not "}found (${mode})`);
  return out.median_ns;
}

const modes = ["absent", "recording", "no_reader"];
const per = Object.fromEntries(modes.map((m) => [m, []]));
for (let i = 0; i < Number(values.runs); i++) for (let k = 0; k < modes.length; k++) {
  const mode = modes[(i + k) % modes.length];
  per[mode].push(runOnce(mode, i));
}
console.log(`ns per tailguard_begin + tailguard_end pair (median of ${values.runs} runs, ${os.cpus()[0]?.model}):`);
for (const m of modes) console.log(`  ${m.padEnd(10)} ${median(per[m]).toFixed(1)}`);
