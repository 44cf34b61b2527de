// Cross-process priorities (native/shim/sched.c, budget.c, interpose/ioctl.c) on the simulated GPU, with no agent:
// the processes are started with the shim preloaded and arbitrate among themselves. Latency targets are measured by
// `npm run bench:sched` (bench/sched.mjs), not here; these tests check behaviour: who is held, what the driver is
// asked, that every stream's kernels run in order, and that nothing stays held when a process dies or stops.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { contend, requestsArgs, batchArgs, summary, median } from "../../bench/sim/contention.mjs";
import { native, type ControlSlot } from "../../agent/src/ingest/native.js";
import { canUnshare, compileProgram, nativeBuild, ownPidNamespace, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { recordRun } from "../support/tailguard.js";

const workload = path.join(nativeBuild, "tg-workload");

/** Every process's kernels, per stream, ran in the order they were launched (sequence numbers rise with time). */
function expectStreamOrder(kernels: { stream: string; seq: number; start: bigint; end: bigint }[]) {
  const byStream = new Map<string, typeof kernels>();
  for (const k of kernels) byStream.set(k.stream, [...(byStream.get(k.stream) ?? []), k]);
  for (const ks of byStream.values()) {
    const seqs = ks.map((k) => k.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i)); // none lost
    for (let i = 1; i < ks.length; i++) expect(ks[i].start >= ks[i - 1].end).toBe(true);
  }
}

/** A busy high-priority process (`high`) gets `signal` 0.7 s in, while a low-priority one sends 1 ms requests every 10
 *  ms; `target` picks the pid to signal (the workload itself by default). The low one must have been held while the
 *  high one was busy (nothing completed in the 300 ms before the signal) and resume within the lease (plus a little
 *  for this small machine) after it. */
async function expectResumedAfterSignal(work: string, signal: "SIGKILL" | "SIGSTOP", high: object,
  target: (child: import("node:child_process").ChildProcess) => number = (c) => c.pid!) {
  const lease = 50;
  let signalled = 0n;
  const low = { name: "low", kind: "requests", priority: "low", args: requestsArgs({ rate: 100, count: 150, kernelUs: 1000 }), startDelayMs: 200 };
  const [h, l] = await contend([{ name: "high", kind: "requests", priority: "high", ...high }, low], {
    work,
    env: { TAILGUARD_LEASE_MS: String(lease) },
    hooks: {
      started: (child: import("node:child_process").ChildProcess, p: { name: string }) => {
        if (p.name !== "high") return;
        setTimeout(() => {
          signalled = process.hrtime.bigint(); // CLOCK_MONOTONIC, like the workload's samples
          process.kill(target(child), signal);
        }, 700);
        if (signal === "SIGSTOP") setTimeout(() => child.kill("SIGKILL"), 2600); // after low is done
      },
    },
  });
  expect(h.signal ?? h.code, h.err).not.toBe(0); // killed (unshare, whose child was killed, exits 1)
  expect(l.code, l.err).toBe(0);
  const done = readFileSync(path.join(work, "samples.1"), "utf8").trim().split("\n").map((x) => BigInt(x.split(" ")[2]));
  expect(done.length).toBe(150);
  expect(done.filter((t) => t > signalled - 300_000_000n && t < signalled)).toEqual([]);
  const first = done.find((t) => t > signalled)!;
  expect(Number(first - signalled) / 1e6).toBeLessThan(lease + 25);
}

describe("priorities on the simulated GPU", () => {
  // The two direction checks below compare runs of processes on a 2-core machine shared with other test files: their
  // distributions overlap at the tails (one whole-file run in three or four failed one of them here), so each gets two
  // more tries. A real regression fails every try.
  it("a high-priority request stream is not slowed by a low-priority batch process; kernels stay in order", { retry: 2 }, async () => {
    const work = testDir("sched-pair");
    const high = { name: "high", kind: "requests", priority: "high", args: requestsArgs({ count: 60 }), startDelayMs: 250 };
    const low = { name: "low", kind: "continuous", priority: "low", args: batchArgs({ seconds: 1.8, kernelUs: 200 }) };
    const [l, h] = await contend([low, high], { work });
    const [nl, nh] = await contend(
      [{ ...low, priority: null }, { ...high, priority: null }],
      { work: path.join(work, "native") },
    );
    for (const r of [l, h, nl, nh]) expect(r.code, r.err).toBe(0);
    for (const r of [l, h]) expectStreamOrder(r.kernels);
    // Native time-slicing makes high wait behind the low process's 1 ms slices; with priorities it waits at most a
    // short slice. (The ratio to standalone is bench/sched.mjs's job; this is the direction, with a wide margin.)
    expect(summary(h.deviceMs).p50).toBeLessThan(0.8 * summary(nh.deviceMs).p50);
    expect(l.result.iterations).toBeGreaterThan(0.5 * nl.result.iterations);
  });

  it("three priority levels across six processes: no deadlock, and higher priority gets strictly lower latency", async () => {
    const work = testDir("sched-six");
    // each process asks for 40% of the GPU: together 2.4 GPUs' worth, so the lower levels must wait
    const proc = (name: string, priority: string, i: number) => ({
      name,
      kind: "requests",
      priority,
      args: requestsArgs({ rate: 40, count: 60, kernels: 10, kernelUs: 1000, name }),
      startDelayMs: i * 7,
    });
    const procs = [proc("h1", "high", 0), proc("n1", "normal", 1), proc("l1", "low", 2),
      proc("h2", "high", 3), proc("n2", "normal", 4), proc("l2", "low", 5)];
    const results = await contend(procs, { work });
    for (const r of results) {
      expect(r.code, `${r.name}: ${r.err}`).toBe(0);
      expectStreamOrder(r.kernels);
    }
    const level = (p: string) => median(results.filter((r) => r.priority === p).map((r) => summary(r.endToEndMs).p50));
    expect(level("high")).toBeLessThan(level("normal"));
    expect(level("normal")).toBeLessThan(level("low"));
  });

  for (const signal of ["SIGKILL", "SIGSTOP"] as const) {
    it(`${signal} of the busy high-priority process: the low-priority process resumes within the lease`, async () => {
      // high: one 3-second kernel, then a sync (busy, and validly so, all along)
      await expectResumedAfterSignal(testDir(`sched-${signal}`), signal, { args: requestsArgs({ rate: 1, count: 1, kernelUs: 3_000_000 }) });
    });
  }

  for (const api of ["cuda", "hip"]) {
    it(`${api}: a high-priority process that polls for completion (stream queries) instead of syncing ends its request windows`, async () => {
      const work = testDir(`sched-poll-${api}`);
      // a long lease, so only the query can end high's windows: without it, high would look busy from its first
      // request on (each launch renews the claim) and low would wait for all of them
      const env = { TAILGUARD_LEASE_MS: "1000" };
      const high = (poll: number) => ({ name: "high", kind: "requests", priority: "high", startDelayMs: 150,
        args: [...requestsArgs({ rate: 20, count: 20, kernelUs: 5000 }), "--poll", String(poll), "--api", api] });
      const low = { name: "low", kind: "continuous", priority: "low", args: [...batchArgs({ seconds: 1.3, kernels: 4, kernelUs: 500 }), "--api", api] };
      const [synced] = await contend([low, high(0)], { work: path.join(work, "sync"), env });
      const [polled, h] = await contend([low, high(1)], { work: path.join(work, "poll"), env });
      expect(h.code, h.err).toBe(0);
      const got = `low iterations: high syncing ${synced.result.iterations}, high polling ${polled.result.iterations}`;
      expect(synced.result.iterations, got).toBeGreaterThan(100);
      expect(polled.result.iterations, got).toBeGreaterThan(0.6 * synced.result.iterations);
    });
  }

  for (const wait of ["sync", "query"]) {
    it(`an event found complete (${wait}) while later work still runs on its stream does not end the request window`, async () => {
      const dir = testDir(`sched-event-${wait}`);
      const bin = compileProgram("event_window.c", { cuda: true });
      const r = await recordRun(dir, [bin, wait], { priority: "high" });
      expect(r.run.code, r.run.stderr).toBe(0);
      const syncBegan = BigInt(r.run.stdout.trim().split("\n").pop()!);
      const origin = BigInt(r.lines[0].origin_monotonic_ns);
      const windows = r.of("window").filter((w) => w.op === "end");
      expect(windows).toHaveLength(1);
      // its end (t + dur) comes after the stream sync began, not at the event
      expect(origin + BigInt(windows[0].t) + BigInt(windows[0].dur)).toBeGreaterThan(syncBegan);
    });
  }

  it("every hold is a record naming the process and request window that caused it; the run summary counts them", async () => {
    const dir = testDir("sched-holds");
    const env = simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "high" });
    const highRun = runProgram(workload, ["requests", "--rate", "50", "--count", "100", "--kernels", "1", "--kernel-us", "2000"], { env });
    // low syncs after every short kernel, so it calls again within ~0.1 ms and meets most of high's 2 ms windows
    // (with longer batches its short timeslice lets high finish while it waits in its own sync, and holds are rare)
    const r = await recordRun(dir, [workload, "continuous", "--seconds", "1.2", "--kernels", "1", "--kernel-us", "100"], { priority: "low" });
    const high = await highRun;
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(high.code, high.stderr).toBe(0);
    const holds = r.of("hold").filter((h) => h.op === "priority");
    expect(holds.length).toBeGreaterThan(20);
    const attach = r.of("process").find((p) => p.op === "attach")!;
    for (const h of holds) {
      expect(h).toMatchObject({ pid: attach.pid, priority: -10, cause_priority: 10, released_by: "idle" });
      expect(h.cause_pid).not.toBe(attach.pid);
      expect(h.cause_window).toBeGreaterThanOrEqual(1);
      expect(h.dur).toBeGreaterThan(0);
    }
    // the causes are the high process's successive request windows
    expect(new Set(holds.map((h) => h.cause_window)).size).toBeGreaterThan(3);
    expect(r.run.stdout + r.run.stderr).toMatch(new RegExp(`request windows; held ${holds.length} times, [0-9.]+ ms in all`));
  });

  it("TAILGUARD_BUDGET_US bounds a low-priority process's in-flight work; its old name still works, said once", async () => {
    const dir = testDir("sched-budget");
    // high: attached all along but nearly idle (a 0.1 ms request every 0.5 s), so what holds low is its own budget.
    // HIP: with the CUDA timeslice lever in force the budget is off (sched.c), whatever its value.
    const { spawn } = await import("node:child_process");
    const high = spawn(workload, ["requests", "--rate", "2", "--count", "1000", "--kernels", "1", "--kernel-us", "100", "--api", "hip"],
      { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "high" }), stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const low = async (vars: Record<string, string>) => {
        const r = await recordRun(dir, [workload, "continuous", "--seconds", "0.4", "--kernels", "8", "--kernel-us", "2000", "--api", "hip"],
          { priority: "low", env: vars });
        expect(r.run.code, r.run.stderr).toBe(0);
        const said = r.run.stderr.split("\n").filter((l) => l.startsWith("tailguard[") && l.includes("TAILGUARD_WINDOW_US"));
        const budgetHolds = r.of("hold").filter((h) => h.op === "budget");
        for (const h of budgetHolds) expect(h).toMatchObject({ priority: -10, released_by: "drained" });
        return { said, holds: budgetHolds.length };
      };
      // the old name alone is read: 0 (unbounded) where the default would bound at 1 ms
      const old = await low({ TAILGUARD_WINDOW_US: "0" });
      expect(old.holds).toBe(0);
      expect(old.said).toHaveLength(1);
      expect(old.said[0]).toMatch(/warning: TAILGUARD_WINDOW_US is the old name of TAILGUARD_BUDGET_US: its value "0" is used; set TAILGUARD_BUDGET_US instead$/);
      // both set: the new name wins, either way round
      const bounded = await low({ TAILGUARD_WINDOW_US: "0", TAILGUARD_BUDGET_US: "1000" });
      expect(bounded.holds).toBeGreaterThan(20);
      expect(bounded.said).toHaveLength(1);
      expect(bounded.said[0]).toMatch(/warning: TAILGUARD_WINDOW_US \(the old name of TAILGUARD_BUDGET_US\) is ignored: TAILGUARD_BUDGET_US="1000" is set too and wins; unset TAILGUARD_WINDOW_US$/);
      const unbounded = await low({ TAILGUARD_WINDOW_US: "1000", TAILGUARD_BUDGET_US: "0" });
      expect(unbounded.holds).toBe(0);
      expect(unbounded.said).toHaveLength(1);
      expect(unbounded.said[0]).toMatch(/TAILGUARD_WINDOW_US \(the old name of TAILGUARD_BUDGET_US\) is ignored: TAILGUARD_BUDGET_US="0" is set too/);
    } finally {
      high.kill("SIGKILL");
    }
  });

  it("TAILGUARD_MIN_SHARE: a low-priority process gets GPU time even while higher-priority work never stops", { retry: 2 }, async () => {
    const work = testDir("sched-share");
    // high: 100 kernels of 0.5 ms per sync, so it is idle (and low may run) only briefly every 50 ms (with 50 a sync,
    // idle every 25 ms, a loaded 2-core machine let low run 4-11 iterations without the option, and the check below
    // failed all three tries in CI; with 100, ten runs here, four beside other test files: starved 2-5, shared 12-20)
    const high = { name: "high", kind: "continuous", priority: "high", args: batchArgs({ seconds: 1.5, kernels: 100, kernelUs: 500 }) };
    const low = { name: "low", kind: "continuous", priority: "low", args: batchArgs({ seconds: 1.2, kernelUs: 500 }), startDelayMs: 150 };
    const [, starved] = await contend([high, low], { work });
    const [, shared] = await contend([high, { ...low, env: { TAILGUARD_MIN_SHARE: "20" } }], { work: path.join(work, "share") });
    // 20% of 1.2 s would be ~48 iterations of 5 ms; high's already-queued work still takes its time slices during
    // low's turns, so low gets less, and how much less depends on how full high's queue is when a turn begins
    // (measured 8-25 here), but several times what it gets without the option (1-5: only in the gaps between high's
    // syncs and its next launches; five runs each on 0084aad and on this code: 2/15 5/10 5/19 4/8 4/18 and 4/14 3/8
    // 3/14 3/10 3/18 starved/shared, so a 3x margin failed one run in three on both)
    const got = `starved ${starved.result.iterations}, shared ${shared.result.iterations}`;
    expect(shared.result.iterations, got).toBeGreaterThanOrEqual(6);
    expect(shared.result.iterations, got).toBeGreaterThanOrEqual(2 * Math.max(2, starved.result.iterations));
  });

  it("a corrupt control file turns scheduling off with one message; the program runs normally", async () => {
    const dir = testDir("sched-corrupt");
    const env = simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "low" });
    const args = ["continuous", "--seconds", "0.2", "--kernels", "2", "--kernel-us", "100"];
    expect((await runProgram(workload, args, { env })).code).toBe(0);
    const ctl = readdirSync(path.join(dir, "rings")).find((f) => f.startsWith("gpu-") && f.endsWith(".ctl"))!;
    expect(ctl).toBeDefined();
    const buf = readFileSync(path.join(dir, "rings", ctl));
    buf[40] ^= 0xff; // inside the header, under the checksum
    buf.writeUInt32LE(0xdeadbeef, 36);
    writeFileSync(path.join(dir, "rings", ctl), buf);
    const r = await runProgram(workload, args, { env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).iterations).toBeGreaterThan(10);
    const lines = r.stderr.trim().split("\n").filter((x) => x.includes("control file"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/corrupt or from another tailguard version .*: priorities are not enforced/);
  });
});

// Containers sharing a GPU and $TAILGUARD_DIR without sharing a PID namespace: a pid names another process, or none,
// across them. The high-priority process runs in a PID namespace (and /proc) of its own, as in a pod without hostPID.

describe.skipIf(!canUnshare())("priorities across PID namespaces", () => {
  it("each process keeps its own slot, the other namespace's high priority holds the low one, and its claims are seen", async () => {
    const work = testDir("sched-pidns");
    const high = { name: "high", kind: "requests", priority: "high", args: requestsArgs({ count: 60 }), startDelayMs: 250, wrap: ownPidNamespace };
    const low = { name: "low", kind: "continuous", priority: "low", args: batchArgs({ seconds: 1.8, kernelUs: 200 }) };
    const seen: ControlSlot[][] = [];
    const poll = setInterval(() => {
      try {
        seen.push(native().controlBlocks(path.join(work, "shm")).flatMap((b) => b.slots ?? []));
      } catch { /* not created yet */ }
    }, 50);
    let l, h;
    try {
      [l, h] = await contend([low, high], { work });
    } finally {
      clearInterval(poll);
    }
    const [nl, nh] = await contend([{ ...low, priority: null }, { ...high, priority: null }], { work: path.join(work, "native") });
    for (const r of [l, h, nl, nh]) expect(r.code, r.err).toBe(0);
    // both attached at once, each in a slot of its own (a pid of the other namespace is no process, or another one,
    // here: the shim took such a slot for a dead one's before); the high one shown as of another namespace
    const both = seen.filter((slots) => slots.length === 2);
    expect(both.length, JSON.stringify(seen.slice(-3))).toBeGreaterThan(5);
    const last = both.at(-1)!;
    const theirs = last.find((x) => x.otherNamespace)!, mine = last.find((x) => !x.otherNamespace)!;
    expect(theirs.priority).toBe(10);
    expect(mine).toMatchObject({ pid: l.pid, priority: -10 });
    expect(theirs.slot).not.toBe(mine.slot);
    expect(theirs.pidNamespace).not.toBe(mine.pidNamespace);
    // the low one was held for the high one's requests: high's latency as with priorities in one namespace
    expect(summary(h.endToEndMs).p50).toBeLessThan(0.8 * summary(nh.endToEndMs).p50);
    expect(l.result.iterations).toBeGreaterThan(0.5 * nl.result.iterations);
    // `tailguard priority` from here names processes of this namespace: pid 1 here is not the other namespace's pid 1
    expect(native().setPriority(path.join(work, "shm"), theirs.pid, 0).slots).toBe(0);
  });

  for (const signal of ["SIGKILL", "SIGSTOP"] as const) {
    it(`${signal} of the busy high-priority process in another PID namespace: the low one resumes within the lease`, async () => {
      // high polls its 3-second kernel (each query renews its claim: a blocking sync in another namespace counts only
      // for the lease, since whether that process is stopped cannot be seen from here). The workload is unshare's
      // child (unshare forks into the new namespace, and --kill-child takes it along when unshare is killed).
      const inner = (c: import("node:child_process").ChildProcess) =>
        Number(readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, "utf8").trim().split(/\s+/)[0]);
      await expectResumedAfterSignal(testDir(`sched-pidns-${signal}`), signal,
        { wrap: ownPidNamespace, args: [...requestsArgs({ rate: 1, count: 1, kernelUs: 3_000_000 }), "--poll", "1"] }, inner);
    });
  }
});

describe("NVIDIA channel-group timeslice (ioctl interposer)", () => {
  const fakeKernel = () => compileProgram("fake_nvidia_kernel.c", { extra: ["-shared", "-fPIC"] });
  const requests = () => compileProgram("timeslice_requests.c", { cuda: true });
  type Seen = { fd: number; nr: number; cmd: string; object: string; us: number };
  const parse = (log: string): Seen[] =>
    log.trim().split("\n").filter(Boolean).map((l) => {
      const kv = Object.fromEntries(l.split(" ").map((x) => x.split("=")));
      return { fd: +kv.fd, nr: +kv.nr, cmd: kv.cmd, object: kv.object, us: +kv.us };
    });

  /** Runs the request program as a low-priority process while a high-priority one is on the same simulated GPU. */
  async function belowAnother(steps: string[], extra: Record<string, string> = {}, during?: (pid: number, dir: string) => Promise<void>) {
    const dir = testDir("ioctl");
    const base = simEnv(dir, { LD_PRELOAD: shimLib });
    const high = runProgram(workload, ["requests", "--rate", "20", "--count", "30", "--kernels", "1", "--kernel-us", "100"],
      { env: { ...base, TAILGUARD_PRIORITY: "high" } });
    await new Promise((r) => setTimeout(r, 300));
    const log = path.join(dir, "kernel.log");
    const env = { ...base, LD_PRELOAD: `${shimLib} ${fakeKernel()}`, TAILGUARD_PRIORITY: "low", TG_FAKE_KERNEL_LOG: log, ...extra };
    const { spawn } = await import("node:child_process");
    const child = spawn(requests(), steps, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    if (during) await during(child.pid!, dir);
    const code = await new Promise<number | null>((r) => child.on("close", r));
    await high;
    let seen: Seen[] = [];
    try { seen = parse(readFileSync(log, "utf8")); } catch { /* nothing reached the kernel */ }
    return { code, stdout, stderr, seen };
  }

  it("rewrites CUDA's request below a higher priority, re-applies it on attach, and leaves everything else alone", async () => {
    const r = await belowAnother(["create", "0x5c000001", "2048", "launch", "create", "0x5c000002", "2048",
      "xfer", "0x5c000003", "2048", "pipe", "2048", "other", "0x5c000001", "short", "0x5c000004", "fionread"]);
    expect(r.code, r.stderr).toBe(0);
    // the caller's memory is left as it gave it, and every call succeeded as the driver answered it
    expect(r.stdout.trim().split("\n")).toEqual(["create r=0 caller_us=2048", "launch", "create r=0 caller_us=2048",
      "xfer r=0 caller_us=2048", "pipe r=-1 caller_us=2048", "other r=0", "short r=0 caller_us=2048", "fionread r=0 n=3"]);
    const ts = (o: string) => r.seen.filter((s) => s.cmd === "0xa06c0103" && s.object === o).map((s) => s.us);
    expect(ts("0x5c000001")).toEqual([2048, 100]); // before the process's rank is known: as asked; then re-applied
    expect(ts("0x5c000002")).toEqual([100]);       // created below a higher priority: rewritten
    expect(r.seen.find((s) => s.object === "0x5c000003")).toMatchObject({ nr: 211, us: 100 }); // wrapped in XFER
    expect(ts("0x5c0000ff")).toEqual([2048]);      // not an NVIDIA descriptor: untouched
    expect(r.seen.find((s) => s.cmd === "0xa06c0101")).toMatchObject({ object: "0x5c000001" }); // another control
    expect(r.seen.find((s) => s.object === "0x5c000004")?.us).toBe(-1); // malformed (4-byte parameters): untouched
    expect(r.seen.filter((s) => s.nr === 27).length).toBe(1); // FIONREAD reached the kernel
  });

  it("the highest priority keeps the driver's value; a runtime priority change re-applies it", async () => {
    const r = await belowAnother(["create", "0x5c000001", "2048", "launch", "sleep", "400", "launch", "sleep", "30", "launch"],
      {}, async (pid, dir) => {
        await new Promise((res) => setTimeout(res, 200));
        expect(native().setPriority(path.join(dir, "rings"), pid, 50).slots).toBe(1);
      });
    expect(r.code, r.stderr).toBe(0);
    expect(r.seen.filter((s) => s.object === "0x5c000001").map((s) => s.us)).toEqual([2048, 100, 2048]);
  });

  it("a timeslice the driver refuses is reported once, retried with the driver's value, and left alone", async () => {
    const r = await belowAnother(["launch", "create", "0x5c000001", "2048", "create", "0x5c000002", "2048"],
      { TG_FAKE_KERNEL_MIN_US: "1000" });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("create r=0 caller_us=2048");
    expect(r.seen.filter((s) => s.object === "0x5c000001").map((s) => s.us)).toEqual([100, 2048]);
    expect(r.seen.filter((s) => s.object === "0x5c000002").map((s) => s.us)).toEqual([2048]);
    expect(r.stderr.match(/refused a channel-group timeslice/g)?.length).toBe(1);
  });
});
