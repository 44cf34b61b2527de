// The orchestration of `tailguard bench`: one run is one mode of the test (which workers, with or without the shim,
// with which priorities). Workers warm up, say "ready", and start together at a CLOCK_MONOTONIC time sent on their
// stdin; the low-priority worker runs until the high-priority one finishes its schedule (or, alone, for the
// schedule's duration). In the shim's modes the run's rings and GPU control blocks are polled the way `tailguard ps`
// reads them, to prove that every worker attached with the intended priority, and the records of the run's session
// are drained for the low-priority worker's holds.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

import { describeMechanisms, native, Priority } from "../ingest/native.js";
import { cpuTimeNs, readStatFields, statFields } from "../ingest/proc.js";
import { AT_KIND, AT_T_START, durationNs, Kind, RECORD_SIZE } from "../ingest/record.js";
import { Drain } from "../ingest/drain.js";
import { newSession, shimEnv } from "../ingest/session.js";
import type { Scenario } from "./scenarios.js";
import { requestCount } from "./scenarios.js";
import { GpuSampler, type GpuState } from "./gpu-sampler.js";
import { summarize, throughputOutside, windowThroughput, type LatencySummary } from "./stats.js";
import type { Backend, Role, RoleSpec } from "./workers.js";

export type ModeName = "high-alone" | "low-alone" | "native" | "telemetry" | "tailguard";

export interface Mode {
  name: ModeName;
  /** the high-priority role first: workers start in this order */
  roles: Role[];
  /** null: no shim; telemetry: shim attached with every scheduling mechanism off; priority: TAILGUARD_PRIORITY set */
  shim: null | "telemetry" | "priority";
  description: string;
}

export const MODES: Mode[] = [
  { name: "high-alone", roles: ["high"], shim: null, description: "the high-priority worker alone, no shim (the latency reference)" },
  { name: "low-alone", roles: ["low"], shim: null, description: "the low-priority worker alone, no shim (the throughput reference)" },
  { name: "native", roles: ["high", "low"], shim: null, description: "both workers, no shim: the GPU's own time-slicing" },
  { name: "telemetry", roles: ["high", "low"], shim: "telemetry", description: "both workers under the shim at equal priority, holds, timeslice and window off: recording only" },
  { name: "tailguard", roles: ["high", "low"], shim: "priority", description: "both workers under the shim, TAILGUARD_PRIORITY=high / low" },
];

/** Priorities each role is run with, per shim mode (the integer the shim must report). */
export const INTENDED_PRIORITY: Record<"telemetry" | "priority", Record<Role, { env: string; value: number }>> = {
  telemetry: { high: { env: "normal", value: Priority.NORMAL }, low: { env: "normal", value: Priority.NORMAL } },
  priority: { high: { env: "high", value: Priority.HIGH }, low: { env: "low", value: Priority.LOW } },
};

/** Environment of the telemetry-only mode: the shim records, nothing is scheduled (see `tailguard options`). */
export const TELEMETRY_ENV = { TAILGUARD_HOLDS: "0", TAILGUARD_TIMESLICE_US: "0", TAILGUARD_BUDGET_US: "0", TAILGUARD_MIN_SHARE: "0" };

/** What was seen of one worker in the rings and control blocks while it ran. */
export interface Attachment {
  role: Role;
  pid: number;
  intendedPriority: number;
  /** the shim loaded in it: its ring was found */
  ring: boolean;
  ringPriority: number | null;
  /** it reached the GPU through the shim: it had a slot in the GPU's control block */
  slot: boolean;
  slotPriority: number | null;
  /** scheduling mechanisms seen in effect for it at any poll */
  mechanisms: string[];
  /** the mechanisms in effect for it each time they changed, ms from the schedule's start (the first entry: when its
   *  slot was first seen, usually before the start); results written before this existed have none */
  changes?: MechanismChange[];
  polls: number;
  verified: boolean;
  problem?: string;
}

export interface MechanismChange {
  atMs: number;
  mechanisms: string[];
}

/** At most this many changes are kept per worker (a lever flapping every poll would otherwise grow the result). */
const MAX_MECHANISM_CHANGES = 200;

export interface WorkerOutcome {
  role: Role;
  pid: number;
  command: string[];
  code: number | null;
  signal: string | null;
  /** the worker's own JSON summary (last line of its stdout) */
  result: Record<string, unknown> | null;
  stderrTail: string;
}

export interface Hold {
  /** ms from the start of the schedule */
  atMs: number;
  durMs: number;
}

export interface RunRecord {
  mode: ModeName;
  repetition: number;
  /** position of this run in the invocation */
  order: number;
  startNs: string;
  /** the measurement window: the schedule's start to the last high-priority completion (or the duration) */
  windowS: number;
  high: null | {
    latencyMs: number[];
    /** arrival offsets from the start, ms (the timeline's x) */
    arrivalMs: number[];
    gpuMs: number[] | null;
    latency: LatencySummary;
    gpu: LatencySummary | null;
  };
  /** iterPerS: in the window; idleIterPerS: only while no high-priority request was under way (from its scheduled
   *  arrival to its completion), where the mode has one: what sharing costs the batch job outside the requests */
  low: null | { iterations: number; iterPerS: number; idleIterPerS?: number | null; cpu?: LowCpu | null };
  holds: null | { count: number; totalMs: number; list: Hold[] };
  /** the GPU's SM clock, power and utilisation during the measurement window (real GPU with nvidia-smi only) */
  gpuState: GpuState | null;
  workers: WorkerOutcome[];
  attachment: Attachment[] | null;
}

/** The low-priority worker's CPU time (all its threads, user + system, from /proc) from the schedule's start until it
 *  was told to stop: `cores` busy on average, and CPU ms per iteration completed in that time. A batch job that is
 *  host-bound (eager PyTorch with small batches) loses throughput either to more CPU per iteration (host cost) or to
 *  waiting (the GPU, holds): the two tell which. */
export interface LowCpu {
  cores: number;
  msPerIter: number;
}

export class BenchFailure extends Error {}

export interface RunContext {
  backend: Backend;
  scenario: Scenario;
  cpus: Record<Role, number[] | null>;
  /** where samples and the simulated device of each run go */
  work: string;
  /** TAILGUARD_DIR of every run */
  ringDir: string;
  baseEnv: NodeJS.ProcessEnv;
}

const PRELOAD_ERROR = /ERROR: ld\.so: object '[^']*' from LD_PRELOAD cannot be preloaded[^\n]*/;
export const POLL_MS = 50;

class Worker {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  exited: Promise<{ code: number | null; signal: string | null }>;
  private readyWaiters: (() => void)[] = [];
  ready = false;

  constructor(readonly role: Role, readonly command: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(command[0], command.slice(1), { env, stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => {
      this.stdout += d.toString();
      if (!this.ready && /^ready$/m.test(this.stdout)) {
        this.ready = true;
        for (const w of this.readyWaiters) w();
      }
    });
    this.child.stderr!.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-8192)));
    this.child.stdin!.on("error", () => {}); // a worker that died: its exit status says why
    this.exited = new Promise((resolve) => {
      this.child.on("error", (err) => {
        this.stderr += `\ncannot start ${command[0]}: ${err.message}`;
        resolve({ code: null, signal: null });
      });
      this.child.on("close", (code, signal) => resolve({ code, signal }));
    });
  }

  whenReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.ready) return resolve();
      const timer = setTimeout(() => reject(new BenchFailure(`the ${this.role} worker was not ready after ${timeoutMs / 1000} s`)), timeoutMs);
      this.readyWaiters.push(() => (clearTimeout(timer), resolve()));
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        if (!this.ready)
          reject(new BenchFailure(`the ${this.role} worker exited (${code ?? signal}) before it was ready:\n${indent(this.stderr)}`));
      });
    });
  }

  send(line: string) {
    if (this.child.stdin!.writable) this.child.stdin!.write(line + "\n");
  }

  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }

  result(): Record<string, unknown> | null {
    const last = this.stdout.trim().split("\n").pop() ?? "";
    try {
      const v = JSON.parse(last);
      return v && typeof v === "object" ? v : null;
    } catch {
      return null;
    }
  }
}

const indent = (text: string) => text.trim().split("\n").slice(-12).map((l) => `    ${l}`).join("\n");

/** Records one take of the hold collector hands over at most. */
const TAKE_RECORDS = 1 << 18;

/** Drains the records of one session for hold records. */
class HoldCollector {
  private readonly drain: Drain<number>;
  readonly holds = new Map<number, { t: bigint; dur: number }[]>();

  constructor(dir: string, session: string) {
    // what is kept of a ring: its process's pid
    this.drain = new Drain(dir, { session, pollUs: 1000 }, {
      opened: (info) => info.pid,
      records: (pid, data) => {
        for (let off = 0; off < data.length; off += RECORD_SIZE) {
          if (data[off + AT_KIND] !== Kind.HOLD) continue;
          const list = this.holds.get(pid) ?? [];
          list.push({ t: data.readBigUInt64LE(off + AT_T_START), dur: durationNs(data, off) ?? 0 });
          this.holds.set(pid, list);
        }
      },
    });
  }

  pump(): number {
    return this.drain.pump(TAKE_RECORDS);
  }

  async finish(graceMs: number) {
    await this.drain.finish(TAKE_RECORDS, graceMs);
    this.drain.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU time (ns) used so far by every thread of `pid`, user and system, from /proc/PID/stat; null where unreadable. */
export function processCpuNs(pid: number): number | null {
  return cpuTimeNs(readStatFields(pid));
}

/** utime + stime (ns) of a /proc/PID/stat line; null if it is not one. */
export function procStatCpuNs(stat: string): number | null {
  return cpuTimeNs(statFields(stat));
}

/** A process's CPU time at a moment of CLOCK_MONOTONIC (ns). */
interface CpuMark { t: number; cpuNs: number }

function cpuMark(pid: number | undefined): CpuMark | null {
  const cpuNs = pid === undefined ? null : processCpuNs(pid);
  return cpuNs === null ? null : { t: Number(process.hrtime.bigint()), cpuNs };
}

/** LowCpu between two marks, over the iterations completed between them; null without both or without iterations. */
export function lowCpu(from: CpuMark | null, to: CpuMark | null, iterations: readonly (readonly [number, number])[]): LowCpu | null {
  if (!from || !to || to.t <= from.t) return null;
  const done = iterations.filter(([, e]) => e > from.t && e <= to.t).length;
  if (done === 0) return null;
  const used = to.cpuNs - from.cpuNs;
  return { cores: Math.round((used / (to.t - from.t)) * 1000) / 1000, msPerIter: Math.round((used / 1e6 / done) * 1000) / 1000 };
}

function readRows(file: string): number[][] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  return text.split("\n").filter(Boolean).map((l) => l.trim().split(/\s+/).map(Number));
}

/** Runs one mode once. Throws BenchFailure when a worker fails or, in the shim's modes, is not seen attached with its
 *  intended priority. */
export async function runMode(ctx: RunContext, mode: Mode, repetition: number, order: number): Promise<RunRecord> {
  const { backend, scenario } = ctx;
  const tag = `${mode.name}.${repetition}`;
  const session = newSession();
  const intended = mode.shim ? INTENDED_PRIORITY[mode.shim] : null;
  const specs: RoleSpec[] = mode.roles.map((role) =>
    role === "high"
      ? {
          role, model: scenario.high.model, batch: scenario.high.batch, warmup: scenario.high.warmup,
          samples: path.join(ctx.work, `${tag}.high.samples`), cpus: ctx.cpus.high,
          requests: {
            rate: scenario.high.rate, count: requestCount(scenario), arrivals: scenario.high.arrivals,
            seed: scenario.high.seed, flavour: scenario.high.flavour,
          },
        }
      : { role, model: scenario.low.model, batch: scenario.low.batch, warmup: scenario.low.warmup,
          samples: path.join(ctx.work, `${tag}.low.samples`), cpus: ctx.cpus.low });

  const base: NodeJS.ProcessEnv = { ...ctx.baseEnv, ...backend.env, TAILGUARD_DIR: ctx.ringDir,
    TAILGUARD_SIM_DEVICE: path.join(ctx.work, `${tag}.gpu`) };
  // the invoking environment's TAILGUARD_* settings would change what a mode measures: only --shim-env sets any
  // (which shim to test, where the rings go and how much the shims say are not settings of the scheduler)
  const kept = ["TAILGUARD_SHIM", "TAILGUARD_DIR", "TAILGUARD_SIM_DEVICE", "TAILGUARD_LOG_LEVEL"];
  for (const k of Object.keys(base)) if (k === "LD_PRELOAD" || (k.startsWith("TAILGUARD_") && !kept.includes(k))) delete base[k];
  if (backend.env.LD_LIBRARY_PATH && ctx.baseEnv.LD_LIBRARY_PATH)
    base.LD_LIBRARY_PATH = `${backend.env.LD_LIBRARY_PATH}:${ctx.baseEnv.LD_LIBRARY_PATH}`;

  const holds = mode.shim ? new HoldCollector(ctx.ringDir, session) : null;
  const workers: Worker[] = [];
  const attach: Attachment[] | null = intended ? [] : null;
  // mechanism changes per worker, timed by the monotonic clock until the schedule's start is known
  const seen: { t: bigint; mechanisms: string[] }[][] = [];
  const launch = (spec: RoleSpec): Worker => {
    const { file, args } = backend.command(spec);
    let env = base;
    if (intended) {
      env = shimEnv(base, session, { priority: intended[spec.role].env });
      Object.assign(env, mode.shim === "telemetry" ? TELEMETRY_ENV : scenario.shimEnv);
    }
    const w = new Worker(spec.role, [file, ...args], env);
    workers.push(w);
    if (attach && intended) {
      attach.push({
        role: w.role, pid: w.child.pid ?? -1, intendedPriority: intended[w.role].value, ring: false, ringPriority: null,
        slot: false, slotPriority: null, mechanisms: [], polls: 0, verified: false,
      });
      seen.push([]);
    }
    return w;
  };
  const poll = () => {
    if (!attach) return;
    const addon = native();
    const rings = new Map(addon.scanRings(ctx.ringDir).filter((r) => !r.error).map((r) => [r.pid, r]));
    const slots = new Map(addon.controlBlocks(ctx.ringDir).flatMap((b) => b.slots ?? []).map((s) => [s.pid, s]));
    const now = process.hrtime.bigint();
    attach.forEach((a, i) => {
      a.polls++;
      const r = rings.get(a.pid);
      if (r) {
        a.ring = true;
        a.ringPriority = r.priority;
      }
      const s = slots.get(a.pid);
      if (s) {
        a.slot = true;
        a.slotPriority = s.priority;
        const inEffect = describeMechanisms(s);
        for (const m of inEffect) if (!a.mechanisms.includes(m)) a.mechanisms.push(m);
        const last = seen[i].at(-1);
        if ((!last || last.mechanisms.join() !== inEffect.join()) && seen[i].length < MAX_MECHANISM_CHANGES)
          seen[i].push({ t: now, mechanisms: inEffect });
      }
    });
    holds?.pump();
  };

  const timer = setInterval(poll, POLL_MS);
  const sampler = backend.name === "torch" ? new GpuSampler() : null;
  let startNs = 0n;
  let lowCpuFrom: CpuMark | null = null, lowCpuTo: CpuMark | null = null;
  let outcome: WorkerOutcome[];
  try {
    // The high-priority worker first, ready (warmed up, on the GPU) before the low one starts: the low one's warm-up
    // then finds it there, so the scheduler's verdict, which a shim revisits only at its launches, is in effect when the
    // schedule starts rather than from the low worker's first launch after it.
    for (const spec of specs) await launch(spec).whenReady(backend.readyTimeoutMs);
    sampler?.start();
    startNs = process.hrtime.bigint() + BigInt(backend.leadMs) * 1_000_000n; // CLOCK_MONOTONIC on Linux
    for (const w of workers) w.send(`start ${startNs}`);
    const high = workers.find((w) => w.role === "high");
    const low = workers.find((w) => w.role === "low");
    const atStart = setTimeout(() => (lowCpuFrom = cpuMark(low?.child.pid)), backend.leadMs);
    const limitMs = backend.leadMs + scenario.durationS * 3000 + 60_000;
    const deadline = setTimeout(() => workers.forEach((w) => w.kill()), limitMs);
    if (high) await high.exited;
    else await sleep(backend.leadMs + scenario.durationS * 1000);
    lowCpuTo = cpuMark(low?.child.pid);
    low?.send("stop");
    const ends = await Promise.all(workers.map((w) => w.exited));
    clearTimeout(deadline);
    clearTimeout(atStart);
    outcome = workers.map((w, i) => ({
      role: w.role, pid: w.child.pid ?? -1, command: w.command, code: ends[i].code, signal: ends[i].signal,
      result: w.result(), stderrTail: w.stderr.slice(-2000),
    }));
    const failed = outcome.find((o) => o.code !== 0);
    if (failed)
      throw new BenchFailure(`${mode.name} (repetition ${repetition}): the ${failed.role} worker ` +
        `${failed.signal ? `was killed (${failed.signal}${failed.signal === "SIGKILL" ? ", past the time limit" : ""})` : `exited ${failed.code}`}:\n` +
        indent(failed.stderrTail));
  } finally {
    clearInterval(timer);
    sampler?.stop();
    for (const w of workers) w.kill();
    await holds?.finish(2000);
  }

  if (attach) {
    attach.forEach((a, i) => (a.changes = seen[i].map((c) => ({ atMs: round3(Number(c.t - startNs) / 1e6), mechanisms: c.mechanisms }))));
    verifyAttachment(mode, repetition, attach, workers.map((w) => w.stderr), base);
  }

  const start = Number(startNs);
  const record: RunRecord = {
    mode: mode.name, repetition, order, startNs: startNs.toString(), windowS: scenario.durationS,
    high: null, low: null, holds: null, gpuState: null, workers: outcome, attachment: attach,
  };
  let windowEnd = start + scenario.durationS * 1e9;
  let requests: [number, number][] | null = null;
  const highSpec = specs.find((s) => s.role === "high");
  if (highSpec) {
    const rows = readRows(highSpec.samples);
    requests = rows.map(([due, , done]) => [due, done]);
    if (rows.length !== highSpec.requests!.count)
      throw new BenchFailure(`${mode.name} (repetition ${repetition}): the high worker wrote ${rows.length} of ` +
        `${highSpec.requests!.count} samples to ${highSpec.samples}`);
    const latencyMs = rows.map(([due, , done]) => (done - due) / 1e6);
    const gpu = rows.every((r) => r[3] >= 0) ? rows.map((r) => r[3] / 1e6) : null;
    windowEnd = Math.max(...rows.map((r) => r[2]));
    record.high = {
      latencyMs: latencyMs.map(round3), arrivalMs: rows.map(([due]) => round3((due - start) / 1e6)),
      gpuMs: gpu?.map(round3) ?? null, latency: summarize(latencyMs), gpu: gpu ? summarize(gpu) : null,
    };
  }
  record.windowS = (windowEnd - start) / 1e9;
  record.gpuState = sampler?.state(start, windowEnd) ?? null;
  const lowSpec = specs.find((s) => s.role === "low");
  if (lowSpec) {
    const iters = readRows(lowSpec.samples).map(([b, e]) => [b, e] as const);
    if (iters.length === 0)
      throw new BenchFailure(`${mode.name} (repetition ${repetition}): the low worker completed no iteration`);
    const idle = requests ? throughputOutside(iters, start, windowEnd, requests) : NaN;
    record.low = { iterations: iters.length, iterPerS: windowThroughput(iters, start, windowEnd),
      idleIterPerS: Number.isFinite(idle) ? idle : null, cpu: lowCpu(lowCpuFrom, lowCpuTo, iters) };
  }
  if (holds) {
    const lowPid = outcome.find((o) => o.role === "low")?.pid;
    const list = (lowPid !== undefined ? holds.holds.get(lowPid) ?? [] : [])
      .map((h) => ({ atMs: round3(Number(h.t - startNs) / 1e6), durMs: round3(h.dur / 1e6) }))
      .filter((h) => h.atMs + h.durMs >= 0);
    record.holds = { count: list.length, totalMs: round3(list.reduce((a, h) => a + h.durMs, 0)), list };
  }
  return record;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Every worker of a shim mode must have been seen attached (ring), on the GPU (control-block slot) and at its
 *  intended priority; with priorities, the scheduler must have been in effect for the lower one at least once; in
 *  telemetry mode, never. Throws BenchFailure naming every problem. */
export function verifyAttachment(mode: Mode, repetition: number, attach: Attachment[], stderrs: string[], env: NodeJS.ProcessEnv) {
  const problems: string[] = [];
  attach.forEach((a, i) => {
    const who = `the ${a.role} worker (pid ${a.pid})`;
    if (!a.ring) {
      const loader = PRELOAD_ERROR.exec(stderrs[i])?.[0];
      a.problem = `the shim did not attach to ${who}: no ring of it appeared in ${env.TAILGUARD_DIR} in ${a.polls} polls ` +
        `(LD_PRELOAD=${shimEnv(env, "x", {}).LD_PRELOAD})` + (loader ? `; the dynamic loader said: ${loader}` : "");
    } else if (!a.slot) {
      a.problem = `the shim attached to ${who} but it never reached a GPU through the shim (no control-block slot)`;
    } else if (a.slotPriority !== a.intendedPriority) {
      a.problem = `${who} ran at priority ${a.slotPriority}, not the intended ${a.intendedPriority}`;
    } else if (mode.shim === "telemetry" && a.mechanisms.length > 0) {
      a.problem = `scheduling was in effect for ${who} (${a.mechanisms.join(", ")}) in the telemetry-only mode`;
    } else if (mode.shim === "priority" && a.role === "low" && a.mechanisms.length === 0) {
      a.problem = `no scheduling mechanism was ever in effect for ${who} although a higher priority shared its GPU`;
    }
    a.verified = !a.problem;
    if (a.problem) problems.push(a.problem);
  });
  if (problems.length)
    throw new BenchFailure(`${mode.name} (repetition ${repetition}): attachment not verified:\n` +
      problems.map((p) => `  - ${p}`).join("\n"));
}
