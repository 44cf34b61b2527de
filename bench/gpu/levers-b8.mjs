#!/usr/bin/env node
// The open question of docs/scheduling.md: why the eager `default` scenario (ResNet-50 batch 8 back to back against
// eager ResNet-18 requests) lost 8-27 % of its throughput under tailguard. On one host, each repetition runs native,
// tailguard, tailguard with the timeslice off and tailguard with holds off (`tailguard bench` invocations, the order
// of the variants rotated by repetition), stopping before a deadline so that a bounded device command still returns
// what it measured; `summarize` prints, per repetition, each variant's low-priority throughput over native's of the
// same repetition (in the window, and between the high-priority requests: is the loss during them or also outside?)
// and the high-priority P50/P99.
//
// Usage (repository root; on the GPU machine node on PATH, shim built by tgbench.sh):
//   node bench/gpu/levers-b8.mjs run OUTDIR [--reps 1,2,3] [--duration 30] [--seconds 540] [--sim]
//   node bench/gpu/levers-b8.mjs summarize OUTDIR
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** name, modes, --shim-env (none: the product's defaults). */
export const VARIANTS = [
  { name: "base", modes: "native,tailguard", shimEnv: null },
  { name: "timeslice-off", modes: "tailguard", shimEnv: "TAILGUARD_TIMESLICE_US=0" },
  { name: "holds-off", modes: "tailguard", shimEnv: "TAILGUARD_HOLDS=0" },
];

/** The variants of repetition `rep`, rotated so that drift over a command does not fall on one variant. */
export function plan(rep) {
  const k = (rep - 1) % VARIANTS.length;
  return [...VARIANTS.slice(k), ...VARIANTS.slice(0, k)];
}

function run(out, opts) {
  fs.mkdirSync(out, { recursive: true });
  const start = Date.now();
  let last = 4 * Number(opts.duration); // seconds an invocation took (a first guess)
  const log = (line) => { fs.appendFileSync(path.join(out, "levers-b8.log"), `${line}\n`); console.log(line); };
  for (const rep of opts.reps.split(",").map(Number)) {
    for (const v of plan(rep)) {
      const elapsed = (Date.now() - start) / 1000;
      if (elapsed + last + 10 > Number(opts.seconds)) {
        log(`deadline: skipped repetition ${rep} ${v.name} and after`);
        return 0;
      }
      const args = ["--scenario", "default", "--duration", opts.duration, "--repetitions", "1", "--modes", v.modes,
        "--rotate", String(rep - 1), "--out", path.join(out, `r${rep}-${v.name}`),
        ...(v.shimEnv ? ["--shim-env", v.shimEnv] : []), ...(opts.sim ? ["--sim"] : [])];
      const t0 = Date.now();
      const r = spawnSync("bash", [path.join(root, "bench/gpu/tgbench.sh"), ...args], { stdio: ["ignore", "inherit", "inherit"] });
      last = (Date.now() - t0) / 1000;
      log(`repetition ${rep} ${v.name}: exit ${r.status} in ${last.toFixed(0)} s`);
    }
  }
  return 0;
}

/** Markdown: per repetition and variant, low it/s (÷ native of that repetition), high P50 and P99 ms. */
export function summarize(out) {
  const dirs = fs.readdirSync(out).filter((d) => /^r\d+-/.test(d) && fs.existsSync(path.join(out, d, "result.json")));
  const byRep = new Map();
  for (const d of dirs) {
    const [, rep, variant] = /^r(\d+)-(.*)$/.exec(d);
    const result = JSON.parse(fs.readFileSync(path.join(out, d, "result.json"), "utf8"));
    if (!byRep.has(rep)) byRep.set(rep, {});
    for (const run of result.runs) byRep.get(rep)[run.mode === "native" ? "native" : variant] = run;
  }
  const rows = ["| repetition | variant | low it/s (÷ native) | between requests (÷ native) | high P50 ms | high P99 ms | holds |",
    "|---|---|---|---|---|---|---|"];
  for (const rep of [...byRep.keys()].sort((a, b) => a - b)) {
    const runs = byRep.get(rep);
    const native = runs.native?.low;
    const rate = (v, ref, name) => typeof v !== "number" ? "–"
      : `${v.toFixed(1)}${typeof ref === "number" && name !== "native" ? ` (${(v / ref).toFixed(2)})` : ""}`;
    for (const name of ["native", ...VARIANTS.map((v) => v.name)]) {
      const r = runs[name];
      if (!r) continue;
      rows.push(`| ${rep} | ${name === "base" ? "tailguard" : name === "native" ? "native" : `tailguard, ${name}`} | ` +
        `${rate(r.low.iterPerS, native?.iterPerS, name)} | ${rate(r.low.idleIterPerS, native?.idleIterPerS, name)} | ` +
        `${r.high.latency.p50.toFixed(3)} | ${r.high.latency.p99.toFixed(3)} | ${r.holds ? r.holds.count : ""} |`);
    }
  }
  return rows.join("\n");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, out, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({ args: rest, options: {
    reps: { type: "string", default: "1,2,3" }, duration: { type: "string", default: "30" },
    seconds: { type: "string", default: "540" }, sim: { type: "boolean", default: false } } });
  if (command === "run" && out) process.exitCode = run(out, values);
  else if (command === "summarize" && out) console.log(summarize(out));
  else {
    console.error("usage: levers-b8.mjs run OUTDIR [--reps 1,2,3] [--duration 30] [--seconds 540] [--sim] | summarize OUTDIR");
    process.exitCode = 2;
  }
}
