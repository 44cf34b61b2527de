// Coverage-guided fuzzing of what tailguard reads from files other users can write (docs/security.md): libFuzzer
// targets in test/fuzz/ built with clang, AddressSanitizer and UndefinedBehaviorSanitizer.
//
//   ring      the agent's ring reader (native/addon/ring_reader.cc): a ring corrupted while it is drained
//   control   control-block headers, control-file names and the admin's policy text (tailguard/control.h, policy.h)
//
// `npm run fuzz` runs each for 10 million inputs (the bar); CI runs a short budget (test/fuzz.test.ts). The
// TypeScript decoders are fuzzed by fast-check property tests, whose run count TAILGUARD_FUZZ_RUNS sets.
//
//   node bench/fuzz.mjs [--runs N] [--targets ring,control] [--out DIR]
//
// Prints, per target, the inputs run, the crashes, timeouts and leaks found (libFuzzer stops at the first), the time
// and the coverage reached; with --out, writes the same as fuzz.json and fuzz.md there. Exits 1 if any target failed.
// A failing input is kept in .tmp/fuzz/<target>-crashes/ (replay: .tmp/fuzz/<target>_fuzz FILE).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { root } from "./common.mjs";

const TARGETS = {
  ring: { main: "test/fuzz/ring_fuzz.cc", cxx: ["native/addon/ring_reader.cc"], c: ["ring_files", "guard", "options", "log"], maxLen: 8192 },
  control: { main: "test/fuzz/control_fuzz.cc", cxx: [], c: ["control", "policy", "options", "log"], maxLen: 16384 },
};
const SAN = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", `-I${path.join(root, "native/include")}`];

function clangOrExplain() {
  for (const cc of ["clang", "clang++"])
    if (spawnSync(cc, ["--version"]).status !== 0)
      throw new Error(`${cc} is not installed: the fuzz targets need clang and libFuzzer (Debian: apt-get install --no-install-recommends clang libclang-rt-14-dev)`);
}

/** Builds one target into .tmp/fuzz; returns the binary. */
export function build(name, dir = path.join(root, ".tmp/fuzz")) {
  clangOrExplain();
  const t = TARGETS[name];
  const obj = path.join(dir, `obj-${name}`);
  mkdirSync(obj, { recursive: true });
  const objects = t.c.map((c) => {
    const o = path.join(obj, `${c}.o`);
    execFileSync("clang", [...SAN, "-fsanitize=fuzzer-no-link", "-std=gnu11", "-c", path.join(root, "native/common", `${c}.c`), "-o", o]);
    return o;
  });
  const bin = path.join(dir, `${name}_fuzz`);
  execFileSync("clang++", [...SAN, "-fsanitize=fuzzer", "-std=c++17", "-o", bin, path.join(root, t.main),
    ...t.cxx.map((f) => path.join(root, f)), ...objects], { stdio: ["ignore", "ignore", "pipe"] });
  return bin;
}

/** Runs one target for `runs` inputs from an empty corpus (libFuzzer finds its own way in). */
export function fuzz(name, runs, dir = path.join(root, ".tmp/fuzz")) {
  const bin = build(name, dir);
  const corpus = path.join(dir, `${name}-corpus`);
  const crashes = path.join(dir, `${name}-crashes`);
  mkdirSync(corpus, { recursive: true });
  rmSync(crashes, { recursive: true, force: true }); // what this run finds, not an earlier one
  mkdirSync(crashes, { recursive: true });
  const t0 = Date.now();
  const r = spawnSync(bin, [`-runs=${runs}`, `-max_len=${TARGETS[name].maxLen}`, "-timeout=10", "-rss_limit_mb=2048",
    "-print_final_stats=1", `-artifact_prefix=${crashes}/`, corpus], { encoding: "utf8", maxBuffer: 1 << 28 });
  const seconds = (Date.now() - t0) / 1000;
  const out = r.stderr ?? "";
  const stat = (key) => Number(new RegExp(`stat::${key}:\\s+(\\d+)`).exec(out)?.[1] ?? NaN);
  const found = readdirSync(crashes);
  return {
    target: name,
    inputs: stat("number_of_executed_units"),
    seconds,
    perSecond: Math.round(stat("number_of_executed_units") / seconds),
    coverage: Number(/cov: (\d+)/.exec(out.split("\n").filter((l) => l.includes("cov:")).pop() ?? "")?.[1] ?? NaN),
    crashes: found.filter((f) => f.startsWith("crash-") || f.startsWith("oom-")).length,
    timeouts: found.filter((f) => f.startsWith("timeout-") || f.startsWith("slow-unit-")).length,
    leaks: found.filter((f) => f.startsWith("leak-")).length,
    exit: r.status,
    tail: r.status === 0 ? "" : out.split("\n").slice(-30).join("\n"),
  };
}

async function main() {
  const { values } = parseArgs({ options: { runs: { type: "string" }, targets: { type: "string" }, out: { type: "string" } } });
  const runs = Number(values.runs ?? 10_000_000);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, not "${values.runs}"`);
  const names = (values.targets ?? Object.keys(TARGETS).join(",")).split(",");
  for (const n of names) if (!TARGETS[n]) throw new Error(`unknown target "${n}" (targets: ${Object.keys(TARGETS).join(", ")})`);
  const results = names.map((n) => {
    const r = fuzz(n, runs);
    console.log(`${n}: ${r.inputs} inputs in ${r.seconds.toFixed(0)} s (${r.perSecond}/s), coverage ${r.coverage}, ` +
      `crashes ${r.crashes}, timeouts ${r.timeouts}, leaks ${r.leaks}`);
    if (r.tail) console.log(r.tail);
    return r;
  });
  const failed = results.filter((r) => r.exit !== 0 || r.crashes || r.timeouts || r.leaks || r.inputs < runs);
  if (values.out) {
    mkdirSync(values.out, { recursive: true });
    const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? "?"}, ${os.platform()} ${os.release()}`;
    const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).stdout.trim();
    const clang = spawnSync("clang", ["--version"], { encoding: "utf8" }).stdout.split("\n")[0];
    writeFileSync(path.join(values.out, "fuzz.json"), JSON.stringify({ command: `node bench/fuzz.mjs --runs ${runs}`, commit, machine, clang, results }, null, 2) + "\n");
    writeFileSync(path.join(values.out, "fuzz.md"), [
      `# libFuzzer (\`node bench/fuzz.mjs --runs ${runs}\`, commit ${commit})`, "", `${machine}; ${clang}; ASan + UBSan.`, "",
      "| target | inputs | seconds | inputs/s | coverage (edges) | crashes | timeouts | leaks |", "|---|---|---|---|---|---|---|---|",
      ...results.map((r) => `| ${r.target} | ${r.inputs} | ${r.seconds.toFixed(0)} | ${r.perSecond} | ${r.coverage} | ${r.crashes} | ${r.timeouts} | ${r.leaks} |`),
      "",
    ].join("\n"));
  }
  process.exit(failed.length ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main().catch((e) => {
    console.error(`bench/fuzz.mjs: ${e.message}`);
    process.exit(2);
  });
}
