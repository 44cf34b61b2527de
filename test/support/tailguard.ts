// Runs the real `tailguard` CLI (agent/dist, built by `npm install` / `pretest`) and reads its recordings.
import { readFileSync } from "node:fs";
import path from "node:path";

import { root, runProgram, simEnv, type RunResult } from "./native.js";

export const cli = path.join(root, "agent/dist/cli.js");

export interface Recorded {
  run: RunResult;
  lines: Record<string, any>[];
  /** records of one kind, in file order */
  of(kind: string): Record<string, any>[];
}

/** `tailguard run --sim --record FILE [--priority P] -- cmd...` with the test's private simulated GPU and rings. */
export async function recordRun(
  dir: string,
  cmd: string[],
  opts: { priority?: string; env?: Record<string, string>; sim?: boolean; timeoutMs?: number } = {},
): Promise<Recorded> {
  const out = path.join(dir, `record-${Date.now()}-${Math.random().toString(16).slice(2)}.jsonl`);
  const args = [cli, "run", ...(opts.sim === false ? [] : ["--sim"]), "--record", out];
  if (opts.priority) args.push("--priority", opts.priority);
  const env = simEnv(dir, opts.env);
  delete env.LD_LIBRARY_PATH; // --sim must be what puts the simulated GPU in front
  const run = await runProgram(process.execPath, [...args, "--", ...cmd], { env, timeoutMs: opts.timeoutMs ?? 120_000 });
  let lines: Record<string, any>[] = [];
  try {
    lines = readFileSync(out, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    /* no recording: the test looks at run.stderr */
  }
  return { run, lines, of: (kind) => lines.filter((l) => l.kind === kind) };
}

/** Counts of `key` values among `items`. */
export function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of items) out[key(t)] = (out[key(t)] ?? 0) + 1;
  return out;
}
