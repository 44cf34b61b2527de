// `tailguard run`: runs a command with the shim loaded (and optionally in front of the simulated GPU), collects the
// records of the command and all its children, and says plainly whether the shim attached.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";

import { newSession, shimEnv } from "../ingest/session.js";
import { UsageError } from "./usage.js";
import { native, PRIORITY_ACCEPTED, ringDir, shimPath, simLibDir } from "../ingest/native.js";
import { describePaths, Recording, type ProcessSummary } from "../ingest/recording.js";

/** Exit status of `tailguard run` when no process of the command attached the shim. */
export const EXIT_NOT_ATTACHED = 3;

export interface RunOptions {
  command: string[];
  priority?: string;
  sim?: boolean;
  record?: string;
  env?: NodeJS.ProcessEnv;
  /** where the summary goes (stderr by default) */
  report?: (line: string) => void;
}

export interface RunResult {
  exitCode: number;
  attached: ProcessSummary[];
  records: number;
  preloadError?: string;
  session: string;
  stillRunning: number[];
}

const PRELOAD_ERROR = /ERROR: ld\.so: object '[^']*' from LD_PRELOAD cannot be preloaded[^\n]*/;

export async function run(opts: RunOptions): Promise<RunResult> {
  const report = opts.report ?? ((line: string) => process.stderr.write(line + "\n"));
  if (opts.command.length === 0) throw new UsageError("tailguard run: no command given: name it after -- (tailguard run [options] -- CMD [ARGS...])");
  if (opts.priority !== undefined && native().parsePriority(opts.priority) === null)
    throw new UsageError(`tailguard run: --priority "${opts.priority}" is not a priority (an ${PRIORITY_ACCEPTED})`);
  const base = opts.env ?? process.env;
  if (!existsSync(shimPath(base)))
    throw new Error(`the shim library ${shimPath(base)} does not exist: run \`npm install\` (or fix TAILGUARD_SHIM)`);
  if (opts.sim && !existsSync(`${simLibDir}/libcuda.so.1`))
    throw new Error(`the simulated GPU is not built (${simLibDir}/libcuda.so.1 is missing): run \`npm install\``);

  const session = newSession();
  const env = shimEnv(base, session, opts);
  const recording = new Recording(ringDir(base), session, opts.record ?? null, opts.command);

  const child = spawn(opts.command[0], opts.command.slice(1), { env, stdio: ["inherit", "inherit", "pipe"] });
  let preloadError: string | undefined;
  let stderrTail = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    process.stderr.write(chunk);
    stderrTail = (stderrTail + chunk.toString()).slice(-4096);
    const m = PRELOAD_ERROR.exec(stderrTail);
    if (m && !preloadError) preloadError = m[0];
  });
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);

  const timer = setInterval(() => recording.pump(), 20);
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.on("error", (err) => reject(new Error(`cannot start ${opts.command[0]}: ${err.message}`)));
    child.on("close", (code, signal) => resolve(code ?? 128 + (signal ? osSignal(signal) : 0)));
  }).finally(() => {
    clearInterval(timer);
    for (const [s, h] of handlers) process.off(s, h);
  });
  await recording.finish(2000);

  const attached = [...recording.processes.values()];
  const result: RunResult = {
    exitCode,
    attached,
    records: recording.records,
    preloadError,
    session,
    stillRunning: recording.stillRunning,
  };
  for (const line of summarize(result, opts, recording.problems)) report(line);
  if (attached.length === 0) result.exitCode = exitCode !== 0 ? exitCode : EXIT_NOT_ATTACHED;
  return result;
}

const osSignal = (name: NodeJS.Signals): number => os.constants.signals[name] ?? 0;


const fmt = (n: number) => n.toLocaleString("en-US");

/** The summary printed when the command ends: who attached, what they did, what was lost. */
export function summarize(r: RunResult, opts: RunOptions, problems: string[]): string[] {
  const out: string[] = [];
  const cmd = opts.command.join(" ");
  if (r.attached.length === 0) {
    out.push(`tailguard: NOT ATTACHED: no process of \`${cmd}\` loaded the shim (${shimPath(opts.env)}); nothing was recorded.`);
    if (r.preloadError) out.push(`  the dynamic loader said: ${r.preloadError}`);
    else out.push("  (a statically linked program, a setuid program, or a command that never started cannot load it)");
    out.push("  run `tailguard doctor` for a step-by-step check.");
    return out;
  }
  const dropped = r.attached.reduce((a, p) => a + p.dropped, 0);
  const dest = opts.record ? ` -> ${opts.record}` : "";
  out.push(
    `tailguard: ${r.attached.length} process${r.attached.length > 1 ? "es" : ""} attached (session ${r.session}), ` +
      `${fmt(r.records)} records, ${fmt(dropped)} dropped${dest}`,
  );
  for (const p of r.attached) {
    out.push(`  pid ${p.pid}  priority ${p.priority}  ${p.cmdline.join(" ")}`);
    const via = describePaths(p.attachPaths);
    const gpu = p.gpu ? `gpu ${p.gpu.ordinal} ${p.gpu.name} (${p.gpu.uuid})` : "no GPU work seen";
    out.push(`    attached${via.length ? " via " + via.join(", ") : ""}; ${gpu}; ended: ${p.ended}`);
    out.push(
      `    ${fmt(p.launches)} launches, ${fmt(p.syncs)} syncs, ${fmt(p.copies)} copies, ${fmt(p.dropped)} dropped` +
        (p.torn ? `, ${fmt(p.torn)} torn` : ""),
    );
    if (p.windows || p.holds)
      out.push(`    ${fmt(p.windows)} request windows; held ${fmt(p.holds)} times, ${(p.heldNs / 1e6).toFixed(1)} ms in all`);
    const kernels = [...p.kernels.entries()].sort((a, b) => b[1] - a[1]);
    for (const [name, n] of kernels.slice(0, 10)) out.push(`      ${fmt(n).padStart(12)}  ${name}`);
    if (kernels.length > 10) out.push(`      ... and ${kernels.length - 10} more kernels`);
  }
  if (dropped > 0)
    out.push("  records were dropped because a ring was full: raise TAILGUARD_RING_RECORDS (see `tailguard options`).");
  for (const p of problems) out.push(`  problem: ${p}`);
  if (r.stillRunning.length)
    out.push(`  still running when the command ended (not recorded further): pid ${r.stillRunning.join(", ")}`);
  return out;
}
