// The CLI as users run it: `tailguard ps`, `tailguard doctor`, `tailguard demo`, `tailguard options` (`npm start`, the
// agent's demo, is in agent.test.ts).
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";

import { native } from "../../agent/src/ingest/native.js";
import { nativeBuild, root, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { cli } from "../support/tailguard.js";

const workload = path.join(nativeBuild, "tg-workload");
/** Runs the CLI itself without the shim (a preloaded shim sweeps stale rings too, before `ps` could). */
const tailguard = (args: string[], env: NodeJS.ProcessEnv) => {
  const { LD_PRELOAD: _, ...clean } = env;
  return runProgram(process.execPath, [cli, ...args], { env: clean });
};

/** Starts a workload with the shim preloaded (no recorder) and waits until its ring shows launches. */
async function startAttached(dir: string, extra: Record<string, string>) {
  const env = simEnv(dir, { LD_PRELOAD: shimLib, ...extra });
  const child = spawn(workload, ["continuous", "--seconds", "30", "--kernels", "4", "--kernel-us", "500"], {
    env,
    stdio: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    const ring = native().scanRings(env.TAILGUARD_DIR!).find((r) => r.pid === child.pid);
    if (ring?.gpu && ring.counters.launches > 0) return { child, env };
    await sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error("the workload never showed up attached");
}

describe("tailguard ps", () => {
  it("lists attached processes with pid, priority, GPU and counters, and cleans up after dead ones", async () => {
    const dir = testDir("ps");
    const { child, env } = await startAttached(dir, { TAILGUARD_PRIORITY: "high" });
    try {
      const r = await tailguard(["ps", "--json"], env);
      expect(r.code, r.stderr).toBe(0);
      const listed = JSON.parse(r.stdout);
      const me = listed.processes.find((p: any) => p.pid === child.pid);
      expect(me).toMatchObject({ alive: true, state: "running", priority: 10, gpu: "0:tailguard simulated GPU" });
      expect(me.launches).toBeGreaterThan(0);
      expect(me.dropped).toBe(0); // a few thousand launches in a lane of 65,536: nothing may have been lost
      expect(me.command).toMatch(/tg-workload continuous/);
      expect(me.via).toEqual(["cuda: cuGetProcAddress", "cuda: dlsym"]);
      const table = await tailguard(["ps"], env);
      expect(table.stdout).toMatch(/^PID\s+STATE\s+PRIO\s+SCHED\s+HELD\s+GPU\s+LAUNCHES\s+DROPS\s+READER\s+COMMAND/);
      // alone on its GPU: no mechanism in effect, never held
      expect(table.stdout).toMatch(new RegExp(`^${child.pid}\\s+running\\s+10\\s+-\\s+0\\.0ms\\s+0:tailguard simulated GPU`, "m"));
    } finally {
      child.kill("SIGKILL");
    }
    await new Promise((r) => child.on("close", r));
    // killed: no exit record, no unlink by the shim; nobody will read the ring, so ps removes it
    const after = JSON.parse((await tailguard(["ps", "--json"], env)).stdout);
    expect(after.processes.find((p: any) => p.pid === child.pid)).toBeUndefined();
    expect(after.removed).toBeGreaterThanOrEqual(1);
  });

  it("keeps the ring of a dead process while its recording session's recorder lives", async () => {
    const dir = testDir("ps-keep");
    const { child, env } = await startAttached(dir, { TAILGUARD_SESSION: `${process.pid}-pskeep` });
    child.kill("SIGKILL");
    await new Promise((r) => child.on("close", r));
    const after = JSON.parse((await tailguard(["ps", "--json"], env)).stdout);
    expect(after.processes.find((p: any) => p.pid === child.pid)).toMatchObject({ alive: false, state: "gone" });
  });

  it("reports a corrupted ring as corrupt instead of trusting it", async () => {
    const dir = testDir("ps-corrupt");
    const env = simEnv(dir);
    const rings = env.TAILGUARD_DIR!;
    await runProgram("/bin/true", [], { env: { ...env, LD_PRELOAD: shimLib, TAILGUARD_SESSION: `${process.pid}-c` } });
    const [ring] = native().scanRings(rings);
    const bytes = readFileSync(ring.path);
    bytes.writeUInt32LE(ring.ppid + 1, 60); // the parent pid, inside the checksummed descriptor
    writeFileSync(ring.path, bytes);
    const listed = JSON.parse((await tailguard(["ps", "--json"], env)).stdout);
    expect(listed.processes.find((p: any) => p.pid === ring.pid)).toMatchObject({
      state: "corrupt",
      command: "(corrupt: header checksum mismatch)",
    });
  });
});

describe("tailguard priority", () => {
  it("refuses a name that several processes have, listing them, unless --all; a pid changes that one", async () => {
    const dir = testDir("priority");
    const a = await startAttached(dir, { TAILGUARD_PRIORITY: "normal" });
    const b = await startAttached(dir, { TAILGUARD_PRIORITY: "normal" });
    const priorities = async () => {
      const listed = JSON.parse((await tailguard(["ps", "--json"], a.env)).stdout).processes;
      return [a, b].map(({ child }) => listed.find((p: any) => p.pid === child.pid)?.priority);
    };
    try {
      const refused = await tailguard(["priority", "tg-workload", "low"], a.env);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/2 processes match "tg-workload"; nothing was changed/);
      const user = process.getuid?.() === 0 ? "root" : "\\S+";
      for (const { child } of [a, b])
        expect(refused.stderr).toMatch(new RegExp(`^  ${child.pid}\\s+${user}\\s+priority 0\\s+\\S*tg-workload continuous`, "m"));
      expect(refused.stderr).toMatch(/tailguard priority PID low.*tailguard priority tg-workload low --all/s);
      expect(await priorities()).toEqual([0, 0]);

      const one = await tailguard(["priority", String(a.child.pid), "-20"], a.env);
      expect(one.code, one.stderr).toBe(0);
      expect(await priorities()).toEqual([-20, 0]);

      const every = await tailguard(["priority", "tg-workload", "low", "--all"], a.env);
      expect(every.code, every.stderr).toBe(0);
      expect(every.stdout).toContain(`${a.child.pid} `);
      expect(every.stdout).toContain(`${b.child.pid} `);
      expect(await priorities()).toEqual([-10, -10]);
    } finally {
      a.child.kill("SIGKILL");
      b.child.kill("SIGKILL");
    }
  });
});

describe("tailguard doctor", () => {
  it("passes every check on the simulated GPU", async () => {
    const dir = testDir("doctor");
    const r = await tailguard(["doctor", "--sim"], simEnv(dir));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ok\s+attach to a process/);
    expect(r.stdout).toMatch(/ok\s+launch interception\s+on the simulated GPU .*3 of 3 launches recorded, via cuda: exported symbols, cuda: cuGetProcAddress/);
    expect(r.stdout).toMatch(/the shim attaches and records launches on this machine/);
    expect(r.stdout).toMatch(/ok\s+ring directory\s+.*rings \(owner uid 0, group 0, mode 1777\): every user's processes can attach/);
    expect(r.stdout).toMatch(/ok\s+priority policy\s+no .*\/policy: unprivileged users may go up to normal \(0\); uid 0 may take priorities up to 100 \(the admin\)/);
  });

  it("fails a policy other users can write, or one with a bad line, naming the line", async () => {
    const dir = testDir("doctor-policy");
    const env = simEnv(dir);
    mkdirSync(env.TAILGUARD_DIR!, { mode: 0o1777 });
    writeFileSync(path.join(env.TAILGUARD_DIR!, "policy"), "default high\n", { mode: 0o666 });
    chmodSync(path.join(env.TAILGUARD_DIR!, "policy"), 0o666);
    const r = await tailguard(["doctor", "--sim"], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+priority policy\s+.*\/policy is not used: users other than its owner can write it; only the defaults apply/);
    chmodSync(path.join(env.TAILGUARD_DIR!, "policy"), 0o644);
    writeFileSync(path.join(env.TAILGUARD_DIR!, "policy"), "default high\nuid 0 bogus\n");
    const bad = await tailguard(["doctor", "--sim"], env);
    expect(bad.stdout).toMatch(/FAIL\s+priority policy\s+.*\/policy line 2 "uid 0 bogus": the priority is not -100\.\.100, high, normal or low; only the defaults apply/);
  });

  it("says plainly that the shim did not attach, and why", async () => {
    const dir = testDir("doctor-fail");
    const bogus = path.join(dir, "libtailguard.so");
    writeFileSync(bogus, "not a library");
    const r = await tailguard(["doctor", "--sim"], { ...simEnv(dir), TAILGUARD_SHIM: bogus, TAILGUARD_PRIORTY: "x", TAILGUARD_WINDOW_US: "0" });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL\s+shim library\s+.*not an ELF file/);
    expect(r.stdout).toMatch(/FAIL\s+TAILGUARD_\* variables\s+TAILGUARD_PRIORTY is not a tailguard option/);
    // an old name is not a typo: said, but it is no reason to fail
    expect(r.stdout).toMatch(/TAILGUARD_\* variables\s+.*; TAILGUARD_WINDOW_US is the old name of TAILGUARD_BUDGET_US \(still read\); rename it/);
    expect(r.stdout).not.toMatch(/TAILGUARD_WINDOW_US is not a tailguard option/);
    expect(r.stdout).toMatch(/FAIL\s+attach to a process\s+NOT ATTACHED: .*the loader said: ERROR: ld\.so: object/);
    expect(r.stdout).toMatch(/problem\(s\): the shim will NOT record/);
  });
});

describe("tailguard demo", () => {
  it("runs a recorded inference-like workload on the simulated GPU, with its summary", async () => {
    const dir = testDir("demo");
    const r = await runProgram(process.execPath, [cli, "demo"], { env: simEnv(dir), cwd: root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/1 process attached/);
    expect(r.stderr).toMatch(/240 launches/); // 20 requests of 12 kernels
    expect(r.stderr).toMatch(/resnet_block/);
    const file = /Every launch, sync and copy is in (\S+) /.exec(r.stdout)?.[1];
    expect(file && existsSync(file)).toBe(true);
    const lines = readFileSync(file!, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.kind === "launch")).toHaveLength(240);
    expect(JSON.parse(r.stdout.split("\n").find((l) => l.startsWith("{"))!).count).toBe(20);
  });
});

describe("tailguard options", () => {
  it("prints every variable of the options table", async () => {
    const r = await tailguard(["options"], process.env);
    expect(r.code).toBe(0);
    for (const o of native().options()) expect(r.stdout).toContain(o.variable);
    expect(r.stdout).toMatch(/TAILGUARD_BUDGET_US {2}\(default: 1000; .*; formerly TAILGUARD_WINDOW_US\)/);
  });
});
