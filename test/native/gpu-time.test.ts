// Measured GPU time (native/shim/gpu_time.c, docs/gpu-time.md) on the simulated GPU, whose events are stamped with
// its own device timeline: each request window's device start and end, the queue delay another process's kernels
// cause, and the bad cases (no event timing, a destroyed stream, capture, fork) that must cost nothing but the times.
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { compileProgram, nativeBuild, runProgram, simEnv, testDir } from "../support/native.js";
import { recordRun, type Recorded } from "../support/tailguard.js";

const workload = path.join(nativeBuild, "tg-workload");
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Per request window: when it began (host), its device times, as ns from the recording's origin. */
function timedWindows(r: Recorded) {
  const begins = new Map(r.of("window").filter((w) => w.op === "begin").map((w) => [w.window, w.t as number]));
  return r.of("gpu_time").filter((g) => g.op === "window").map((g) => ({
    window: g.window as number, begin: begins.get(g.window)!, gpuStart: g.gpu_start as number, gpuEnd: g.gpu_end as number,
  }));
}

/** The simulated GPU's own account of the process's kernels (TAILGUARD_SIM_TRACE), as ns from `origin`. */
function traced(dir: string, pid: number, origin: bigint) {
  return readFileSync(path.join(dir, `sim-trace.${pid}`), "utf8").trim().split("\n").map((l) => {
    const f = l.split(" ");
    return { first: Number(BigInt(f[3]) - origin), done: Number(BigInt(f[4]) - origin) };
  });
}

describe("measured GPU time on the simulated GPU", () => {
  for (const api of ["cuda", "hip"]) {
    it(`${api}: one 2 ms kernel per request measures 2 ms of GPU time; the device start and end bracket the kernel`, async () => {
      const dir = testDir(`gputime-alone-${api}`);
      const r = await recordRun(dir, [workload, "requests", "--rate", "100", "--count", "40", "--kernels", "1", "--kernel-us", "2000", "--api", api]);
      expect(r.run.code, r.run.stderr).toBe(0);
      const w = timedWindows(r);
      expect(w.length).toBe(40);
      expect(r.of("gpu_time").filter((g) => g.op === "missing")).toEqual([]);
      const gpuMs = mean(w.map((x) => x.gpuEnd - x.gpuStart)) / 1e6;
      expect(Math.abs(gpuMs - 2) / 2, `mean GPU time ${gpuMs} ms`).toBeLessThan(0.05);
      const ends = new Map(r.of("window").filter((x) => x.op === "end").map((x) => [x.window, x.t + x.dur]));
      for (const x of w) {
        expect(x.gpuStart).toBeGreaterThanOrEqual(x.begin); // never before it was submitted
        expect(x.gpuEnd).toBeLessThanOrEqual(ends.get(x.window)); // nor after the sync saw it done
      }
    });

    it(`${api}: with a batch process's kernels in front, the measured queue delay is the simulated wait`, async () => {
      const dir = testDir(`gputime-queue-${api}`);
      const trace = path.join(dir, "trace");
      mkdirSync(trace);
      // the request process starts alone (its first windows find the GPU free: the clock mapping's anchor), then a
      // batch process of equal priority and no shim keeps the device busy in 3 ms slices: each request waits for the
      // slice in progress (long slices: the shim's start event is stamped when the process gets the device, and a
      // request thread descheduled on this small machine between that and its launch can lose it again, tens of µs)
      const env = { TAILGUARD_SIM_TRACE: trace, TAILGUARD_SIM_SLICE_US: "3000" };
      const batch = new Promise<Awaited<ReturnType<typeof runProgram>>>((resolve) =>
        setTimeout(() => resolve(runProgram(workload, ["continuous", "--seconds", "1.2", "--kernels", "4", "--kernel-us", "6000", "--api", api],
          { env: simEnv(dir, env) })), 900));
      const r = await recordRun(dir, [workload, "requests", "--rate", "50", "--count", "100", "--kernels", "1", "--kernel-us", "2000", "--api", api],
        { env });
      expect(r.run.code, r.run.stderr).toBe(0);
      expect((await batch).code).toBe(0);
      const origin = BigInt(r.lines[0].origin_monotonic_ns);
      const pid = r.of("gpu_time")[0].pid;
      const kernels = traced(trace, pid, origin);
      const w = timedWindows(r);
      expect(w.length).toBe(100);
      expect(w[0].gpuStart - w[0].begin, "the first request found the GPU free").toBeLessThan(50_000);
      // the windows that queued behind the batch: the simulated GPU says how long (its kernel's first start)
      const queued = w.map((x, i) => ({ sim: kernels[i].first - x.begin, measured: x.gpuStart - x.begin }))
        .filter((q) => q.sim > 100_000);
      expect(queued.length, "requests that waited behind the batch").toBeGreaterThan(20);
      const sim = mean(queued.map((q) => q.sim)), measured = mean(queued.map((q) => q.measured));
      expect(Math.abs(measured - sim) / sim, `mean queue delay: simulated ${sim / 1e6} ms, measured ${measured / 1e6} ms`).toBeLessThan(0.05);
    });
  }

  it("a driver without event timing: the first window says no_timing, then the process stops trying; it runs unchanged", async () => {
    const dir = testDir("gputime-notiming");
    const r = await recordRun(dir, [workload, "requests", "--rate", "100", "--count", "10", "--kernels", "1", "--kernel-us", "1000"],
      { env: { TAILGUARD_SIM_EVENT_TIMING: "0" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(JSON.parse(r.run.stdout.trim().split("\n")[0]).count).toBe(10);
    expect(r.of("window").filter((w) => w.op === "end")).toHaveLength(10);
    expect(r.of("gpu_time").map((g) => [g.op, g.reason])).toEqual([["missing", "no_timing"]]);
  });

  it("events that stay pending: windows are read at later calls; past 16 pending, the oldest is given up (pool_full)", async () => {
    // the simulated GPU shows its events complete to queries only 30 ms after they completed: at 100 requests/s a
    // window is read about three windows later, never at its own end
    const late = await recordRun(testDir("gputime-lag"), [workload, "requests", "--rate", "100", "--count", "30", "--kernels", "1",
      "--kernel-us", "1000"], { env: { TAILGUARD_SIM_EVENT_LAG_US: "30000" } });
    expect(late.run.code, late.run.stderr).toBe(0);
    const ends = new Map(late.of("window").filter((w) => w.op === "end").map((w) => [w.window, (w.t as number) + (w.dur as number)]));
    const read = late.of("gpu_time").filter((g) => g.op === "window");
    expect(read.length).toBeGreaterThanOrEqual(25); // the last few are still pending at exit
    for (const g of read) {
      expect(g.t as number).toBeGreaterThan(ends.get(g.window)! + 20e6); // read at a later call, not at its end
      expect((g.gpu_end as number) - (g.gpu_start as number)).toBeGreaterThan(0.9e6); // and still right: a 1 ms kernel
      expect((g.gpu_end as number) - (g.gpu_start as number)).toBeLessThan(1.5e6);
    }
    expect(late.of("gpu_time").filter((g) => g.op === "missing")).toEqual([]);

    // 5 s: nothing is read while the program runs; from the 17th window on, each end gives up the oldest pending one
    const full = await recordRun(testDir("gputime-poolfull"), [workload, "requests", "--rate", "200", "--count", "60", "--kernels", "1",
      "--kernel-us", "500"], { env: { TAILGUARD_SIM_EVENT_LAG_US: "5000000" } });
    expect(full.run.code, full.run.stderr).toBe(0);
    expect(JSON.parse(full.run.stdout.trim().split("\n")[0]).count).toBe(60);
    const windows = full.of("window").filter((w) => w.op === "end");
    expect(windows).toHaveLength(60);
    const missing = full.of("gpu_time").filter((g) => g.op === "missing");
    expect(missing.map((g) => g.reason)).toEqual(Array(44).fill("pool_full"));
    expect(missing.map((g) => g.window)).toEqual(windows.slice(0, 44).map((w) => w.window)); // oldest first
    expect(full.of("gpu_time").filter((g) => g.op === "window")).toEqual([]);
    // no sync inserted: the requests took what their kernels take
    const latency = windows.map((w) => (w.dur as number) / 1e6).sort((a, b) => a - b);
    expect(latency[Math.floor(latency.length / 2)]).toBeLessThan(3);
  });

  it("TAILGUARD_GPU_TIME=off: no gpu_time records, the windows unchanged", async () => {
    const dir = testDir("gputime-off");
    const r = await recordRun(dir, [workload, "requests", "--rate", "100", "--count", "5", "--kernels", "1", "--kernel-us", "1000"],
      { env: { TAILGUARD_GPU_TIME: "off" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.of("window").filter((w) => w.op === "end")).toHaveLength(5);
    expect(r.of("gpu_time")).toEqual([]);
  });

  it("no sync is inserted: launches return at once and the program still finds its 200 ms kernels running", async () => {
    const dir = testDir("gputime-nosync");
    const r = await recordRun(dir, [compileProgram("gpu_time_cases.c", { cuda: true }), "nosync"]);
    expect(r.run.code, r.run.stderr).toBe(0);
    const [, longest, polls] = r.run.stdout.match(/longest launch ([0-9.]+) ms, fewest polls (\d+)/)!;
    expect(Number(longest)).toBeLessThan(50);
    expect(Number(polls)).toBeGreaterThan(50);
    expect(r.of("gpu_time").filter((g) => g.op === "window")).toHaveLength(3);
  });

  it("a stream destroyed mid-window: that window's times are missing (stream); the next window is timed", async () => {
    const dir = testDir("gputime-destroy");
    const r = await recordRun(dir, [compileProgram("gpu_time_cases.c", { cuda: true }), "destroy"]);
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.run.stdout).toContain("ok");
    expect(r.of("gpu_time").map((g) => [g.window, g.op, g.reason])).toEqual([[1, "missing", "stream"], [2, "window", undefined]]);
  });

  it("capture: nothing is recorded on a captured stream, nor on the legacy stream while a capture is active", async () => {
    const dir = testDir("gputime-capture");
    const r = await recordRun(dir, [compileProgram("gpu_time_cases.c", { cuda: true }), "capture"]);
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.run.stdout.trim().split("\n").pop()).toBe("ok"); // the captures ended successfully
    // the replayed graph is timed (its stream), the legacy-stream request during the second capture is not
    expect(r.of("gpu_time").map((g) => [g.window, g.op, g.reason])).toEqual([[1, "window", undefined], [2, "window", undefined], [3, "missing", "stream"]]);
  });

  it("fork: the child drops the parent's pending events (fork) and times its own windows; the parent goes on", async () => {
    const dir = testDir("gputime-fork");
    const r = await recordRun(dir, [compileProgram("gpu_time_cases.c", { cuda: true }), "fork"]);
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.run.stdout).toContain("child ok");
    const pids = [...new Set(r.of("gpu_time").map((g) => g.pid))];
    expect(pids).toHaveLength(2);
    const [child] = r.of("gpu_time").filter((g) => g.reason === "fork").map((g) => g.pid);
    expect(r.of("gpu_time").filter((g) => g.pid === child).map((g) => [g.op, g.reason])).toEqual([["missing", "fork"], ["window", undefined]]);
    expect(r.of("gpu_time").filter((g) => g.pid !== child).map((g) => g.op)).toEqual(["window", "window"]);
  });
});
