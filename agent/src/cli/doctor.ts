// `tailguard doctor`: checks, step by step and in plain words, that the shim loads into a process and sees its
// kernel launches on every path. The original evaluation's scheduler silently failed to preload; here that shows up
// as a failed step with the loader's own message and what to do about it.
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import path from "node:path";

import { native, packageRoot, ringDir, shimPath, simLibDir } from "../ingest/native.js";
import { describePaths, Recording } from "../ingest/recording.js";
import { newSession, shimEnv } from "../ingest/session.js";
import { AttachPath } from "../ingest/record.js";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

const probePath = path.join(packageRoot, "native/build/tg-probe");

function elfClass(file: string): string | null {
  const fd = openSync(file, "r");
  const b = Buffer.alloc(20);
  readSync(fd, b, 0, 20, 0);
  closeSync(fd);
  if (b.readUInt32BE(0) !== 0x7f454c46) return null;
  const bits = b[4] === 2 ? "64-bit" : "32-bit";
  const machine = b.readUInt16LE(18);
  const arch = machine === 62 ? "x86-64" : machine === 183 ? "aarch64" : `machine ${machine}`;
  return `ELF ${bits} ${arch}`;
}

/** An NVIDIA driver is installed: its device node exists and the loader can find libcuda.so.1. */
function cudaDriverPresent(env: NodeJS.ProcessEnv): boolean {
  if (!existsSync("/dev/nvidiactl")) return false;
  const dirs = (env.LD_LIBRARY_PATH ?? "").split(":").filter(Boolean);
  if (dirs.some((d) => existsSync(path.join(d, "libcuda.so.1")))) return true;
  try {
    return execFileSync("/sbin/ldconfig", ["-p"], { encoding: "utf8" }).includes("libcuda.so.1");
  } catch {
    return false;
  }
}

/** Runs `cmd` with the shim under a fresh session and reports which of its processes attached. */
async function probeRun(cmd: string[], env: NodeJS.ProcessEnv, sim: boolean) {
  const session = newSession();
  const recording = new Recording(ringDir(env), session, null, cmd);
  const r = spawnSync(cmd[0], cmd.slice(1), { env: shimEnv(env, session, { sim }), encoding: "utf8", timeout: 30_000 });
  await recording.finish(2000);
  return { spawn: r, processes: [...recording.processes.values()] };
}

export async function doctor(opts: { sim?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<Check[]> {
  const env = opts.env ?? process.env;
  const addon = native();
  const checks: Check[] = [];
  const shim = shimPath(env);

  // 1. the library
  if (!existsSync(shim)) {
    checks.push({ name: "shim library", ok: false, detail: `${shim} does not exist`, fix: "run `npm install` (or fix TAILGUARD_SHIM)" });
    return checks;
  }
  const cls = elfClass(shim);
  const host = process.arch === "x64" ? "x86-64" : process.arch === "arm64" ? "aarch64" : process.arch;
  const clsOk = !!cls && cls.startsWith("ELF 64-bit") && cls.endsWith(host);
  checks.push({
    name: "shim library",
    ok: clsOk,
    detail: `${shim} (${cls ?? "not an ELF file"})`,
    fix: clsOk ? undefined : `rebuild it for this machine (${host}): npm install`,
  });

  // 2. where rings go: the shim's own rule (tailguard/directory.h), and who else can attach there
  const dir = ringDir(env);
  const d = addon.checkDir(dir, true);
  const mode = d.mode.toString(8).padStart(4, "0");
  if (!d.trusted || !d.writable)
    checks.push({ name: "ring directory", ok: false, detail: d.problem, fix: "see docs/security.md (directory and modes)" });
  else
    checks.push({
      name: "ring directory",
      ok: true,
      detail: `${dir} (owner uid ${d.uid}, group ${d.gid}, mode ${mode}): ${
        d.mode & 0o002 ? "every user's processes can attach" : d.mode & 0o020 ? `processes of group ${d.gid}'s members can attach` : `only uid ${d.uid}'s processes can attach`
      }`,
    });

  // 3. the admin's priority policy, and this user's ceiling under it
  const policy = addon.policy(dir);
  const uid = process.geteuid?.() ?? -1;
  checks.push({
    name: "priority policy",
    ok: policy.problem === "",
    detail:
      (policy.problem || (policy.fromFile ? `${dir}/policy: ${policy.rules.length} rule(s), default ceiling ${policy.defaultCeiling}` : `no ${dir}/policy: unprivileged users may go up to normal (0)`)) +
      `; uid ${uid} may take priorities up to ${policy.myCeiling}${uid === 0 || uid === policy.adminUid ? " (the admin)" : ""}`,
    fix: policy.problem ? "the policy must belong to root (or the directory's owner) and be writable by nobody else; see docs/security.md" : undefined,
  });

  // 4. options in the environment
  const known = new Map(addon.options().map((o) => [o.variable, o]));
  const renamed = new Map(addon.options().filter((o) => o.formerly).map((o) => [o.formerly, o.variable]));
  const bad: string[] = [], old: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith("TAILGUARD_") || v === undefined) continue;
    const now = renamed.get(k);
    // an old name still works (the shim warns once per process): worth saying, not a failure
    if (now) old.push(`${k} is the old name of ${now}` + (env[now] ? ` (ignored: ${now} is set too)` : " (still read); rename it"));
    else if (!known.has(k)) bad.push(`${k} is not a tailguard option`);
    else if (k === "TAILGUARD_PRIORITY" && addon.parsePriority(v) === null) bad.push(`TAILGUARD_PRIORITY="${v}" is not a priority`);
  }
  checks.push({
    name: "TAILGUARD_* variables",
    ok: bad.length === 0,
    detail: bad.length || old.length ? [...bad, ...old].join("; ") : "none set, or all valid",
    fix: bad.length ? "see `tailguard options` for names and accepted values" : undefined,
  });

  // 5. does a plain process load it?
  const plain = await probeRun(["/bin/sh", "-c", "/bin/true"], env, false);
  const loaderError = /ERROR: ld\.so:[^\n]*/.exec(plain.spawn.stderr ?? "")?.[0];
  checks.push({
    name: "attach to a process",
    ok: plain.processes.length > 0,
    detail: plain.processes.length
      ? `the shim loaded into ${plain.processes.length} process(es) of \`sh -c /bin/true\` and registered`
      : `NOT ATTACHED: \`sh -c /bin/true\` ran without the shim${loaderError ? `; the loader said: ${loaderError}` : ""}`,
    fix: plain.processes.length ? undefined : "the shim must be a loadable shared library for this machine; check the path above",
  });
  if (!plain.processes.length) return checks;
  // the ceiling check above reads the policy as this process; a priority asked above it is worth saying
  const asked = env.TAILGUARD_PRIORITY ? addon.parsePriority(env.TAILGUARD_PRIORITY) : null;
  if (asked !== null && asked > policy.myCeiling)
    checks.push({
      name: "TAILGUARD_PRIORITY",
      ok: false,
      detail: `${asked} is above this user's ceiling ${policy.myCeiling}: processes run at ${policy.myCeiling}`,
      fix: "ask the admin for a higher ceiling in the policy (docs/security.md)",
    });

  // 6. does it see launches on every path?
  const sim = opts.sim || !cudaDriverPresent(env);
  if (!existsSync(probePath)) {
    checks.push({ name: "launch interception", ok: false, detail: `${probePath} is missing`, fix: "run `npm install`" });
    return checks;
  }
  const probe = await probeRun([probePath], env, sim);
  const where = sim ? "the simulated GPU" : "the CUDA driver";
  const p = probe.processes[0];
  let out: { ok?: boolean; device?: string } = {};
  try {
    out = JSON.parse((probe.spawn.stdout ?? "").trim().split("\n").pop() ?? "{}");
  } catch {
    /* reported below */
  }
  if (!out.ok) {
    checks.push({
      name: "launch interception",
      ok: false,
      detail: `the probe could not launch on ${where}: ${(probe.spawn.stdout || probe.spawn.stderr || "no output").trim()}`,
      fix: sim ? `is ${simLibDir} built? run \`npm install\`` : "run `tailguard doctor --sim` to check without the GPU",
    });
    return checks;
  }
  const paths = p?.attachPaths ?? 0;
  const seen = p?.launches ?? 0;
  const pathsOk = (paths & AttachPath.CUDA_SYMBOL) !== 0 && (paths & AttachPath.CUDA_GPA) !== 0;
  checks.push({
    name: "launch interception",
    ok: seen === 3 && pathsOk,
    detail: `on ${where} (${out.device}): ${seen} of 3 launches recorded, via ${describePaths(paths).join(", ") || "no path"}`,
    fix: seen === 3 && pathsOk ? undefined : "report this: the shim loaded but missed launches",
  });
  return checks;
}

export function formatChecks(checks: Check[]): string[] {
  const out = checks.map((c) => `  ${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(22)} ${c.detail}${c.fix ? `\n        -> ${c.fix}` : ""}`);
  const failed = checks.filter((c) => !c.ok);
  out.push(
    failed.length
      ? `tailguard doctor: ${failed.length} problem(s): the shim will NOT record (or schedule) everything on this machine.`
      : "tailguard doctor: the shim attaches and records launches on this machine.",
  );
  return out;
}

