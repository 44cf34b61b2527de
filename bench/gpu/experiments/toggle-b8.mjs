// Probe for the eager batch-8 question of docs/scheduling.md (not the product): one high-priority and one
// low-priority worker of the `default` eager scenario (toggle-b8.py) run for SECONDS under the shim while this driver
// cycles three states every SEGMENT seconds, so that the states are compared within one pair of processes:
//   A  prioritized: the request process at priority high, the batch job low (holds and the short timeslice in effect)
//   B  equal: the request process set to the batch job's priority (no mechanism: what telemetry-only does)
//   C  prioritized, requests paused: the mechanisms in effect with an idle high-priority process
// A collector drains the rings as the agent would. Per state: the batch job's it/s, host ms per iteration to enqueue
// and ms waiting in the sync, from 1 s after each switch; paired per cycle (A÷B, C÷B).
// Usage (repository root, GPU machine, node on PATH): node bench/gpu/experiments/toggle-b8.mjs OUTDIR [SECONDS]
// [SEGMENT] (TOGGLE_SHIM_ENV below). Writes OUTDIR/toggle.json and prints the table.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";

import { median } from "../../common.mjs";
import { cycleRatios } from "./toggle-summary.mjs";

const [out, seconds = "288", segment = "8"] = process.argv.slice(2);
const addon = createRequire(import.meta.url)(process.cwd() + "/build/Release/tailguard.node");
execFileSync("make", ["-C", "native", "build/libtailguard.so"], { stdio: "ignore" });
execFileSync("taskset", ["-a", "-p", "-c", "0,1", String(process.pid)], { stdio: "ignore" });
const dir = "/tmp/tg-toggle";
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
mkdirSync(out, { recursive: true });
// TOGGLE_SHIM_ENV="TAILGUARD_HOLDS=0 ...": more shim settings for both workers (a lever switched off in every state)
const shimEnv = Object.fromEntries((process.env.TOGGLE_SHIM_ENV ?? "").split(/\s+/).filter(Boolean).map((kv) => kv.split("=")));
const HIGH = addon.parsePriority("high"), LOW = addon.parsePriority("low");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()); // CLOCK_MONOTONIC, as Python's time.monotonic_ns

function worker(role, priority) {
  const env = { ...process.env, LD_PRELOAD: process.cwd() + "/native/build/libtailguard.so", TAILGUARD_DIR: dir,
    TAILGUARD_PRIORITY: priority, ...shimEnv };
  const child = spawn("python3", ["bench/gpu/experiments/toggle-b8.py", role], { env, stdio: ["pipe", "pipe", "inherit"] });
  let text = "";
  const ready = new Promise((resolve) => child.stdout.on("data", (d) => { text += d; if (/^ready$/m.test(text)) resolve(); }));
  const done = new Promise((resolve) => child.on("exit", () => resolve(JSON.parse(text.split("\n").filter((l) => l.startsWith("{")).pop()))));
  return { child, ready, done, send: (s) => child.stdin.write(s + "\n") };
}

const high = worker("high", "high");
await high.ready;
const low = worker("low", "low");
await low.ready;
const collector = new addon.Collector(dir, { pollUs: 1000 });
const drain = setInterval(() => collector.take(1 << 18), 50);
const states = [];
const set = (state) => {
  addon.setPriority(dir, high.child.pid, state === "B" ? LOW : HIGH);
  if (state === "C") high.send("pause");
  else if (states.at(-1)?.state === "C") high.send("resume");
  states.push({ state, at: now() });
};
high.send("go");
low.send("go");
const cycle = ["A", "B", "C"];
for (let i = 0; i * Number(segment) < Number(seconds); i++) {
  set(cycle[i % 3]);
  await sleep(2000); // the low shim revisits its verdict every 20 ms: what it shows 2 s in is the state's
  const slot = addon.controlBlocks(dir).flatMap((b) => b.slots ?? []).find((x) => x.pid === low.child.pid);
  states.at(-1).lowMechanisms = slot ? slot.mechanisms : null;
  await sleep(Number(segment) * 1000 - 2000);
}
states.push({ state: "end", at: now() });
high.send("stop");
low.send("stop");
const [h, l] = [await high.done, await low.done];
clearInterval(drain);
collector.take(1 << 18);
collector.close();

const SETTLE = 1e9;
// Per segment; and where the batch job's time goes in each state: its iterations that overlap a request (from
// scheduled arrival to completion), those that begin within 15 ms after one, and the rest.
const classes = {};
const segs = states.slice(0, -1).map((s, i) => {
  const from = s.at + SETTLE, to = states[i + 1].at;
  const its = l.rows.filter(([b, , e]) => b >= from && e <= to);
  const reqs = h.rows.filter(([d, c]) => d >= from && c <= to).map(([d, c]) => (c - d) / 1e6).sort((a, b) => a - b);
  for (const [b, e, d] of its) {
    const near = h.rows.filter(([due, done]) => done > b - 20e6 && due < d + 20e6);
    const cls = near.some(([due, done]) => b < done && d > due) ? "during" : near.some(([, done]) => b >= done && b - done < 15e6) ? "after" : "clear";
    const c = (classes[`${s.state} ${cls}`] ??= { n: 0, ns: 0, enqueueNs: 0 });
    c.n++, c.ns += d - b, c.enqueueNs += e - b;
  }
  const mean = (f) => its.reduce((a, r) => a + f(r), 0) / its.length / 1e6;
  return { state: s.state, cycle: Math.floor(i / 3), lowMechanisms: s.lowMechanisms, itPerS: its.length / ((to - from) / 1e9), enqueueMs: mean((r) => r[1] - r[0]),
    syncMs: mean((r) => r[2] - r[1]), requests: reqs.length, highP50Ms: reqs[Math.floor(reqs.length / 2)] ?? null };
});
const rows = ["A", "B", "C"].map((st) => {
  const g = segs.filter((s) => s.state === st);
  return `| ${st} | ${g.length} | ${median(g.map((s) => s.itPerS)).toFixed(1)} | ${median(g.map((s) => s.enqueueMs)).toFixed(3)} | ${median(g.map((s) => s.syncMs)).toFixed(3)} | ${st === "C" ? "–" : median(g.map((s) => s.highP50Ms)).toFixed(3)} |`;
});
const rAB = cycleRatios(segs, "A"), rCB = cycleRatios(segs, "C");
const classTable = ["| state | iterations | overlapping a request: n, ms/it | beginning ≤ 15 ms after one: n, ms/it | the rest: n, ms/it |", "|---|---|---|---|---|",
  ...["A", "B", "C"].map((st) => `| ${st} | ${["during", "after", "clear"].reduce((a, k) => a + (classes[`${st} ${k}`]?.n ?? 0), 0)} | ` +
    ["during", "after", "clear"].map((k) => { const c = classes[`${st} ${k}`]; return c ? `${c.n}, ${(c.ns / c.n / 1e6).toFixed(3)}` : "–"; }).join(" | ") + " |")];
const table = ["| state | segments | batch it/s | enqueue ms/it | sync wait ms/it | high P50 ms |", "|---|---|---|---|---|---|", ...rows, "",
  `A÷B per cycle: median ${median(rAB).toFixed(3)}, range ${Math.min(...rAB).toFixed(3)}–${Math.max(...rAB).toFixed(3)} (${rAB.length} cycles); ` +
  `C÷B: median ${median(rCB).toFixed(3)}, range ${Math.min(...rCB).toFixed(3)}–${Math.max(...rCB).toFixed(3)}`, "", ...classTable].join("\n");
writeFileSync(`${out}/toggle.json`, JSON.stringify({ shimEnv, seconds: Number(seconds), segment: Number(segment), states, segments: segs, classes, high: h.rows, low: l.rows }));
writeFileSync(`${out}/toggle.md`, table + "\n");
console.log(table);
