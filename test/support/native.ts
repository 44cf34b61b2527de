// Test harness for native parts: compiles the C programs under test/programs against the project's ABI headers,
// gives each test its own simulated GPU and ring directory, and runs programs with a timeout.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const nativeBuild = path.join(root, "native/build");
export const shimLib = path.join(nativeBuild, "libtailguard.so");
export const simDir = path.join(nativeBuild, "sim");
export const programsDir = path.join(root, "test/programs");
const binDir = path.join(root, ".tmp/test-bin");

export interface CompileOptions {
  /** link against the simulated libcuda (-lcuda) */
  cuda?: boolean;
  /** link against the simulated libamdhip64 (-lamdhip64) */
  hip?: boolean;
  /** extra gcc arguments (defines, -shared, ...) */
  extra?: string[];
}

/** Compiles test/programs/<name> (C) once per content and flags; returns the binary's path. */
export function compileProgram(name: string, opts: CompileOptions = {}): string {
  const src = path.join(programsDir, name);
  const args = ["-std=gnu11", "-O2", "-g", "-pthread", "-Wall", "-Werror", "-Wno-unused-function", "-rdynamic"];
  args.push(`-I${path.join(root, "native/include")}`, ...(opts.extra ?? []));
  const libs: string[] = [];
  if (opts.cuda) libs.push(`-L${simDir}`, "-lcuda");
  if (opts.hip) libs.push(`-L${simDir}`, "-lamdhip64");
  libs.push("-ldl");
  const hash = createHash("sha1")
    .update(readFileSync(src))
    .update(readFileSync(path.join(root, "native/include/tailguard/cuda_abi.h")))
    .update(readFileSync(path.join(root, "native/include/tailguard/hip_abi.h")))
    .update(JSON.stringify([args, libs]))
    .digest("hex")
    .slice(0, 12);
  mkdirSync(binDir, { recursive: true });
  const out = path.join(binDir, `${path.basename(name, ".c")}-${hash}${args.includes("-shared") ? ".so" : ""}`);
  if (!existsSync(out)) execFileSync("gcc", [...args, "-o", out, src, ...libs], { stdio: "pipe" });
  return out;
}

/** A fresh directory for one test: its simulated GPU, its rings, its outputs. */
export function testDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `tg-${prefix}-`));
}

/** Environment that puts the simulated GPU (private to `dir`) in front of any real driver. */
export function simEnv(dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LD_LIBRARY_PATH: [simDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":"),
    TAILGUARD_SIM_DEVICE: path.join(dir, "sim-gpu"),
    TAILGUARD_DIR: path.join(dir, "rings"),
    ...extra,
  };
}

export interface RunResult {
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to completion (or kills it after timeoutMs) and collects its output. */
export function runProgram(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ pid: child.pid, code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** A command prefix that runs a program in a PID namespace (and /proc) of its own, as a container without hostPID;
 *  killing it kills the program. canUnshare: whether this machine allows it (root, or user namespaces), found out
 *  once, by the test files that ask. */
export const ownPidNamespace = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];
let unshareWorks: boolean | undefined;
export function canUnshare(): boolean {
  unshareWorks ??= spawnSync(ownPidNamespace[0], [...ownPidNamespace.slice(1), "true"]).status === 0;
  return unshareWorks;
}
