// Fault injection: live rings and control files are corrupted, zero-filled and truncated -- every region of each
// (offset classes below) -- while their application runs on the simulated GPU and an agent drains it. The promise
// (docs/security.md): the application finishes with its own results unchanged, the agent stays up, and what it can
// tell is wrong it reports (tailguard_rings_corrupt_total, one log line) instead of exporting garbage.
//
//   node bench/fault-inject.mjs [--rounds N] [--seed S] [--out DIR]
//
// Each round runs every case once with offsets drawn inside its class (seeded); test/native/fault-injection.test.ts runs one
// round. Prints a line per case and a summary, and writes faults.json and faults.md to --out (default:
// results/fault-inject-DATE/, bench/report.mjs). Exits 1 on any failure.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, readSync, writeSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

import { native } from "../agent/dist/ingest/native.js";
import { root } from "./common.mjs";
import { resultsPath } from "./report.mjs";

const workload = path.join(root, "native/build/tg-workload");
const shim = path.join(root, "native/build/libtailguard.so");
const cli = path.join(root, "agent/dist/cli.js");

/** Regions of the files (native/include/tailguard/record.h, control.h), and what the agent must make of damage there:
 *  "quarantine" (it can tell, and says so) or "survive" (it cannot tell bytes it does not rely on from good ones, and
 *  must neither crash nor export garbage). */
export const RING_CLASSES = [
  { name: "ring header (magic, sizes, offsets, checksum)", from: 0, to: 148, expect: "quarantine" },
  { name: "ring command line (its first 64 bytes: the checksum covers what is used)", from: 152, to: 216, expect: "quarantine" },
  { name: "ring mutable header (state, GPU, names, consumers)", from: 2200, to: 2408, expect: "survive" },
  { name: "ring lane counters (tail, launches, drops)", from: 4096, to: 4096 + 32, expect: "quarantine" },
  { name: "ring lane positions (head, session_head)", from: 4096 + 64, to: 4096 + 136, expect: "survive" },
  { name: "ring name table", from: 8192, to: 8192 + 4096, expect: "survive" },
  { name: "ring records", from: 8192 + (1 << 20), to: 8192 + (1 << 20) + 64 * 1024, expect: "survive" },
];
export const CONTROL_CLASSES = [
  { name: "control header (magic, version, GPU, checksum)", from: 0, to: 40 },
  { name: "control wake-up words (idle_seq, waiters)", from: 64, to: 72 },
  { name: "control busy mask and minimum share", from: 128, to: 152 },
  { name: "control lock word", from: 192, to: 196 },
  { name: "control slots (pid, priority, busy, lease)", from: 256, to: 256 + 64 * 128 },
];
const ACTIONS = ["random", "zero"];

/** xorshift64*: the offsets and bytes of a case, from its seed. */
function rng(seed) {
  let x = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
  return () => {
    x ^= x << 13n; x &= (1n << 64n) - 1n;
    x ^= x >> 7n;
    x ^= x << 17n; x &= (1n << 64n) - 1n;
    return Number(x % 4294967296n) / 4294967296;
  };
}

/** Every case of one round: each class of each file with each action, and truncation of each file. */
export function cases() {
  const out = [];
  for (const c of RING_CLASSES) for (const a of ACTIONS) out.push({ file: "ring", cls: c, action: a });
  out.push({ file: "ring", cls: { name: "ring truncated to nothing", expect: "quarantine" }, action: "truncate" });
  out.push({ file: "ring", cls: { name: "ring truncated to its header", expect: "quarantine" }, action: "truncate-header" });
  for (const c of CONTROL_CLASSES) for (const a of ACTIONS) out.push({ file: "control", cls: { ...c, expect: "survive" }, action: a });
  out.push({ file: "control", cls: { name: "control file truncated to nothing", expect: "survive" }, action: "truncate" });
  return out;
}

/** Damages the file as the case says; returns what was done, and whether any byte changed (zeros over zeros do not:
 *  nobody can tell such damage, nor needs to). */
function damage(file, kase, random) {
  const fd = openSync(file, "r+");
  try {
    if (kase.action === "truncate") return ftruncateSync(fd, 0), { what: "truncated to 0", changed: true };
    if (kase.action === "truncate-header") return ftruncateSync(fd, 4096), { what: "truncated to 4096", changed: true };
    const { from, to } = kase.cls;
    const at = from + Math.floor(random() * Math.max(1, to - from - 8));
    const len = Math.min(to - at, 1 + Math.floor(random() * 64));
    const bytes = Buffer.alloc(len, 0);
    if (kase.action === "random") for (let i = 0; i < len; i++) bytes[i] = Math.floor(random() * 256);
    const before = Buffer.alloc(len);
    readSync(fd, before, 0, len, at);
    writeSync(fd, bytes, 0, len, at);
    return { what: `${kase.action} ${len} bytes at ${at}`, changed: !before.equals(bytes) };
  } finally {
    closeSync(fd);
  }
}

function start(cmd, args, env) {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const done = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal, out, err })));
  return { child, done, out: () => out, err: () => err };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function metric(url, name) {
  const text = await (await fetch(url)).text();
  return text.split("\n").filter((l) => l.startsWith(name)).reduce((n, l) => n + Number(l.split(" ").pop()), 0);
}

/** One case: its own simulated GPU (so its control file is its own), a high- and a low-priority application sharing
 *  it, the damage 300 ms in. */
async function runCase(kase, { work, dir, url, seed }) {
  const random = rng(seed);
  const env = {
    ...process.env, // (each case's simulated GPU is its own: its UUID comes from its file's path)
    LD_PRELOAD: shim,
    LD_LIBRARY_PATH: path.join(root, "native/build/sim"),
    TAILGUARD_DIR: dir,
    TAILGUARD_SIM_DEVICE: path.join(work, `gpu-${seed}`),
  };
  const count = 60;
  const args = ["requests", "--rate", "100", "--count", String(count), "--kernels", "3", "--kernel-us", "300"];
  const high = start(workload, args, { ...env, TAILGUARD_PRIORITY: "high" });
  const low = start(workload, ["continuous", "--seconds", "0.9", "--kernels", "2", "--kernel-us", "400"], { ...env, TAILGUARD_PRIORITY: "low" });
  await sleep(300);
  // its ring, and its GPU's control file for this user, as the ring's header names the GPU
  const ring = native().scanRings(dir).find((r) => r.pid === high.child.pid && !r.error);
  const gpu = ring?.gpu?.uuid.replace(/^GPU-/, "").replaceAll("-", "");
  const target = kase.file === "ring" ? ring?.path : gpu && path.join(dir, `gpu-${gpu}.${process.getuid()}.ctl`);
  const done = target ? damage(target, kase, random) : { what: "no file to damage", changed: false };
  const [h, l] = await Promise.all([high.done, low.done]);
  let result = null;
  try {
    result = JSON.parse(h.out.trim().split("\n").pop());
  } catch {
    /* reported below */
  }
  const problems = [];
  if (!target) problems.push("the file to damage was not there");
  if (h.signal || h.code !== 0) problems.push(`the high-priority application ended with ${h.signal ?? `status ${h.code}`}: ${h.err.trim()}`);
  if (l.signal || l.code !== 0) problems.push(`the low-priority application ended with ${l.signal ?? `status ${l.code}`}: ${l.err.trim()}`);
  if (result?.count !== count) problems.push(`the application's own result changed: ${JSON.stringify(result)}`);
  return { case: `${kase.cls.name}: ${kase.action}`, file: kase.file, expect: done.changed ? kase.cls.expect : "survive",
    damage: done.what + (done.changed ? "" : " (no byte changed)"), pid: high.child.pid, problems };
}

export async function runFaultInjection({ rounds = 1, seed = 1, parallel = 3 } = {}) {
  const work = mkdtempSync(path.join(os.tmpdir(), "tg-faults-"));
  const dir = path.join(work, "rings");
  const agent = start(process.execPath, [cli, "agent", "--port", "0", "--dir", dir], process.env);
  let url = null;
  for (const end = Date.now() + 20_000; !url; await sleep(25)) {
    url = /Prometheus at (http:\S+\/metrics)/.exec(agent.out())?.[1] ?? null;
    if (!url && (Date.now() > end || agent.child.exitCode !== null)) throw new Error(`the agent did not start: ${agent.err()}`);
  }
  try {
    return await runCases(agent, url, { rounds, seed, parallel, work, dir });
  } finally {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill("SIGKILL"); // a case that threw
  }
}

async function runCases(agent, url, { rounds, seed, parallel, work, dir }) {
  const all = [];
  const list = [];
  for (let r = 0; r < rounds; r++) for (const k of cases()) list.push(k);
  // cases whose control files would be confused run one at a time per device; each case has its own device
  for (let i = 0; i < list.length; i += parallel) {
    const batch = list.slice(i, i + parallel);
    const before = await metric(url, "tailguard_rings_corrupt_total");
    const results = await Promise.all(batch.map((k, j) => runCase(k, { work, dir, url, seed: seed * 100000 + i + j })));
    await sleep(400); // the agent looks at each ring every 100 ms and drains every millisecond
    const after = await metric(url, "tailguard_rings_corrupt_total");
    const alive = agent.child.exitCode === null && agent.child.signalCode === null;
    for (const res of results) {
      if (!alive) res.problems.push(`the agent died: ${agent.err().split("\n").slice(-5).join(" ")}`);
      const said = agent.err().includes(`(pid ${res.pid}): `);
      res.reported = said;
      if (res.expect === "quarantine" && !said) res.problems.push("the agent did not report the damage it can tell");
    }
    if (alive && results.some((r) => r.expect === "quarantine") && after <= before)
      for (const res of results) if (res.expect === "quarantine") res.problems.push("tailguard_rings_corrupt_total did not rise");
    all.push(...results);
    if (!alive) break;
  }
  const dropped = agent.child.exitCode === null ? await metric(url, "tailguard_records_dropped_total") : NaN;
  if (!(dropped < 1e9)) all.push({ case: "agent totals", problems: [`tailguard_records_dropped_total is ${dropped}: garbage exported`] });
  const alive = agent.child.exitCode === null && agent.child.signalCode === null;
  agent.child.kill("SIGINT");
  await agent.done;
  return { alive, dropped, results: all };
}

async function main() {
  const { values } = parseArgs({ options: { rounds: { type: "string" }, seed: { type: "string" }, out: { type: "string" } } });
  const rounds = Number(values.rounds ?? 1);
  const seed = Number(values.seed ?? 1);
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).stdout.trim();
  const t0 = Date.now();
  const r = await runFaultInjection({ rounds, seed });
  for (const c of r.results)
    console.log(`${c.problems.length ? "FAIL" : "ok  "}  ${c.case}${c.damage ? ` (${c.damage})` : ""}${c.reported ? "; reported" : ""}` +
      (c.problems.length ? `\n      ${c.problems.join("\n      ")}` : ""));
  const failed = r.results.filter((c) => c.problems.length);
  const summary = `${r.results.length} cases, ${failed.length} failed; the agent ${r.alive ? "stayed up" : "DIED"}; ` +
    `${r.results.filter((c) => c.reported).length} reported as corrupt; ${((Date.now() - t0) / 1000).toFixed(0)} s`;
  console.log(summary);
  const out = resultsPath("fault-inject", values.out);
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, "faults.json"), JSON.stringify({ command: `node bench/fault-inject.mjs --rounds ${rounds} --seed ${seed}`, commit, ...r }, null, 2) + "\n");
  writeFileSync(path.join(out, "faults.md"), [
    `# Fault injection (\`node bench/fault-inject.mjs --rounds ${rounds} --seed ${seed}\`, commit ${commit})`, "", summary, "",
    "| case | runs | failed | reported as corrupt |", "|---|---|---|---|",
    ...[...new Set(r.results.map((c) => c.case))].map((name) => {
      const of = r.results.filter((c) => c.case === name);
      return `| ${name} | ${of.length} | ${of.filter((c) => c.problems.length).length} | ${of.filter((c) => c.reported).length} |`;
    }),
    "",
  ].join("\n"));
  console.log(`results: ${path.relative(process.cwd(), out)}`);
  process.exit(failed.length || !r.alive ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main().catch((e) => {
    console.error(`bench/fault-inject.mjs: ${e.message}`);
    process.exit(2);
  });
}
