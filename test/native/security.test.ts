// A second, unprivileged local user attacks tailguard on a shared GPU (docs/security.md): the processes of root run
// with the shim and a root agent drains them; "mallory" (made with useradd for these tests, removed after) shares the
// directory and the simulated GPU and tries everything the first round's hostile-user review found. Each attack must
// get nothing: no crash, no hang, no hold beyond the lease, no priority above her ceiling. Needs root (useradd,
// setpriv); skipped, with the reason, elsewhere.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { requestsArgs } from "../../bench/sim/contention.mjs";
import { native } from "../../agent/src/ingest/native.js";
import { compileProgram, nativeBuild, root, runProgram, shimLib, simEnv, testDir, type RunResult } from "../support/native.js";
import { startAgent } from "../support/agent-process.js";
import { cli } from "../support/tailguard.js";

const workload = path.join(nativeBuild, "tg-workload");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const isRoot = process.getuid?.() === 0;
const canAttack = isRoot && ["useradd", "userdel", "setpriv"].every(has);

interface User {
  name: string;
  uid: number;
  gid: number;
}

/** The command that runs cmd as `user` (no supplementary groups), or as this process for null. The shim is preloaded
 *  into cmd only: setpriv itself runs as root until it execs. */
function as(user: User | null, cmd: string, args: string[], env: NodeJS.ProcessEnv): [string, string[], NodeJS.ProcessEnv] {
  if (!user) return [cmd, args, env];
  const { LD_PRELOAD, ...rest } = env;
  const preload = LD_PRELOAD ? ["/usr/bin/env", `LD_PRELOAD=${LD_PRELOAD}`] : [];
  return ["setpriv", [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", ...preload, cmd, ...args], rest];
}

function runAs(user: User | null, cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<RunResult> {
  const [c, a, e] = as(user, cmd, args, env);
  return runProgram(c, a, { env: e, timeoutMs });
}

/** A program of `user` in the background; `done` resolves with what runProgram would. */
function startAs(user: User | null, cmd: string, args: string[], env: NodeJS.ProcessEnv) {
  const [c, a, e] = as(user, cmd, args, env);
  const child = spawn(c, a, { env: e, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<RunResult>((resolve) =>
    child.on("close", (code, signal) => resolve({ pid: child.pid, code, signal, stdout, stderr, ms: 0 })));
  return { child, done, stdout: () => stdout, stderr: () => stderr };
}

/** Waits until `check` returns something truthy (polling), or fails after timeoutMs. */
async function until<T>(what: string, check: () => T | undefined | null | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A shared directory as an admin sets it up for every user (docs/security.md), and a simulated GPU both can use. */
function sharedWork(prefix: string) {
  const work = testDir(prefix);
  chmodSync(work, 0o1777); // the simulated GPU's file is made by whoever comes first
  const dir = path.join(work, "rings");
  mkdirSync(dir);
  chmodSync(dir, 0o1777);
  return { work, dir, env: (extra: Record<string, string> = {}) => simEnv(work, { LD_PRELOAD: shimLib, ...extra }) };
}

const controlFiles = (dir: string, uid?: number) =>
  readdirSync(dir).filter((f) => /^gpu-[0-9a-f]{32}\.\d+(\.\d+)?\.ctl$/.test(f) && (uid === undefined || f.split(".")[1] === String(uid)))
    .map((f) => path.join(dir, f));
const ringOf = (dir: string, pid: number) => readdirSync(dir).filter((f) => f.startsWith(`${pid}.`) && f.endsWith(".ring")).map((f) => path.join(dir, f))[0];
const startTicks = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")[19];

describe.skipIf(!canAttack)("a second, unprivileged local user", () => {
  let mallory: User;
  let tamper: string;

  beforeAll(() => {
    const name = `tgm${process.pid % 100000}`;
    spawnSync("userdel", [name]);
    const made = spawnSync("useradd", ["--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name], { encoding: "utf8" });
    if (made.status !== 0) throw new Error(`useradd ${name}: ${made.stderr}`);
    const id = (flag: string) => Number(spawnSync("id", [flag, name], { encoding: "utf8" }).stdout.trim());
    mallory = { name, uid: id("-u"), gid: id("-g") };
    tamper = compileProgram("tamper.c", { extra: [path.join(root, "native/common/control.c")] });
    // the programs and the shim must be reachable by her, as installed software is
    chmodSync(path.dirname(tamper), 0o755);
  });

  afterAll(() => {
    if (mallory) spawnSync("userdel", [mallory.name]);
  });

  it("cannot open, truncate or reprioritise root's control file and ring", async () => {
    const { dir, env } = sharedWork("sec-files");
    const victim = startAs(null, workload, ["requests", ...requestsArgs({ rate: 50, count: 100, kernelUs: 200 })], env({ TAILGUARD_PRIORITY: "high" }));
    const ctl = await until("root's control file", () => controlFiles(dir, 0)[0]);
    const ring = ringOf(dir, victim.child.pid!);
    for (const file of [ctl, ring]) {
      for (const op of [["open", file], ["truncate", file, "0"]]) {
        const r = await runAs(mallory, tamper, op, process.env);
        expect(r.stdout, `${op.join(" ")}`).toMatch(/^denied: Permission denied/);
      }
    }
    const p = await runAs(mallory, process.execPath, [cli, "priority", String(victim.child.pid), "-100"], { ...process.env, TAILGUARD_DIR: dir });
    expect(p.code).not.toBe(0);
    expect(p.stderr).toMatch(new RegExp(`pid ${victim.child.pid} belongs to another user: only that user or root may change its priority`));
    const slot = native().controlBlocks(dir).flatMap((b) => b.slots ?? []).find((s) => s.pid === victim.child.pid);
    expect(slot?.priority).toBe(10);
    expect((await victim.done).code).toBe(0);
  });

  it("runs at her ceiling (normal) whatever she asks for, so root's high-priority process is never held for her", async () => {
    const { work, dir, env } = sharedWork("sec-ceiling");
    const hers = startAs(mallory, workload, ["continuous", "--seconds", "2.5", "--kernels", "4", "--kernel-us", "500"], env({ TAILGUARD_PRIORITY: "100" }));
    const slot = await until("her slot", () => native().controlBlocks(dir).flatMap((b) => b.slots ?? []).find((s) => s.pid === hers.child.pid));
    expect(slot).toMatchObject({ requested: 100, priority: 0 });
    const ps = await runProgram(process.execPath, [cli, "ps"], { env: { ...process.env, TAILGUARD_DIR: dir } });
    expect(ps.stdout).toMatch(new RegExp(`^${hers.child.pid}\\s+running\\s+0 \\(asked 100\\)`, "m"));
    const out = path.join(work, "root.jsonl");
    const rootEnv = simEnv(work);
    delete rootEnv.LD_LIBRARY_PATH;
    const mine = await runProgram(process.execPath,
      [cli, "run", "--sim", "--record", out, "--priority", "high", "--", workload, "requests", ...requestsArgs({ rate: 50, count: 50, kernelUs: 300 })],
      { env: rootEnv });
    expect(mine.code, mine.stderr).toBe(0);
    const holds = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.kind === "hold");
    expect(holds.filter((h) => h.cause_pid === hers.child.pid)).toEqual([]);
    const r = await hers.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/priority 100 is above the ceiling 0 that the default policy gives uid \d+: this process runs at 0/);
  });

  it("forged claims (a live stranger's pid, in a sync, far lease, priority 100) and a taken lock hold nobody", async () => {
    const { dir, env } = sharedWork("sec-forge");
    // root attaches first: the GPU's control files exist; mallory then forges in every one she can write, and in her own
    await runAs(null, workload, ["continuous", "--seconds", "0.1", "--kernels", "1", "--kernel-us", "100"], env());
    const uuid = /gpu-([0-9a-f]{32})/.exec(controlFiles(dir, 0)[0])![1];
    const forged = ["1", startTicks(1), "3600"];
    const everywhere = await runAs(mallory, tamper, ["forge", dir, ...forged], process.env);
    expect(everywhere.stdout).toMatch(/^forged 0$/m); // root's file is not hers to write
    const own = await runAs(mallory, tamper, ["own", dir, uuid, ...forged], process.env);
    expect(own.stdout).toMatch(/^forged 1$/m);
    // a read lock on root's slot bytes proves nothing: anyone who can read the file can take one
    const lock = startAs(mallory, tamper, ["readlock", controlFiles(dir, 0)[0], "256", "5"], process.env);
    await until("her read lock", () => lock.stdout().includes("locked"));
    // a new low-priority process of root's starts (the lock word is not one it takes) and is never held
    const victim = await runAs(null, workload, ["continuous", "--seconds", "1", "--kernels", "2", "--kernel-us", "200"],
      env({ TAILGUARD_PRIORITY: "low", TAILGUARD_LOG_LEVEL: "debug" }), 20_000);
    expect(victim.code, victim.stderr).toBe(0);
    expect(JSON.parse(victim.stdout.trim().split("\n").pop()!).iterations).toBeGreaterThan(500);
    lock.child.kill();
    // her own next process waits for the lock word she took for at most the bound, then runs unscheduled
    const hers = await runAs(mallory, workload, ["continuous", "--seconds", "0.2", "--kernels", "1", "--kernel-us", "100"], env(), 20_000);
    expect(hers.code, hers.stderr).toBe(0);
    expect(hers.stderr).toMatch(/control file's lock stays taken: priorities are not enforced in this process/);
  });

  it("truncating her control file and her ring crashes neither root's process, nor her own, nor the agent", async () => {
    const { dir, env } = sharedWork("sec-truncate");
    const agent = await startAgent(dir);
    const victim = startAs(null, workload, ["requests", ...requestsArgs({ rate: 50, count: 100, kernelUs: 200 })], env({ TAILGUARD_PRIORITY: "high" }));
    const hers = startAs(mallory, workload, ["continuous", "--seconds", "2", "--kernels", "2", "--kernel-us", "300"], env());
    const herCtl = await until("her control file", () => controlFiles(dir, mallory.uid)[0]);
    await until("root's process to follow her file", () => controlFiles(dir, 0)[0]);
    await sleep(500);
    for (const file of [herCtl, ringOf(dir, hers.child.pid!)]) expect((await runAs(mallory, tamper, ["truncate", file, "0"], process.env)).stdout).toMatch(/^truncated/);
    for (const file of controlFiles(dir, 0)) expect((await runAs(mallory, tamper, ["truncate", file, "0"], process.env)).stdout).toMatch(/^denied/);
    const [v, h] = await Promise.all([victim.done, hers.done]);
    expect(v.code, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout.trim().split("\n").pop()!).count).toBe(100);
    expect(h.signal, h.stderr).toBeNull();
    expect(h.code, h.stderr).toBe(0);
    await sleep(300); // the agent looks at each ring every 100 ms
    expect(await agent.metric("tailguard_rings_corrupt_total")).toBeGreaterThanOrEqual(1);
    const stopped = await agent.stop();
    expect(stopped.alive).toBe(true);
    expect(stopped.stderr).toMatch(new RegExp(`pid ${hers.child.pid}\\): the file was truncated under the agent .*; the ring is quarantined`));
  });

  it("garbage in her ring (header, offsets, zeroed lanes, absurd counters) is quarantined; the agent stays up", async () => {
    const { dir, env } = sharedWork("sec-garbage");
    const agent = await startAgent(dir);
    // header bytes, records_offset, the lanes zeroed, lane 0's dropped counter: one process of hers for each
    const damage = [["random", "0", "148", "7"], ["u64", "40", "0x7fffffffffff0000"], ["zero", "4096", "4096"], ["u64", "4112", "0xffffffffffffff00"]];
    const procs = damage.map(() => startAs(mallory, workload, ["continuous", "--seconds", "2", "--kernels", "2", "--kernel-us", "200"], env()));
    await until("her rings", () => procs.every((p) => p.child.pid && ringOf(dir, p.child.pid)));
    await sleep(400); // the agent drains them a while first
    for (const [i, d] of damage.entries()) {
      const [op, ...rest] = d;
      expect((await runAs(mallory, tamper, [op, ringOf(dir, procs[i].child.pid!), ...rest], process.env)).stdout).toMatch(/^written/);
    }
    for (const p of procs) {
      const r = await p.done;
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(0);
    }
    await sleep(400);
    expect(await agent.metric("tailguard_rings_corrupt_total")).toBe(damage.length);
    expect(await agent.metric("tailguard_records_dropped_total")).toBeLessThan(1e6);
    const stopped = await agent.stop();
    expect(stopped.alive).toBe(true);
    for (const p of procs) expect(stopped.stderr).toMatch(new RegExp(`pid ${p.child.pid}\\): .*; the ring is quarantined`));
  });

  it("a directory she made first is not used by root's processes nor by the agent", async () => {
    const work = testDir("sec-dir");
    chmodSync(work, 0o1777);
    const dir = path.join(work, "rings");
    expect((await runAs(mallory, "mkdir", ["-m", "1777", dir], process.env)).code).toBe(0);
    const r = await runProgram(workload, ["continuous", "--seconds", "0.1", "--kernels", "1", "--kernel-us", "100"], { env: simEnv(work, { LD_PRELOAD: shimLib }) });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`this process is neither recorded nor scheduled: ${dir} belongs to uid ${mallory.uid} \\(not root, not uid 0\\)`));
    expect(readdirSync(dir)).toEqual([]);
    const a = await runProgram(process.execPath, [cli, "agent", "--no-prometheus", "--dir", dir], { timeoutMs: 20_000 });
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/belongs to uid \d+ \(not root, not uid 0\): that user could remove or replace every file in it/);
  });

  it("a directory only root can write: her processes and the agent say what the admin must do", async () => {
    const work = testDir("sec-dir-0755");
    chmodSync(work, 0o1777); // her simulated GPU's file goes here
    const dir = path.join(work, "rings");
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const r = await runAs(mallory, workload, ["continuous", "--seconds", "0.1", "--kernels", "1", "--kernel-us", "100"], simEnv(work, { LD_PRELOAD: shimLib }));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`this process is neither recorded nor scheduled: \\S+ \\(owner uid 0, group 0, mode 0755\\) is not writable by uid ${mallory.uid}; the admin should create it as root with mode 1777`));
    expect(r.stderr.split("\n").filter((l) => l.includes("is not writable by uid")), "said once").toHaveLength(1);
    const agent = await startAgent(dir);
    expect((await agent.stop()).stderr).toMatch(/can be written only by uid 0: processes of other users are neither recorded nor scheduled\. For every user: --dir-access all/);
    // the admin's fix, done by the agent: her next process is recorded
    const shared = await startAgent(dir, ["--dir-access", "all"]);
    const again = await runAs(mallory, workload, ["continuous", "--seconds", "0.1", "--kernels", "1", "--kernel-us", "100"], simEnv(work, { LD_PRELOAD: shimLib }));
    expect(again.stderr).toBe("");
    expect(readdirSync(dir).some((f) => f.startsWith(`${again.pid}.`))).toBe(true);
    expect((await shared.stop()).stderr).toBe("");
  });
});

describe.skipIf(!isRoot)("a pid reused by another process", () => {
  it("does not keep a dead high-priority process's claim (it was inside a sync): the low one resumes within the lease", async () => {
    const { dir, env } = sharedWork("sec-pid-reuse");
    void dir;
    const lease = 50;
    const high = startAs(null, workload, ["requests", ...requestsArgs({ rate: 1, count: 1, kernelUs: 3_000_000 })], env({ TAILGUARD_PRIORITY: "high", TAILGUARD_LEASE_MS: String(lease) }));
    await sleep(200);
    const samples = path.join(testDir("sec-pid-reuse-samples"), "low");
    const low = startAs(null, workload, ["requests", ...requestsArgs({ rate: 100, count: 150, kernelUs: 1000 }), "--samples", samples], env({ TAILGUARD_PRIORITY: "low", TAILGUARD_LEASE_MS: String(lease) }));
    await sleep(700);
    const pid = high.child.pid!;
    const ticks = startTicks(pid);
    const gone = high.done;
    const killed = process.hrtime.bigint();
    high.child.kill("SIGKILL");
    await gone;
    // its pid goes to an unrelated process at once (what a busy machine does sooner or later; here a thread of the low
    // process's simulated GPU sometimes takes it first, which is as good)
    let stranger: ChildProcess | null = null;
    const tried: number[] = [];
    for (let i = 0; i < 50 && !existsSync(`/proc/${pid}`); i++) {
      writeFileSync("/proc/sys/kernel/ns_last_pid", String(pid - 1));
      const s = spawn("sleep", ["20"], { stdio: "ignore" });
      tried.push(s.pid!);
      if (s.pid === pid) stranger = s;
      else await new Promise((r) => (s.kill("SIGKILL"), s.once("exit", r)));
    }
    expect(existsSync(`/proc/${pid}`), `could not hand pid ${pid} to another process (got ${tried.join(" ")})`).toBe(true);
    expect(startTicks(pid)).not.toBe(ticks);
    const r = await low.done;
    stranger?.kill("SIGKILL");
    expect(r.code, r.stderr).toBe(0);
    const done = readFileSync(samples, "utf8").trim().split("\n").map((x) => BigInt(x.split(" ")[2]));
    expect(done.length).toBe(150);
    const first = done.find((t) => t > killed)!;
    expect(Number(first - killed) / 1e6).toBeLessThan(lease + 60);
  });
});
