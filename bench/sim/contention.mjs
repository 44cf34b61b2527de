// Processes contending for the simulated GPU: what the scheduler tests and `npm run bench:sched` run.
//
// Each process is a tg-workload (native/workload) on one shared simulated device, started directly with the shim
// preloaded (no agent, no `tailguard run`: scheduling must work without them) or without it (native). Latency-
// sensitive processes run `requests` (open loop, one request = K kernels then a stream sync) and write per-request
// samples; batch processes run `continuous`. The simulated GPU's kernel trace gives each kernel's end on the device.
//
// Two latencies per request:
//   end-to-end: scheduled arrival -> the sync returned (what the application sees; on a small shared machine it is
//               dominated by how fast the OS wakes the process, not by the GPU)
//   device:     the request's first launch call -> its last kernel's end on the device (what GPU scheduling
//               decides: queueing behind other processes' work, time slices, holds)
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";

import { median, root } from "../common.mjs";

export { median, root };
const workload = path.join(root, "native/build/tg-workload");
const shim = path.join(root, "native/build/libtailguard.so");
const simLib = path.join(root, "native/build/sim");
/** Untimed requests a request process sends first: its first launch sets up its simulated-GPU worker and slot. */
const WARMUP = 1;
/** Request processes share one schedule: the first request of a process started startDelayMs after the others is due
 * this long plus startDelayMs after contend() begins (time to start the processes and send their warmups; a warmup
 * held past it makes the first requests late, which the latencies then show). */
const LEAD_MS = 300;

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[k];
}


/** P50/P90/P99/max of millisecond samples. */
export function summary(ms) {
  const s = [...ms].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] };
}

/** One simulated-GPU trace file: kernels by process. */
function readTrace(file) {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [stream, seq, name, start, end, used] = line.split(" ");
      return { stream, seq: Number(seq), name, start: BigInt(start), end: BigInt(end), usedNs: Number(used) };
    });
}

function run(name, args, env, wrap = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(wrap[0] ?? workload, [...wrap.slice(1), ...(wrap.length ? [workload] : []), ...args],
      { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve({ name, pid: child.pid, code, signal, out, err }));
    run.last = child;
  });
}

/**
 * Runs processes on one fresh simulated GPU. procs: [{ name, priority (string/number, or null for no shim),
 * kind: "requests" | "continuous", args: tg-workload arguments after the mode, startDelayMs, env, wrap: a command
 * that runs tg-workload (e.g. unshare into a PID namespace of its own) }].
 * Returns, per process: exit status, its JSON output, and for request processes the per-request latencies.
 */
export async function contend(procs, { work, sliceUs = 1000, env: extraEnv = {}, hooks = {} } = {}) {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(path.join(work, "trace"), { recursive: true });
  const base = {
    ...process.env,
    LD_LIBRARY_PATH: simLib,
    TAILGUARD_SIM_DEVICE: path.join(work, "gpu"),
    TAILGUARD_SIM_SLICE_US: String(sliceUs),
    TAILGUARD_SIM_TRACE: path.join(work, "trace"),
    TAILGUARD_DIR: path.join(work, "shm"),
    ...extraEnv,
  };
  delete base.LD_PRELOAD;
  delete base.TAILGUARD_PRIORITY;
  const running = [];
  const started = Date.now();
  const schedule = process.hrtime.bigint() + BigInt(LEAD_MS) * 1000000n; // CLOCK_MONOTONIC on Linux, as tg-workload
  for (const [i, p] of procs.entries()) {
    const wait = (p.startDelayMs ?? 0) - (Date.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const env = { ...base, ...(p.env ?? {}) };
    if (p.priority !== null && p.priority !== undefined) {
      env.LD_PRELOAD = shim;
      env.TAILGUARD_PRIORITY = String(p.priority);
    }
    const args = [p.kind, ...p.args];
    if (p.kind === "requests") {
      const startNs = schedule + BigInt(Math.round((p.startDelayMs ?? 0) * 1e6));
      args.push("--samples", path.join(work, `samples.${i}`), "--warmup", String(WARMUP), "--start-ns", String(startNs));
    }
    running.push(run(p.name, args, env, p.wrap));
    if (hooks.started) hooks.started(run.last, p, i);
  }
  const done = await Promise.all(running);
  const traces = existsSync(path.join(work, "trace"))
    ? Object.fromEntries(
        readdirSync(path.join(work, "trace")).map((f) => [Number(f.split(".").pop()), readTrace(path.join(work, "trace", f))]),
      )
    : {};
  return done.map((r, i) => {
    const p = procs[i];
    const res = { ...r, priority: p.priority, kernels: traces[r.pid] ?? [] };
    try {
      res.result = JSON.parse(r.out.trim().split("\n").pop());
    } catch {
      res.result = null;
    }
    if (p.kind === "requests" && existsSync(path.join(work, `samples.${i}`))) {
      const perRequest = Number(p.args[p.args.indexOf("--kernels") + 1]);
      const rows = readFileSync(path.join(work, `samples.${i}`), "utf8").split("\n").filter(Boolean)
        .map((l) => l.split(" ").map(BigInt));
      const bySeq = new Map(res.kernels.map((k) => [k.seq, k]));
      res.endToEndMs = rows.map(([due, , done]) => Number(done - due) / 1e6);
      res.deviceMs = rows.map(([, launched], j) => {
        const last = bySeq.get((WARMUP + j) * perRequest + perRequest - 1);
        return last ? Number(last.end - launched) / 1e6 : NaN;
      });
    }
    return res;
  });
}

/** The arguments of a high-priority request stream and of a batch process, as the acceptance describes them. */
export function requestsArgs({ rate = 50, count = 200, kernels = 1, kernelUs = 500, name = "high_k" } = {}) {
  return ["--rate", String(rate), "--count", String(count), "--kernels", String(kernels), "--kernel-us", String(kernelUs), "--name", name];
}
export function batchArgs({ seconds = 4, kernels = 10, kernelUs = 200, name = "low_k" } = {}) {
  return ["--seconds", String(seconds), "--kernels", String(kernels), "--kernel-us", String(kernelUs), "--name", name];
}
