// Coverage-guided fuzzing of what tailguard reads from files other users can write (docs/security.md): libFuzzer
// targets in test/fuzz/ built with clang, AddressSanitizer and UndefinedBehaviorSanitizer.
//
//   ring      the agent's ring reader (native/addon/ring_reader.cc): a ring corrupted while it is drained
//   control   control-block headers, control-file names and the admin's policy text (tailguard/control.h, policy.h)
//   decoder   the agent's record decoder and request-window assembler (agent/src/ingest/record.ts, windows.ts): records
//             mutated from well-formed ones (kinds, ops, times, lengths) or random, in random batches; not
//             coverage-guided (JavaScript), seeded
//
// `npm run fuzz` runs each for 10 million inputs (the bar); CI runs a short budget (test/native/fuzz.test.ts). The
// TypeScript side is also property-tested with fast-check (test/unit/property.test.ts; TAILGUARD_FUZZ_RUNS sets its runs).
//
//   node bench/fuzz.mjs [--runs N] [--targets ring,control] [--out DIR]
//
// Prints, per target, the inputs run, the crashes, timeouts and leaks found (libFuzzer stops at the first), the time
// and the coverage reached, and writes the same as fuzz.json and fuzz.md to --out (default: results/fuzz-DATE/,
// bench/report.mjs). Exits 1 if any target failed.
// A failing input is kept in .tmp/fuzz/<target>-crashes/ (replay: .tmp/fuzz/<target>_fuzz FILE).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { root } from "./common.mjs";
import { resultsPath } from "./report.mjs";

const TARGETS = {
  ring: { main: "test/fuzz/ring_fuzz.cc", cxx: ["native/addon/ring_reader.cc"], c: ["ring_files", "guard", "options", "log"], maxLen: 8192 },
  control: { main: "test/fuzz/control_fuzz.cc", cxx: [], c: ["control", "policy", "options", "log"], maxLen: 16384 },
};
const LIBFUZZER = Object.keys(TARGETS);
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

/** The decoder target: records through decodeRecord and a WindowAssembler, in batches, `runs` records in all. A
 *  violated invariant throws with the seed and the batch's bytes (hex) to replay. */
export async function fuzzDecoder(runs, seed = 1) {
  const { decodeRecord, RECORD_SIZE } = await import("../agent/dist/ingest/record.js");
  const { WindowAssembler } = await import("../agent/dist/ingest/windows.js");
  let x = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
  const next = () => {
    x ^= (x << 13n) & 0xffffffffffffffffn;
    x ^= x >> 7n;
    x ^= (x << 17n) & 0xffffffffffffffffn;
    return Number(x & 0xffffffffn);
  };
  const meta = { pid: 1, ppid: 0, cmdline: ["fuzz"], priority: 0, gpu: null, anchorMonotonic: 0n, anchorRealtime: 0n, resource: {} };
  const check = (ok, what, batch) => {
    if (!ok) throw new Error(`decoder: ${what} (seed ${seed}; batch ${batch.toString("hex")})`);
  };
  const t0 = Date.now();
  let done = 0;
  let a = null;
  const windows = [];
  const holds = [];
  let clock = 1_000_000_000n;
  while (done < runs) {
    if (!a || next() % 64 === 0) {
      if (a) a.settle(true);
      a = new WindowAssembler(meta, null, { window: (_, w) => windows.push(w), hold: (_, h) => holds.push(h), launchApiTime: () => {} },
        new Map([[1, "k"]]), 1 + (next() % 300));
    }
    const n = 1 + (next() % 64);
    const batch = Buffer.alloc(n * RECORD_SIZE);
    for (let i = 0; i < n; i++) {
      const o = i * RECORD_SIZE;
      if (next() % 8 === 0) for (let b = 0; b < RECORD_SIZE; b += 4) batch.writeUInt32LE(next(), o + b); // random
      else { // well-formed, then a field or two mutated
        clock += BigInt(next() % 100000);
        batch.writeBigUInt64LE(BigInt(done + i + 1), o);
        batch[o + 8] = 1 + (next() % 9);
        batch[o + 9] = next() % 4;
        batch.writeUInt16LE(next() % 200, o + 10);
        batch.writeBigUInt64LE(clock, o + 16);
        batch.writeUInt32LE(next() % 2_000_000, o + 24);
        batch.writeUInt16LE(next() % 64, o + 28);
        batch.writeBigUInt64LE(BigInt(next() % 4), o + 32);
        batch.writeBigUInt64LE(BigInt(next() % 8), o + 40);
        for (let m = next() % 3; m > 0; m--) batch[o + (next() % RECORD_SIZE)] = next() & 0xff;
      }
      const r = decodeRecord(batch, o);
      for (const [field, v] of Object.entries(r))
        check(typeof v !== "number" || Number.isFinite(v), `decodeRecord's ${field} is ${v}`, batch);
      check(r.durNs === null || (Number.isSafeInteger(r.durNs) && r.durNs >= 0), `durNs ${r.durNs}`, batch);
    }
    a.ingest(batch);
    if (next() % 4 === 0) a.settle();
    for (const w of windows.splice(0))
      check(Number.isSafeInteger(w.durNs) && w.durNs >= 0 && Number.isSafeInteger(w.heldNs) && w.heldNs >= 0 &&
        w.launchesDropped >= 0, `a window of ${JSON.stringify({ durNs: w.durNs, heldNs: w.heldNs })}`, batch);
    for (const h of holds.splice(0)) check(Number.isSafeInteger(h.durNs) && h.durNs >= 0, `a hold of ${h.durNs} ns`, batch);
    done += n;
  }
  a?.settle(true);
  const seconds = (Date.now() - t0) / 1000;
  return { target: "decoder", inputs: done, seconds, perSecond: Math.round(done / seconds), coverage: NaN, crashes: 0, timeouts: 0, leaks: 0, exit: 0, tail: "" };
}

/** Runs one target for `runs` inputs from an empty corpus (libFuzzer finds its own way in). */
export async function fuzz(name, runs, dir = path.join(root, ".tmp/fuzz")) {
  if (name === "decoder") {
    try {
      return await fuzzDecoder(runs);
    } catch (e) {
      return { target: "decoder", inputs: NaN, seconds: NaN, perSecond: NaN, coverage: NaN, crashes: 1, timeouts: 0, leaks: 0, exit: 1, tail: e.stack };
    }
  }
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
  const all = [...LIBFUZZER, "decoder"];
  const names = (values.targets ?? all.join(",")).split(",");
  // the revision the targets are built from: taken now, not when the run ends
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).stdout.trim();
  for (const n of names) if (!all.includes(n)) throw new Error(`unknown target "${n}" (targets: ${all.join(", ")})`);
  const results = [];
  for (const n of names) {
    const r = await fuzz(n, runs);
    console.log(`${n}: ${r.inputs} inputs in ${r.seconds.toFixed(0)} s (${r.perSecond}/s), coverage ${r.coverage}, ` +
      `crashes ${r.crashes}, timeouts ${r.timeouts}, leaks ${r.leaks}`);
    if (r.tail) console.log(r.tail);
    results.push(r);
  }
  const failed = results.filter((r) => r.exit !== 0 || r.crashes || r.timeouts || r.leaks || !(r.inputs >= runs));
  const out = resultsPath("fuzz", values.out);
  mkdirSync(out, { recursive: true });
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? "?"}, ${os.platform()} ${os.release()}`;
  const clang = spawnSync("clang", ["--version"], { encoding: "utf8" }).stdout.split("\n")[0];
  writeFileSync(path.join(out, "fuzz.json"), JSON.stringify({ command: `node bench/fuzz.mjs --runs ${runs}`, commit, machine, clang, results }, null, 2) + "\n");
  writeFileSync(path.join(out, "fuzz.md"), [
    `# libFuzzer (\`node bench/fuzz.mjs --runs ${runs}\`, commit ${commit})`, "", `${machine}; ${clang}; ASan + UBSan.`, "",
    "| target | inputs | seconds | inputs/s | coverage (edges) | crashes | timeouts | leaks |", "|---|---|---|---|---|---|---|---|",
    ...results.map((r) => `| ${r.target} | ${r.inputs} | ${r.seconds.toFixed(0)} | ${r.perSecond} | ${Number.isNaN(r.coverage) ? "—" : r.coverage} | ${r.crashes} | ${r.timeouts} | ${r.leaks} |`),
    "",
  ].join("\n"));
  console.log(`results: ${path.relative(process.cwd(), out)}`);
  process.exit(failed.length ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main().catch((e) => {
    console.error(`bench/fuzz.mjs: ${e.message}`);
    process.exit(2);
  });
}
