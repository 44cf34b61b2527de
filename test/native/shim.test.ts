// The shim intercepts and timestamps every launch, on every path real programs use, on the simulated GPU:
// each test runs a C program plainly and under `tailguard run --sim --record` and compares.
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { native, type RingInfo } from "../../agent/src/ingest/native.js";
import { Kind, RECORD_SIZE, RecordField } from "../../agent/src/ingest/record.js";
import { canUnshare, compileProgram, nativeBuild, ownPidNamespace, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { countBy, recordRun } from "../support/tailguard.js";

/** Runs a program on the simulated GPU without tailguard: the reference output. */
async function plain(dir: string, bin: string, args: string[]) {
  const r = await runProgram(bin, args, { env: simEnv(dir) });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

function expectMonotonicPerThread(records: Record<string, any>[]) {
  const last = new Map<number, number>();
  for (const r of records) {
    const prev = last.get(r.tid);
    if (prev !== undefined) expect(r.t).toBeGreaterThanOrEqual(prev);
    last.set(r.tid, r.t);
  }
}

describe("CUDA program linked to libcuda (exported symbols)", () => {
  it("records every call with its fields, and the program's results are unchanged", async () => {
    const dir = testDir("direct");
    const bin = compileProgram("cuda_direct.c", { cuda: true });
    const L = 300;
    const reference = await plain(dir, bin, [String(L)]);
    const rec = await recordRun(dir, [bin, String(L)]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    expect(rec.run.stdout).toBe(reference);

    const launches = rec.of("launch");
    expect(countBy(launches, (l) => l.api)).toEqual({
      cuLaunchKernel: L + 2, // + the two launches made while capturing the graph
      cuLaunchKernelEx: 1,
      cuLaunchCooperativeKernel: 1,
      cuLaunchHostFunc: 1,
      cuGraphLaunch: 1,
    });
    const plainLaunches = launches.filter((l) => l.api === "cuLaunchKernel" && !l.captured);
    expect(plainLaunches).toHaveLength(L);
    const streams = new Set<string>();
    plainLaunches.forEach((l, i) => {
      expect(l.op).toBe("kernel");
      expect(l.grid).toEqual([i + 1, 2, 3]);
      expect(l.block).toEqual([32, 4, 1]);
      expect(l.shared_kib).toBe(i % 5);
      expect(l.kernel).toBe(i % 3 ? "direct_kernel_a" : "direct_kernel_b(float*, int)");
      expect(l.result).toBe(0);
      streams.add(l.stream);
    });
    expect(streams.size).toBe(2);
    // launch durations are sampled, 1 in 8 per thread; every other call is timed
    const timed = plainLaunches.filter((l) => l.dur !== undefined);
    expect(timed.length).toBeGreaterThanOrEqual(Math.floor(L / 8) - 1);
    expect(timed.length).toBeLessThanOrEqual(Math.ceil(L / 8) + 1);
    expect(timed.every((l) => l.dur > 0)).toBe(true);
    const calls = rec.lines.filter((l) => l.tid && !["launch", "process", "window", "hold", "gpu_time"].includes(l.kind));
    expect(calls.every((l) => l.dur > 0)).toBe(true);
    expect(plainLaunches[0].stream).not.toBe("0x0");
    expect(launches.filter((l) => l.captured)).toHaveLength(2);
    const ex = launches.find((l) => l.api === "cuLaunchKernelEx")!;
    expect([ex.grid, ex.block, ex.stream]).toEqual([[7, 8, 9], [64, 2, 1], plainLaunches[0].stream]);
    expect(launches.find((l) => l.api === "cuLaunchHostFunc")!.func).toBe("direct_host_callback");
    expect(launches.find((l) => l.api === "cuGraphLaunch")!.op).toBe("graph");

    const copies = rec.of("copy");
    expect(copies.map((c) => [c.api, c.op, c.bytes, !!c.async, !!c.blocking])).toEqual([
      ["cuMemcpyHtoD_v2", "htod", 4096, false, true],
      ["cuMemcpyDtoD_v2", "dtod", 4096, false, true],
      ["cuMemsetD8_v2", "memset", 16, false, true],
      ["cuMemsetD32Async", "memset", 16, true, false],
      ["cuMemcpyHtoDAsync_v2", "htod", 64, true, false],
      ["cuMemcpyDtoHAsync_v2", "dtoh", 4096, true, false],
      ["cuMemcpyDtoH_v2", "dtoh", 80, false, true],
    ]);
    expect(rec.of("sync").map((s) => [s.api, s.op])).toEqual([
      ["cuEventSynchronize", "event"],
      ["cuStreamSynchronize", "stream"],
      ["cuStreamSynchronize", "stream"],
      ["cuCtxSynchronize", "device"],
    ]);
    expect(rec.of("wait")).toHaveLength(1);
    expect(rec.of("event")).toHaveLength(1);
    expect(rec.of("wait")[0].event).toBe(rec.of("event")[0].event);
    expect(rec.of("stream").map((s) => s.op)).toEqual(["create", "create", "capture_begin", "capture_end", "destroy"]);
    expect(rec.of("stream")[1].priority).toBe(-1);

    const processes = rec.of("process");
    expect(processes.map((p) => p.op)).toEqual(["attach", "start", "exit", "detach"]);
    const detach = processes[3];
    expect(detach.dropped).toBe(0);
    expect(detach.attach_paths).toEqual(["cuda: exported symbols"]);
    expect(detach.gpu.name).toBe("tailguard simulated GPU");
    expect(processes[0].cmd).toEqual([bin, String(L)]);
    // a window's end record carries its begin time, and device times are written as they are read (inside a sync,
    // before its own record): calls are what must be in order
    expectMonotonicPerThread(rec.lines.filter((l) => l.tid && l.kind !== "window" && l.kind !== "gpu_time"));
    expect(rec.run.stderr).toMatch(/1 process attached/);
    expect(rec.run.stderr).toMatch(new RegExp(`${L + 6} launches`));
  });
});

describe("the CUDA runtime's path: dlopen + dlsym(cuGetProcAddress_v2) + cuGetProcAddress", () => {
  it("wraps both stream variants with their own real entry points", async () => {
    const dir = testDir("gpa");
    const bin = compileProgram("cuda_runtime_path.c");
    const N = 500;
    const reference = await plain(dir, bin, [String(N)]);
    const rec = await recordRun(dir, [bin, String(N)]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    expect(rec.run.stdout).toBe(reference);
    const launches = rec.of("launch");
    expect(countBy(launches, (l) => l.api)).toEqual({ cuLaunchKernel: N, cuLaunchKernel_ptsz: N });
    expect(launches.slice(0, N).every((l) => !l.per_thread && l.grid[0] === 1 && l.block[0] === 256)).toBe(true);
    expect(launches.slice(N).every((l) => l.per_thread && l.grid[0] === 2 && l.block[0] === 128)).toBe(true);
    expect(launches.every((l) => l.kernel === "runtime_path_kernel")).toBe(true);
    expect(rec.of("copy").map((c) => c.api)).toEqual(["cuMemcpyHtoDAsync_v2", "cuMemcpyDtoHAsync_v2_ptsz"]);
    expect(rec.of("sync").map((s) => s.api)).toEqual(["cuStreamSynchronize", "cuStreamSynchronize_ptsz", "cuCtxSynchronize"]);
    const detach = rec.of("process").find((p) => p.op === "detach")!;
    // dlsym handed out cuGetProcAddress_v2, which handed out the launch entry points
    expect(detach.attach_paths).toEqual(["cuda: cuGetProcAddress", "cuda: dlsym"]);
    expect(detach.dropped).toBe(0);
    expectMonotonicPerThread(launches);
  });
});

describe("HIP program linked to libamdhip64", () => {
  it("records host-function and module launches, extended launches, copies and dlsym lookups", async () => {
    const dir = testDir("hip");
    const bin = compileProgram("hip_app.c", { hip: true });
    const N = 40;
    const reference = await plain(dir, bin, [String(N)]);
    const rec = await recordRun(dir, [bin, String(N)]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    expect(rec.run.stdout).toBe(reference);
    const launches = rec.of("launch");
    expect(countBy(launches, (l) => l.api)).toEqual({
      hipLaunchKernel: N + 1,
      hipModuleLaunchKernel: 1,
      hipExtModuleLaunchKernel: 1,
      hipExtLaunchKernel: 1,
    });
    launches.slice(0, N).forEach((l, i) => {
      expect(l.kernel).toBe(i % 2 ? "hip_vector_add" : "hip_reduce");
      expect(l.grid).toEqual([i + 1, 1, 1]);
      expect(l.block).toEqual([256, 1, 1]);
    });
    const mod = launches.find((l) => l.api === "hipModuleLaunchKernel")!;
    expect([mod.kernel, mod.grid, mod.block]).toEqual(["module_kernel", [3, 2, 1], [64, 1, 1]]);
    const ext = launches.find((l) => l.api === "hipExtModuleLaunchKernel")!;
    expect([ext.grid, ext.block]).toEqual([[4, 1, 1], [256, 1, 1]]); // 1024 work items in groups of 256
    expect(rec.of("copy").map((c) => [c.api, c.op])).toEqual([
      ["hipMemcpy", "htod"],
      ["hipMemsetAsync", "memset"],
      ["hipMemcpyAsync", "dtoh"],
    ]);
    expect(rec.of("sync").map((s) => s.api)).toEqual(["hipStreamSynchronize", "hipDeviceSynchronize"]);
    const detach = rec.of("process").find((p) => p.op === "detach")!;
    expect(detach.attach_paths).toEqual(["hip: exported symbols", "hip: dlsym"]);
  });
});

describe("timestamps", () => {
  it("are CLOCK_MONOTONIC: each launch's time lies between the program's own clock reads around it", async () => {
    const dir = testDir("clock");
    const bin = compileProgram("clock_check.c", { cuda: true });
    const rec = await recordRun(dir, [bin]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    const brackets = rec.run.stdout.trim().split("\n").map((l) => l.split(" ").map(BigInt));
    const origin = BigInt(rec.lines[0].origin_monotonic_ns);
    const launches = rec.of("launch");
    expect(launches.length).toBe(brackets.length);
    expect(brackets.length).toBeGreaterThan(100);
    const outside = launches
      .map((l, i) => ({ i, t: origin + BigInt(l.t), end: origin + BigInt(l.t) + BigInt(l.dur ?? 0), b: brackets[i] }))
      // 250 ns of slack for the interpolation between re-anchors
      .filter(({ t, end, b }) => t < b[0] - 250n || end > b[1] + 250n);
    expect(outside.slice(0, 5)).toEqual([]);
  });
});

describe("many threads launching at once", () => {
  it("8 threads x 100,000 launches: every launch recorded once, in order per thread, none dropped", async () => {
    const dir = testDir("threads");
    const bin = compileProgram("threads.c", { cuda: true });
    const T = 8;
    const N = 100_000;
    // Lanes big enough for every thread's records: what is tested is that each launch is recorded once and in order
    // while the collector drains concurrently, not whether the collector outruns 8 launching threads on a 2-core
    // machine (when it cannot, the overflow is dropped and counted: shim-robustness.test.ts; its speed: bench/).
    const env = { TAILGUARD_RING_RECORDS: "131072" };
    const rec = await recordRun(dir, [bin, String(T), String(N)], { timeoutMs: 300_000, env });
    expect(rec.run.code, rec.run.stderr).toBe(0);
    expect(rec.run.stdout).toBe(`threads=${T} launches=${T * N}\n`);
    const launches = rec.of("launch");
    expect(launches).toHaveLength(T * N);
    const byTid = new Map<number, Record<string, any>[]>();
    for (const l of launches) {
      if (!byTid.has(l.tid)) byTid.set(l.tid, []);
      byTid.get(l.tid)!.push(l);
    }
    expect(byTid.size).toBe(T);
    const workers = new Set<number>();
    const problems: string[] = []; // checked in plain loops: 800,000 expect() calls would dominate the test
    for (const [tid, list] of byTid) {
      if (list.length !== N) problems.push(`thread ${tid}: ${list.length} launches`);
      const worker = list[0].grid[1];
      workers.add(worker);
      const stream = list[0].stream;
      list.forEach((l, i) => {
        if (l.grid[1] !== worker || l.stream !== stream) problems.push(`thread ${tid} #${i}: another thread's launch`);
        if (l.grid[0] !== i + 1) problems.push(`thread ${tid} #${i}: sequence ${l.grid[0]} out of order`);
        if (i && l.t < list[i - 1].t) problems.push(`thread ${tid} #${i}: time went backwards`);
      });
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(workers.size).toBe(T);
    const detach = rec.of("process").find((p) => p.op === "detach")!;
    expect(detach.dropped).toBe(0);
    expect(detach.launches).toBe(T * N);
  });
});

describe("more threads than lanes, and threads that come and go", () => {
  async function run(threads: number, launches: number, waves: number) {
    const dir = testDir("lanes");
    const bin = compileProgram("threads.c", { cuda: true });
    const rec = await recordRun(dir, [bin, String(threads), String(launches), String(waves)]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    const launchesOf = new Map<number, number[]>();
    for (const l of rec.of("launch")) {
      if (!launchesOf.has(l.grid[1])) launchesOf.set(l.grid[1], []);
      launchesOf.get(l.grid[1])!.push(l.grid[0]);
    }
    return { rec, launchesOf };
  }

  it("20 threads: those beyond the 15 own lanes (the main thread holds one) share the last, all complete and in order", async () => {
    const { rec, launchesOf } = await run(20, 20_000, 1);
    expect(launchesOf.size).toBe(20);
    for (const seqs of launchesOf.values()) {
      expect(seqs.length).toBe(20_000);
      expect(seqs.every((x, i) => x === i + 1)).toBe(true);
    }
    const detach = rec.of("process").find((p) => p.op === "detach")!;
    expect([detach.dropped, detach.launches]).toEqual([0, 400_000]);
  });

  it("threads that exit hand their lanes to later threads", async () => {
    const { rec, launchesOf } = await run(10, 5_000, 3);
    expect(launchesOf.size).toBe(30);
    expect([...launchesOf.values()].every((s) => s.length === 5_000 && s.every((x, i) => x === i + 1))).toBe(true);
    const detach = rec.of("process").find((p) => p.op === "detach")!;
    expect([detach.dropped, detach.launches]).toEqual([0, 150_000]);
  });
});

describe("fork + exec", () => {
  it("records the parent and the exec'd child as two attached processes", async () => {
    const dir = testDir("forkexec");
    const bin = compileProgram("fork_exec.c", { cuda: true });
    const rec = await recordRun(dir, [bin, "25"]);
    expect(rec.run.code, rec.run.stderr).toBe(0);
    expect(rec.run.stdout).toBe("parent=0 child_status=0\n");
    const attach = rec.of("process").filter((p) => p.op === "attach");
    expect(attach).toHaveLength(2);
    const [parent, child] = [attach.find((a) => !a.cmd.includes("--child"))!, attach.find((a) => a.cmd.includes("--child"))!];
    expect(child.ppid).toBe(parent.pid);
    const launches = rec.of("launch");
    expect(countBy(launches, (l) => `${l.pid === parent.pid ? "parent" : "child"}:${l.kernel}`)).toEqual({
      "parent:parent_kernel": 25,
      "child:child_kernel": 50,
    });
    expect(rec.run.stderr).toMatch(/2 processes attached/);
  });
});

// A container that shares $TAILGUARD_DIR with the reader but not its PID namespace: the pid in its ring's name is
// another process here, or none. The writer's lock on its ring file says it is alive.

describe.skipIf(!canUnshare())("rings across PID namespaces", () => {
  it("a process of another PID namespace keeps its ring while it runs: no sweep removes it, a collector drains all of it", async () => {
    const dir = testDir("ring-pidns");
    const rings = path.join(dir, "rings");
    const env = simEnv(dir, { LD_PRELOAD: shimLib });
    const run = runProgram(ownPidNamespace[0], [...ownPidNamespace.slice(1), path.join(nativeBuild, "tg-workload"),
      "requests", "--rate", "50", "--count", "100", "--kernels", "5", "--kernel-us", "100"], { env });
    const addon = native();
    const deadline = Date.now() + 10_000;
    let listed: RingInfo[] = [];
    while (listed.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      listed = addon.scanRings(rings).filter((r) => !r.error && r.cmdline[0]?.endsWith("tg-workload"));
    }
    expect(listed).toHaveLength(1);
    expect(listed[0].alive).toBe(true); // by its lock: /proc/PID here is not that process
    // no reader yet (no agent, no session): a sweep removes the rings of dead processes only
    expect(addon.sweep(rings)).toBe(0);
    expect(existsSync(listed[0].path)).toBe(true);

    const collector = new (addon.Collector)(rings, { pollUs: 1000 });
    let launches = 0, id = -1;
    const closed: RingInfo[] = [];
    const pump = () => {
      const h = collector.take(1 << 20);
      for (const o of h.opened) if (o.path === listed[0].path) id = o.id!;
      closed.push(...h.closed.filter((c) => c.path === listed[0].path));
      for (const b of h.batches.filter((x) => x.ring === id))
        for (let off = 0; off < b.data.length; off += RECORD_SIZE) if (b.data[off + RecordField.kind[0]] === Kind.LAUNCH) launches++;
    };
    const timer = setInterval(pump, 20);
    const r = await run;
    try {
      expect(r.code, r.stderr).toBe(0);
      const until = Date.now() + 5000;
      while (closed.length === 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
    } finally {
      clearInterval(timer);
      pump();
      collector.close();
    }
    // finished only after its process exited, and drained whole: every launch the shim counted arrived
    expect(closed).toHaveLength(1);
    expect(closed[0].counters.launches).toBeGreaterThanOrEqual(500);
    expect(launches).toBe(closed[0].counters.launches);
    expect(existsSync(listed[0].path)).toBe(false);
  });
});

describe("a finished ring kept for another consumer", () => {
  it("is opened once: a collector that finished it does not take its file, still there, for a new process", async () => {
    // a recording session's collector leaves a finished ring for a running agent (its agent.pid: this process)
    const dir = testDir("ring-kept");
    const rings = path.join(dir, "rings");
    const session = `${process.pid}-kept`;
    const r = await runProgram(path.join(nativeBuild, "tg-workload"), ["requests", "--rate", "200", "--count", "20"],
      { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_SESSION: session }) });
    expect(r.code, r.stderr).toBe(0);
    writeFileSync(path.join(rings, "agent.pid"), `${process.pid} 0\n`);
    const collector = new (native().Collector)(rings, { session, pollUs: 1000 });
    const opened: string[] = [];
    const closed: string[] = [];
    try {
      // finished at once (its process is gone), then several scans (every 50 ms) with its file still there
      const until = Date.now() + 5000;
      while (closed.length === 0 && Date.now() < until) {
        const h = collector.take(1 << 20);
        opened.push(...h.opened.map((o) => o.path));
        closed.push(...h.closed.map((c) => c.path));
        await new Promise((res) => setTimeout(res, 20));
      }
      await new Promise((res) => setTimeout(res, 400));
      const h = collector.take(1 << 20);
      opened.push(...h.opened.map((o) => o.path));
      closed.push(...h.closed.map((c) => c.path));
    } finally {
      collector.close();
    }
    expect(opened).toHaveLength(1);
    expect(closed).toEqual(opened);
    expect(existsSync(opened[0])).toBe(true); // kept for the agent
  });
});

// The ring directory is walked in one place (tg_ring_walk, native/common/ring_files.c) for the shim's sweep, `tailguard
// ps` (scanRings) and the agent's collector: each sees the files named like rings, and nothing else that lives there.

describe("the ring directory", () => {
  it("sweep, scanRings and a collector see only files named like rings; the sweep alone sees half-created ones", async () => {
    const dir = path.join(testDir("ring-walk"), "rings");
    mkdirSync(dir, { recursive: true });
    const gone = 4194305; // above any pid_max: no process has it
    const other = ["gpu-00112233445566778899aabbccddeeff.0.ctl", "policy", "agent.pid", `${gone}.1.0.ringx`, `${gone}.1.ring`, "x.1.0.ring"];
    for (const f of [...other, `${gone}.1.0.ring`, `${gone}.2.0.ring.tmp`]) writeFileSync(path.join(dir, f), "not a ring");
    symlinkSync("/dev/null", path.join(dir, `${gone}.3.0.ring`));
    const addon = native();
    const listed = addon.scanRings(dir).map((r) => [path.basename(r.path), r.pid, r.error]).sort();
    expect(listed).toEqual([
      [`${gone}.1.0.ring`, gone, "corrupt: file is smaller than a ring header"],
      [`${gone}.3.0.ring`, gone, "cannot open: Too many levels of symbolic links"],
    ]);
    const collector = new (addon.Collector)(dir, { pollUs: 1000 });
    try {
      const until = Date.now() + 5000;
      let problems: string[] = [];
      while (problems.length < 2 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
        problems = problems.concat(collector.problems());
      }
      expect(problems.map((p) => path.basename(p.split(":")[0])).sort()).toEqual([`${gone}.1.0.ring`, `${gone}.3.0.ring`]);
    } finally {
      collector.close();
    }
    // the dead process's ring, its half-created one and the link are garbage; nothing else is the sweep's
    expect(addon.sweep(dir)).toBe(3);
    expect(readdirSync(dir).sort()).toEqual([...other].sort());
  });
});
