// The two worker backends of `tailguard bench`. Both speak one protocol with the orchestrator (bench/workers/
// torch_worker.py and native/workload/workload.c implement it):
//   argv    `requests` (high priority: --rate R --count N --arrivals fixed|poisson --seed S --gpu-time 1) or
//           `continuous` (low priority, back to back), plus --warmup W --samples FILE --cpus LIST --sync stdio
//   stdout  "ready" once warmed up; after the run, one JSON object (the worker's summary) as the last line
//   stdin   "start <CLOCK_MONOTONIC ns>": the first scheduled arrival / the first iteration; "stop" (continuous only)
//   samples requests: "<scheduled ns> <first launch ns> <completion ns> <GPU ns or -1>" per request;
//           continuous: "<iteration start ns> <iteration end ns>" per iteration
// The torch backend runs ResNets with PyTorch on a real GPU; the sim backend runs tg-workload on the simulated GPU
// with kernel-duration mixes that mimic those models (docs/bench.md says where the numbers come from).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { packageRoot, simLibDir } from "../ingest/native.js";
import { UsageError } from "../cli/usage.js";
import { resnet18Mix, resnet50Mix, SIM_MIXES } from "../sim-models.js";

export type Role = "high" | "low";

export interface RoleSpec {
  role: Role;
  model: string;
  batch: number;
  warmup: number;
  samples: string;
  cpus: number[] | null;
  /** high only */
  requests?: { rate: number; count: number; arrivals: string; seed: number; flavour: string };
}

export interface Backend {
  name: "sim" | "torch";
  /** program and arguments of one worker */
  command(spec: RoleSpec): { file: string; args: string[] };
  /** environment additions of every worker (the shim's, per mode, come on top) */
  env: NodeJS.ProcessEnv;
  /** how long a worker may take to load and warm up before it says "ready" */
  readyTimeoutMs: number;
  /** time between the last "ready" and the start of the schedule */
  leadMs: number;
  check(): void;
}

const common = (s: RoleSpec): string[] => [
  "--warmup", String(s.warmup),
  "--samples", s.samples,
  "--sync", "stdio",
  ...(s.cpus ? ["--cpus", s.cpus.join(",")] : []),
];

const requestArgs = (s: RoleSpec): string[] => {
  const r = s.requests!;
  return ["--rate", String(r.rate), "--count", String(r.count), "--arrivals", r.arrivals, "--seed", String(r.seed),
    "--gpu-time", "1"];
};

export const simBackend: Backend = {
  name: "sim",
  command(s) {
    const mix = s.model === "resnet18" ? resnet18Mix(s.batch) : resnet50Mix(s.batch);
    const args = s.role === "high"
      ? ["requests", ...requestArgs(s), "--mix", mix,
        ...(s.requests!.flavour === "graph" ? ["--graph", "1"] : ["--launch-gap-us", String(SIM_MIXES.eagerGapUs)])]
      : ["continuous", "--mix", mix];
    args.push("--name", `${s.model}_b${s.batch}`, ...common(s));
    return { file: path.join(packageRoot, "native/build/tg-workload"), args };
  },
  env: { LD_LIBRARY_PATH: simLibDir },
  readyTimeoutMs: 20_000,
  leadMs: 100,
  check() {
    for (const f of [path.join(packageRoot, "native/build/tg-workload"), path.join(simLibDir, "libcuda.so.1")])
      if (!existsSync(f)) throw new Error(`${f} is missing: run \`make -C native\` (or \`npm install\`)`);
  },
};

export function torchBackend(python: string): Backend {
  const script = path.join(packageRoot, "bench/workers/torch_worker.py");
  return {
    name: "torch",
    command(s) {
      const args = [script, s.role === "high" ? "requests" : "continuous", "--model", s.model, "--batch", String(s.batch)];
      if (s.role === "high") args.push(...requestArgs(s), "--flavour", s.requests!.flavour);
      args.push(...common(s));
      return { file: python, args };
    },
    env: { PYTHONUNBUFFERED: "1" },
    readyTimeoutMs: 300_000,
    leadMs: 500,
    check() {
      if (!existsSync(script)) throw new Error(`${script} is missing`);
    },
  };
}

/** A CPU list as the kernel and taskset write it ("2,3", "0-1,6-15") as numbers; null if it is not one. */
function cpuList(text: string): number[] | null {
  const out: number[] = [];
  for (const part of text.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) return null;
    for (let c = Number(m[1]); c <= Number(m[2] ?? m[1]); c++) out.push(c);
  }
  return out;
}

/** Parses a CPU list ("2,3", "4-7", "none"). */
export function parseCpus(flag: string, text: string): number[] | null {
  if (text === "none") return null;
  const out = cpuList(text);
  if (!out) throw new UsageError(`tailguard bench: ${flag} "${text}" is not a CPU list (e.g. 2,3 or 4-7, or none)`);
  const n = os.availableParallelism();
  const bad = out.find((c) => c >= n);
  if (bad !== undefined) throw new UsageError(`tailguard bench: ${flag} names CPU ${bad}, this machine has ${n}`);
  return out;
}

/** Default pinning: two CPUs per worker away from CPU 0-1 (the orchestrator and interrupts), as the original harness
 *  did; on machines too small for separate CPUs, none (recorded in the result). The orchestrator itself is kept off the
 *  workers' CPUs by pinProcess (command.ts). */
export function defaultCpus(): { high: number[] | null; low: number[] | null; note: string } {
  const n = os.availableParallelism();
  if (n >= 6) return { high: [2, 3], low: [4, 5], note: `pinned: high 2,3; low 4,5 of ${n} CPUs` };
  if (n >= 4) return { high: [1], low: [2, 3].filter((c) => c < n), note: `pinned: high 1; low 2,3 of ${n} CPUs` };
  return { high: null, low: null, note: `not pinned: ${n} CPUs are too few to give each worker its own` };
}

/** The CPUs the orchestrator keeps to: every CPU no worker is pinned to; null when no worker is pinned or none is left. */
export function orchestratorCpus(cpus: Record<Role, number[] | null>, n = os.availableParallelism()): number[] | null {
  const taken = new Set([...(cpus.high ?? []), ...(cpus.low ?? [])]);
  if (taken.size === 0) return null;
  const rest = Array.from({ length: n }, (_, c) => c).filter((c) => !taken.has(c));
  return rest.length ? rest : null;
}

/** Pins every thread of process `pid` to `cpus` (util-linux taskset; Node has no affinity call): the orchestrator's
 *  own threads, its record collector and the nvidia-smi sampler it starts (children inherit the mask) would otherwise
 *  land on a pinned worker's CPUs now and then and take time from it. Returns null, or why it could not. Workers set
 *  their own affinity when they start, so they are not bound by the orchestrator's. */
export function pinProcess(pid: number, cpus: number[]): string | null {
  try {
    execFileSync("taskset", ["-a", "-p", "-c", cpus.join(","), String(pid)], { stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer; message: string };
    return e.code === "ENOENT" ? "taskset not found" : (e.stderr?.toString().trim() || e.message).split("\n")[0];
  }
  // taskset -a reports success for a process it found no thread of: the kernel's word is what counts
  let allowed: string | undefined;
  try {
    allowed = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  } catch {
    return `no process ${pid}`;
  }
  const want = formatCpus([...cpus].sort((a, b) => a - b));
  return allowed !== undefined && formatCpus(cpuList(allowed) ?? []) === want ? null
    : `its CPUs are ${allowed ?? "unknown"} after taskset, not ${want}`;
}

/** A CPU list as ranges, the way parseCpus reads it: [0, 1, 6, 7, 8] -> "0,1,6-8". */
export function formatCpus(cpus: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j] + 1) j++;
    parts.push(j >= i + 2 ? `${cpus[i]}-${cpus[j]}` : cpus.slice(i, j + 1).join(","));
    i = j + 1;
  }
  return parts.join(",");
}
