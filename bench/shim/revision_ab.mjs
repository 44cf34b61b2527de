// The shim's launch cost in this checkout against another revision's, in one session, alternating: did a change make
// the launch path slower? Both shims run bench/shim/launch_loop.c (median ns per launch over rounds of 0-microsecond
// launches) on the simulated GPU, with nobody reading the ring (the two revisions' ring layouts may differ, so no
// collector: the recording cost itself is bench/shim.mjs's), in two settings: alone, and beside a higher-priority
// partner sending requests (the loop at low priority: the scheduler's checks on every launch are in play). Each run's
// order is rotated; the report is the median per shim and setting and their ratio, with each run's value.
//
//   node bench/shim/revision_ab.mjs [--base REV] [--runs N] [--out FILE.json]      (default base: origin's main, else HEAD~1;
//   default out: results/revision-ab-DATE/revision_ab.json, bench/report.mjs)
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { include, median, quartiles, root } from "../common.mjs";
import { resultsPath } from "../report.mjs";

const { values } = parseArgs({ options: { base: { type: "string" }, runs: { type: "string", default: "15" }, out: { type: "string" } } });
const base = values.base ?? "HEAD~1";
const runs = Number(values.runs);
const work = mkdtempSync(path.join(os.tmpdir(), "tg-rev-ab-"));
const baseTree = path.join(work, "base");
execFileSync("git", ["worktree", "add", "--detach", baseTree, base], { cwd: root, stdio: "ignore" });
const baseCommit = execFileSync("git", ["rev-parse", "--short", base], { cwd: root, encoding: "utf8" }).trim();
const headCommit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
try {
  execFileSync("make", ["-s", "-C", path.join(baseTree, "native")], { stdio: "ignore" });
  const loop = path.join(work, "launch_loop");
  execFileSync("gcc", ["-std=gnu11", "-O2", include, `-I${path.join(root, "bench")}`, "-o", loop, path.join(root, "bench/shim/launch_loop.c"),
    `-L${path.join(root, "native/build/sim")}`, "-lcuda"]);
  const builds = { base: baseTree, head: root };
  const settings = ["alone", "below a partner"];
  const per = {};
  for (const b of Object.keys(builds)) for (const s of settings) per[`${b}/${s}`] = [];

  const once = async (build, setting, i) => {
    const tree = builds[build];
    const env = {
      ...process.env,
      LD_LIBRARY_PATH: path.join(tree, "native/build/sim"),
      TAILGUARD_SIM_DEVICE: path.join(work, `gpu-${build}-${i}`),
      TAILGUARD_DIR: path.join(work, `rings-${build}-${i}`),
      TAILGUARD_RING_RECORDS: "262144",
    };
    let partner = null;
    if (setting !== "alone") {
      partner = spawn(path.join(tree, "native/build/tg-workload"), ["requests", "--rate", "10", "--count", "600", "--kernels", "20", "--kernel-us", "200"],
        { env: { ...env, LD_PRELOAD: path.join(tree, "native/build/libtailguard.so"), TAILGUARD_PRIORITY: "high" }, stdio: "ignore" });
      await new Promise((r) => setTimeout(r, 500));
    }
    const r = spawnSync(loop, ["1000", "400"], { env: { ...env, LD_PRELOAD: path.join(tree, "native/build/libtailguard.so"), TAILGUARD_PRIORITY: "low" }, encoding: "utf8" });
    partner?.kill("SIGKILL");
    if (r.status !== 0) throw new Error(`launch loop failed (${build}, ${setting}): ${r.stderr}`);
    per[`${build}/${setting}`].push(JSON.parse(r.stdout).median_ns);
    rmSync(env.TAILGUARD_DIR, { recursive: true, force: true });
  };
  const order = Object.keys(builds).flatMap((b) => settings.map((s) => [b, s]));
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < order.length; k++) await once(...order[(i + k) % order.length], i);
    process.stderr.write(".");
  }
  process.stderr.write("\n");
  const result = {
    benchmark: "shim launch cost, this checkout against a base revision (simulated GPU, no reader)",
    command: `node bench/shim/revision_ab.mjs --base ${base} --runs ${runs}`,
    base: baseCommit,
    head: headCommit,
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, kernel: os.release() },
    median_ns: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, +median(v).toFixed(1)])),
    iqr_ns: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, quartiles(v).map((x) => +x.toFixed(1))])),
    ratio_head_to_base: Object.fromEntries(settings.map((s) => [s, +(median(per[`head/${s}`]) / median(per[`base/${s}`])).toFixed(3)])),
    per_run_ns: per,
  };
  for (const s of settings)
    console.log(`${s}: base ${baseCommit} ${result.median_ns[`base/${s}`]} ns/launch, head ${headCommit} ${result.median_ns[`head/${s}`]} ` +
      `(x${result.ratio_head_to_base[s]}; quartiles base ${result.iqr_ns[`base/${s}`].join("-")}, head ${result.iqr_ns[`head/${s}`].join("-")})`);
  const out = resultsPath("revision-ab", values.out, "revision_ab.json");
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  console.log(`results: ${path.relative(process.cwd(), out)}`);
} finally {
  execFileSync("git", ["worktree", "remove", "--force", baseTree], { cwd: root, stdio: "ignore" });
  rmSync(work, { recursive: true, force: true });
}
