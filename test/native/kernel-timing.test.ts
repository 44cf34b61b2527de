// Per-kernel device time through CUPTI (native/shim/kernel_timing.c, docs/gpu-time.md "Per-kernel device time
// (CUPTI)") on the simulated GPU and its simulated CUPTI (native/sim/cupti.c), which reports the simulated device's
// own kernel times: each timed launch's KERNEL_TIME record, sampling, and the cases that must cost nothing but the
// times (off, CUPTI missing, another profiler owning it, fork).
import { mkdtempSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { compileProgram, nativeBuild, testDir } from "../support/native.js";
import { recordRun, type Recorded } from "../support/tailguard.js";

const program = () => compileProgram("kernel_timing.c", { cuda: true });

/** Each launch or copy record with the KERNEL_TIME records keyed to it: by its launch (same tid, launch = its t),
 *  or by the CUDA call that submitted it (call_start, call_end: the thread's latest call line made before the call
 *  ended, no earlier than 20 µs before it began; record.h, TG_F_KT_CALL). */
function joined(r: Recorded) {
  const times = r.of("kernel_time").filter((k) => k.op !== "dropped" && k.op !== "started");
  const calls = r.lines.filter((l) => l.kind === "launch" || l.kind === "copy");
  const byKey = new Map<string, Record<string, any>[]>();
  const add = (key: string, k: Record<string, any>) => byKey.set(key, [...(byKey.get(key) ?? []), k]);
  for (const k of times) {
    if (k.launch !== undefined) add(`${k.pid}/${k.tid}/${k.launch}`, k);
    else {
      const mine = calls.filter((c) => c.pid === k.pid && c.tid === k.tid && c.t <= k.call_end);
      const c = mine.at(-1);
      if (c && c.t >= k.call_start - 20_000) add(`${c.pid}/${c.tid}/${c.t}`, k);
    }
  }
  return calls.map((c) => ({ call: c, times: byKey.get(`${c.pid}/${c.tid}/${c.t}`) ?? [] }));
}

const kernelDurations = (r: Recorded) =>
  joined(r).filter((j) => j.call.kind === "launch").map((j) => j.times.map((k) => (k.gpu_end - k.gpu_start) / 1e6));

describe("per-kernel device time through CUPTI, on the simulated GPU", () => {
  it("all: every launch of a 1 ms and a 3 ms kernel has its device time within 5 %, and every copy and memset one", async () => {
    const r = await recordRun(testDir("kt-all"), [program(), "loop", "10"], { env: { TAILGUARD_KERNEL_TIMING: "all" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.run.stdout).toContain("cupti 1");
    const launches = joined(r).filter((j) => j.call.kind === "launch");
    expect(launches).toHaveLength(20);
    launches.forEach((j, i) => {
      expect(j.times, `launch ${i}`).toHaveLength(1);
      const [k] = j.times;
      const want = i % 2 === 0 ? 1 : 3;
      expect(Math.abs((k.gpu_end - k.gpu_start) / 1e6 - want) / want, `launch ${i}: ${(k.gpu_end - k.gpu_start) / 1e6} ms`).toBeLessThan(0.05);
      expect(k.kernel).toBe("work");
      expect(k.gpu_start, "the device never starts a kernel before it was launched").toBeGreaterThanOrEqual(k.launch - 1000);
    });
    const copies = joined(r).filter((j) => j.call.kind === "copy");
    expect(copies.map((j) => [j.call.op, j.times.map((k) => k.op)])).toEqual(
      Array.from({ length: 10 }, () => [["htod", ["memcpy"]], ["memset", ["memset"]]]).flat());
    expect(r.of("kernel_time").filter((k) => k.op === "dropped")).toEqual([]);
    // said once, before the first launch record: the agent knows device times will follow
    const started = r.of("kernel_time").filter((k) => k.op === "started");
    expect(started.map((k) => k.mode)).toEqual(["all"]);
    expect(started[0].t).toBeLessThanOrEqual(r.of("launch")[0].t + 1_000_000);
  });

  it("the CUDA runtime's way in (libcuda dlopened, entry points from cuGetProcAddress): every launch timed", async () => {
    const workload = path.join(nativeBuild, "tg-workload");
    const r = await recordRun(testDir("kt-workload"), [workload, "requests", "--rate", "200", "--count", "10", "--kernels", "2", "--kernel-us", "500"],
      { env: { TAILGUARD_KERNEL_TIMING: "all" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    const durations = kernelDurations(r);
    expect(durations).toHaveLength(20);
    for (const d of durations) {
      expect(d).toHaveLength(1);
      expect(Math.abs(d[0] - 0.5) / 0.5, `${d[0]} ms`).toBeLessThan(0.05);
    }
  });

  it("a graph launch: one KERNEL_TIME per kernel of the graph, each keyed to the graph's launch", async () => {
    const r = await recordRun(testDir("kt-graph"), [program(), "graph"], { env: { TAILGUARD_KERNEL_TIMING: "all" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    const graphs = joined(r).filter((j) => j.call.op === "graph");
    expect(graphs).toHaveLength(2);
    for (const g of graphs) expect(g.times.map((k) => Math.round((k.gpu_end - k.gpu_start) / 1e6))).toEqual([1, 2]);
  });

  it("work submitted through the CUDA runtime (no external ids; API records of the runtime's calls): every launch timed", async () => {
    const r = await recordRun(testDir("kt-runtime"), [program(), "loop", "10"],
      { env: { TAILGUARD_KERNEL_TIMING: "all", TAILGUARD_SIM_CUPTI_FAULT: "runtime" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    const times = r.of("kernel_time").filter((k) => k.op === "kernel");
    expect(times.length).toBe(20);
    expect(times.every((k) => k.launch === undefined && k.call_end - k.call_start === 1_000_000)).toBe(true);
    const launches = joined(r).filter((j) => j.call.kind === "launch");
    launches.forEach((j, i) => {
      expect(j.times, `launch ${i}`).toHaveLength(1);
      const want = i % 2 === 0 ? 1 : 3, ms = (j.times[0].gpu_end - j.times[0].gpu_start) / 1e6;
      expect(Math.abs(ms - want) / want, `launch ${i}: ${ms} ms`).toBeLessThan(0.05);
    });
    expect(joined(r).filter((j) => j.call.kind === "copy").every((j) => j.times.length === 1)).toBe(true);
  });

  it("records whose CUDA call never shows up are counted lost, with the reason (unmatched); launches unaffected", async () => {
    const r = await recordRun(testDir("kt-noapi"), [program(), "loop", "10"],
      { env: { TAILGUARD_KERNEL_TIMING: "all", TAILGUARD_SIM_CUPTI_FAULT: "noapi" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.of("kernel_time").filter((k) => k.op === "kernel")).toEqual([]);
    const dropped = r.of("kernel_time").filter((k) => k.op === "dropped");
    const sum = (f: (d: (typeof dropped)[number]) => number) => dropped.reduce((a, d) => a + f(d), 0);
    expect(sum((d) => d.count)).toBe(40); // 20 launches and 20 copies
    expect(sum((d) => d.reasons.unmatched)).toBe(40);
    expect(sum((d) => d.reasons.thread + d.reasons.overflow + d.reasons.cupti)).toBe(0);
    expect(r.of("launch")).toHaveLength(20);
  });

  it("sampled, through the CUDA runtime: one call in TAILGUARD_KERNEL_SAMPLE by CUPTI's correlation id", async () => {
    const r = await recordRun(testDir("kt-runtime-sampled"), [program(), "loop", "40"],
      { env: { TAILGUARD_KERNEL_TIMING: "sampled", TAILGUARD_SIM_CUPTI_FAULT: "runtime" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    // 160 launches and copies, one in 8 of CUPTI's ids (the simulated CUPTI numbers them in order)
    const timed = joined(r).filter((j) => j.times.length > 0);
    expect(timed.length).toBe(20);
  });

  it("sampled: the launches whose call is timed (1 in 8 per thread) get device times, the others none", async () => {
    const r = await recordRun(testDir("kt-sampled"), [program(), "loop", "40"], { env: { TAILGUARD_KERNEL_TIMING: "sampled" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    const launches = joined(r).filter((j) => j.call.kind === "launch");
    expect(launches).toHaveLength(80);
    const timed = launches.filter((j) => j.times.length > 0);
    expect(timed).toHaveLength(10);
    for (const j of launches) expect(j.times.length > 0, `launch at ${j.call.t}`).toBe(j.call.dur !== undefined);
    for (const d of kernelDurations(r).flat()) expect([1, 3].some((want) => Math.abs(d - want) / want < 0.05), `${d} ms`).toBe(true);
    // records come while the program runs (CUPTI's flush period, 100 ms), not only at its exit
    const lastLaunch = Math.max(...r.of("launch").map((l) => l.t));
    expect(r.of("kernel_time").some((k) => k.t < lastLaunch)).toBe(true);
    // copies are sampled by a count of their own: 1 in 8 of the 80
    expect(joined(r).filter((j) => j.call.kind === "copy" && j.times.length > 0)).toHaveLength(10);
  });

  it("TAILGUARD_KERNEL_SAMPLE=4: one launch in 4", async () => {
    const r = await recordRun(testDir("kt-sample4"), [program(), "loop", "40"],
      { env: { TAILGUARD_KERNEL_TIMING: "sampled", TAILGUARD_KERNEL_SAMPLE: "4" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(joined(r).filter((j) => j.call.kind === "launch" && j.times.length > 0)).toHaveLength(20);
  });

  for (const value of [undefined, "off"]) {
    it(`TAILGUARD_KERNEL_TIMING ${value ?? "unset"}: CUPTI is never loaded, no kernel_time records`, async () => {
      const env: Record<string, string> = value ? { TAILGUARD_KERNEL_TIMING: value } : {};
      const r = await recordRun(testDir("kt-off"), [program(), "loop", "3"], { env });
      expect(r.run.code, r.run.stderr).toBe(0);
      expect(r.run.stdout).toContain("cupti 0");
      expect(r.of("kernel_time")).toEqual([]);
      expect(r.run.stderr).not.toContain("kernel timing");
    });
  }

  const unaffected = (r: Recorded) => {
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.run.stdout.trim().split("\n").pop()).toBe("ok");
    expect(r.of("launch")).toHaveLength(10);
    expect(r.of("kernel_time")).toEqual([]);
    return r.run.stderr.split("\n").filter((l) => l.includes("kernel timing"));
  };

  it("CUPTI missing (TAILGUARD_CUPTI_PATH names a directory without it): one message, launches unaffected", async () => {
    const empty = mkdtempSync(path.join(testDir("kt-missing"), "no-cupti-"));
    const r = await recordRun(testDir("kt-missing"), [program(), "loop", "5"],
      { env: { TAILGUARD_KERNEL_TIMING: "all", TAILGUARD_CUPTI_PATH: empty } });
    const said = unaffected(r);
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(`is off for this process: CUPTI not found: TAILGUARD_CUPTI_PATH=${empty}`);
    expect(r.run.stdout).toContain("cupti 0");
  });

  it("another profiler owns CUPTI (enabling fails with MULTIPLE_SUBSCRIBERS): one message, launches unaffected", async () => {
    const r = await recordRun(testDir("kt-subscribers"), [program(), "loop", "5"],
      { env: { TAILGUARD_KERNEL_TIMING: "all", TAILGUARD_SIM_CUPTI_FAULT: "subscribers" } });
    const said = unaffected(r);
    expect(said).toHaveLength(1);
    expect(said[0]).toContain("CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED");
    expect(said[0]).toContain("another profiler");
  });

  it("CUDA_INJECTION64_PATH set (a profiler injected): one message, CUPTI not loaded", async () => {
    const r = await recordRun(testDir("kt-injected"), [program(), "loop", "5"],
      { env: { TAILGUARD_KERNEL_TIMING: "all", CUDA_INJECTION64_PATH: "/nonexistent/libinjection.so" } });
    const said = unaffected(r);
    expect(said).toHaveLength(1);
    expect(said[0]).toContain("CUDA_INJECTION64_PATH=/nonexistent/libinjection.so");
    expect(r.run.stdout).toContain("cupti 0");
  });

  it("a CUPTI without a timestamp callback: its clock is mapped onto CLOCK_MONOTONIC, times still within 5 %", async () => {
    const r = await recordRun(testDir("kt-clock"), [program(), "loop", "5"],
      { env: { TAILGUARD_KERNEL_TIMING: "all", TAILGUARD_SIM_CUPTI_FAULT: "clock" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    const launches = joined(r).filter((j) => j.call.kind === "launch");
    expect(launches.every((j) => j.times.length === 1)).toBe(true);
    launches.forEach((j, i) => {
      const [k] = j.times, want = i % 2 === 0 ? 1 : 3;
      expect(Math.abs((k.gpu_end - k.gpu_start) / 1e6 - want) / want).toBeLessThan(0.05);
      // mapped, not CLOCK_REALTIME: on the launch's own timeline, within milliseconds of it
      expect(Math.abs(k.gpu_start - k.launch)).toBeLessThan(5e6);
    });
  });

  it("fork: the child runs unchanged with kernel timing off; the parent's launches keep their times", async () => {
    const r = await recordRun(testDir("kt-fork"), [program(), "fork"], { env: { TAILGUARD_KERNEL_TIMING: "all" } });
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.run.stdout).toContain("child ok");
    const pids = [...new Set(r.of("launch").map((l) => l.pid))];
    expect(pids).toHaveLength(2);
    const parent = r.of("process").find((p) => p.op === "start" && !pids.includes(p.ppid))?.pid ?? r.of("kernel_time")[0].pid;
    const child = pids.find((p) => p !== parent);
    expect(r.of("kernel_time").filter((k) => k.pid === child)).toEqual([]);
    const own = joined(r).filter((j) => j.call.pid === parent && j.call.kind === "launch");
    expect(own).toHaveLength(4);
    expect(own.every((j) => j.times.length === 1)).toBe(true);
  });
});
