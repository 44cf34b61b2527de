// Request windows from raw records (agent/src/ingest/windows.ts), on records built here field by field with the layout of
// agent/src/ingest/record.ts (itself proven against the C header by record-layout.test.ts), and the one meaning of
// request latency that the agent and `tailguard report` share. End to end, with the shim: agent.test.ts.
import { describe, expect, it } from "vitest";

import { writeFileSync } from "node:fs";
import path from "node:path";

import type { Hold, ProcessMeta, RequestWindow } from "../../agent/src/model.js";
import { report } from "../../agent/src/cli/report.js";
import { decodeRecord, Flag, Kind, RECORD_SIZE, RecordField } from "../../agent/src/ingest/record.js";
import { recordToJson } from "../../agent/src/ingest/recording.js";
import { WindowAssembler } from "../../agent/src/ingest/windows.js";
import { record } from "../support/records.js";
import { testDir } from "../support/native.js";


const T0 = 5_000_000_000_000n;
const us = (n: number) => T0 + BigInt(n * 1000);
const launch = (atUs: number, kernel = 1, timedNs: number | null = null) =>
  record(Kind.LAUNCH, 1, us(atUs), { "launch.kernel": kernel, stream: 7n }, timedNs === null ? Flag.UNTIMED : 0, timedNs ?? 0);
const begin = (atUs: number, seq: number) => record(Kind.WINDOW, 1, us(atUs), { "window.seq": seq });
const end = (atUs: number, durUs: number, seq: number, launches: number) =>
  record(Kind.WINDOW, 2, us(atUs), { "window.seq": seq, "window.launches": launches, "window.streams": 1 }, 0, durUs * 1000);
const hold = (atUs: number, durUs: number, causePid: number, causeWindow: number) =>
  record(Kind.HOLD, 1, us(atUs), { "hold.cause_pid": causePid, "hold.cause_priority": 10, "hold.cause_window": causeWindow,
    "hold.released_by": 1, "hold.priority": -10 }, 0, durUs * 1000);

const meta: ProcessMeta = {
  pid: 42, ppid: 1, cmdline: ["server"], priority: -10, gpu: null, anchorMonotonic: T0, anchorRealtime: T0 * 400n, resource: {},
};

function assembler(launchLimit = 256) {
  const windows: RequestWindow[] = [];
  const holds: Hold[] = [];
  const apiTimes: number[] = [];
  const names = new Map([[1, "gemm"], [2, "softmax"]]);
  const a = new WindowAssembler(meta, null, {
    window: (_, w) => windows.push(w),
    hold: (_, h) => holds.push(h),
    launchApiTime: (_, ns) => apiTimes.push(ns),
  }, names, launchLimit);
  return { a, windows, holds, apiTimes };
}

describe("request windows from records", () => {
  it("a window holds its launches in order, with their names; finished one pump after its end", () => {
    const { a, windows, apiTimes } = assembler();
    // the first launch is called a moment before the scheduler takes the begin record
    a.ingest(Buffer.concat([launch(0), begin(0.5, 1), launch(1, 1, 900), launch(10, 2), launch(20, 1), end(0.5, 500, 1, 4)]));
    a.settle();
    expect(windows).toHaveLength(0); // another lane may still hold launches of it
    a.settle();
    expect(windows).toHaveLength(1);
    const w = windows[0];
    expect(w).toMatchObject({ pid: 42, seq: 1, t: us(0.5), durNs: 500_000, launchCount: 4, streams: 1, heldNs: 0, holds: [] });
    expect(w.launches.map((l) => [l.name, l.t])).toEqual([["gemm", us(0)], ["gemm", us(1)], ["softmax", us(10)], ["gemm", us(20)]]);
    expect(apiTimes).toEqual([900]); // only the timed launch
  });

  it("places another lane's launches by time even when they arrive after the window's end", () => {
    const { a, windows } = assembler();
    a.ingest(Buffer.concat([begin(100, 1), launch(100), end(100, 300, 1, 3)]));
    a.settle();
    a.ingest(Buffer.concat([launch(150, 2), launch(250, 2), launch(900, 2)])); // a second thread's lane, drained later
    a.settle();
    expect(windows).toHaveLength(1);
    expect(windows[0].launches.map((l) => l.t)).toEqual([us(100), us(150), us(250)]);
  });

  it("a request whose first launch was held starts when that launch was called; its holds name their cause", () => {
    const { a, windows, holds } = assembler();
    a.ingest(Buffer.concat([hold(1000, 400, 7, 3), begin(1400, 1), launch(1400), hold(1500, 50, 7, 4), launch(1550),
      end(1400, 600, 1, 2)]));
    a.settle();
    a.settle();
    expect(holds).toHaveLength(2);
    expect(windows).toHaveLength(1);
    const w = windows[0];
    expect(w.t).toBe(us(1000));
    expect(w.durNs).toBe(1_000_000); // 400 µs held + 600 µs busy
    expect(w.heldNs).toBe(450_000);
    expect(w.holds.map((h) => [h.causePid, h.causeWindow, h.reason, h.releasedBy])).toEqual([[7, 3, "priority", "idle"], [7, 4, "priority", "idle"]]);
  });

  it("keeps at most launchLimit launches of a window and counts the rest", () => {
    const { a, windows } = assembler(16);
    const recs = [begin(0, 1)];
    for (let i = 0; i < 40; i++) recs.push(launch(i));
    recs.push(end(0, 100, 1, 40));
    a.ingest(Buffer.concat(recs));
    a.settle(true);
    expect(windows[0].launches).toHaveLength(16);
    expect(windows[0].launchesDropped).toBe(24);
    expect(windows[0].launchCount).toBe(40);
    expect(a.counts).toMatchObject({ launches: 40, windows: 1, records: 42 });
  });

  it("windows that end one after another each get their own launches; the open one stays pending", () => {
    const { a, windows } = assembler();
    a.ingest(Buffer.concat([begin(0, 1), launch(0), launch(5), end(0, 50, 1, 2), begin(100, 2), launch(100), end(100, 50, 2, 1),
      begin(200, 3), launch(200)]));
    a.settle();
    a.settle();
    expect(windows.map((w) => [w.seq, w.launches.length])).toEqual([[1, 2], [2, 1]]);
    expect(a.inFlight).toBe(true);
    a.ingest(end(200, 10, 3, 1));
    a.settle(true);
    expect(windows.map((w) => [w.seq, w.launches.length])).toEqual([[1, 2], [2, 1], [3, 1]]);
    expect(a.inFlight).toBe(false);
  });

  it("a window whose end record was lost (ring full) keeps nothing once two more have begun; batches without kept launches are let go", () => {
    const { a, windows } = assembler();
    a.ingest(Buffer.concat([begin(0, 1), launch(0), launch(5)])); // window 1's end was dropped by the shim
    for (let i = 0; i < 50; i++) a.ingest(record(Kind.SYNC, 1, us(10 + i))); // batches of other records only
    a.settle();
    expect(a.buffered).toEqual({ launches: 2, batches: 1 });
    a.ingest(Buffer.concat([begin(5000, 2), launch(5000), end(5000, 50, 2, 1), begin(6000, 3), launch(6000), end(6000, 50, 3, 1)]));
    a.settle();
    a.settle();
    expect(windows.map((w) => [w.seq, w.launches.length])).toEqual([[2, 1], [3, 1]]);
    expect(a.inFlight).toBe(false); // window 1 no longer counts as open: launches from now on are not kept for it
    expect(a.buffered.batches).toBeLessThanOrEqual(2); // at most the two with launches; none of the 50 without
  });

  it("request latency means one thing: the agent and `tailguard report` of a recording of the same records agree", async () => {
    // window 1's first launch was held 400 µs; window 2 was not held; window 3, two seconds later (the report has
    // finished the first two by then), was held too, and its hold (another lane: the launching thread's) is drained
    // after the syncing thread's end record
    const batches = [
      Buffer.concat([hold(1000, 400, 7, 3), begin(1400, 1), launch(1400), launch(1550), end(1400, 600, 1, 2)]),
      Buffer.concat([begin(5000, 2), launch(5000), end(5000, 100, 2, 1), end(2_009_000, 300, 3, 1)]),
      Buffer.concat([hold(2_008_800, 200, 7, 5), begin(2_009_000, 3), launch(2_009_000)]),
    ];
    const { a, windows } = assembler();
    for (const b of batches) {
      a.ingest(b);
      a.settle();
    }
    a.settle(true);
    const agent = windows.map((w) => w.durNs).sort((x, y) => x - y);
    expect(agent).toEqual([100_000, 500_000, 1_000_000]); // held time included

    // the same records as `tailguard run --record` writes them, in the order they were drained
    const origin = T0 - 1_000_000n;
    const ctx = { pid: meta.pid, origin, apiName: () => "cuLaunchKernel", kernelName: () => "gemm" };
    const lines: object[] = [
      { kind: "recording", format: 1, origin_monotonic_ns: String(origin) },
      { kind: "process", op: "attach", pid: meta.pid, cmd: meta.cmdline, priority: meta.priority },
    ];
    for (const b of batches) for (let o = 0; o < b.length; o += RECORD_SIZE) lines.push(recordToJson(decodeRecord(b, o), ctx));
    lines.push({ kind: "process", op: "detach", pid: meta.pid, ended: "exit" });
    const file = path.join(testDir("request-latency"), "recording.jsonl");
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const latency = (await report(file)).series.find((s) => s.metric === "request_latency")!;
    expect(latency.count).toBe(3);
    // HDR histograms keep 3 significant digits
    for (const [got, want] of [[latency.min, agent[0]], [latency.percentiles.p50, agent[1]], [latency.max, agent[2]]])
      expect(Math.abs(got - want), `${got} vs the agent's ${want}`).toBeLessThanOrEqual(want / 1000);
  });
});

describe("device times of request windows (GPU_TIME records)", () => {
  const gpu = (atUs: number, seq: number, startUs: number, endUs: number) =>
    record(Kind.GPU_TIME, 1, us(atUs), { "gpu_time.seq": seq, "gpu_time.gpu_start": us(startUs), "gpu_time.gpu_end": us(endUs) });
  const missing = (atUs: number, seq: number, reason: number) => record(Kind.GPU_TIME, 2, us(atUs), { "gpu_time.seq": seq, result: reason });

  function withMissing() {
    const reasons: string[] = [];
    const windows: RequestWindow[] = [];
    const a = new WindowAssembler(meta, null, {
      window: (_, w) => windows.push(w),
      hold: () => {},
      launchApiTime: () => {},
      gpuTimeMissing: (_, reason) => reasons.push(reason),
    }, new Map());
    return { a, windows, reasons };
  }

  it("a window gets its queue delay, GPU time and completion latency", () => {
    const { a, windows } = withMissing();
    // submitted at 100 µs, on the GPU 150..2150 µs, the sync returned at 2180 µs
    a.ingest(Buffer.concat([begin(100, 1), launch(101), end(100, 2080, 1, 1), gpu(2181, 1, 150, 2150)]));
    a.settle();
    a.settle();
    expect(windows[0].device).toEqual({ submitted: us(100), gpuStart: us(150), gpuEnd: us(2150), returned: us(2180),
      queueNs: 50_000, gpuNs: 2_000_000, completionNs: 30_000 });
    expect(windows[0].gpuNs).toBe(2_000_000);
  });

  it("device times read in the next batch still join their window; missing ones are counted by reason", () => {
    const { a, windows, reasons } = withMissing();
    a.ingest(Buffer.concat([begin(0, 1), launch(1), end(0, 500, 1, 1), begin(600, 2), launch(601), end(600, 500, 2, 1)]));
    a.settle();
    a.ingest(Buffer.concat([missing(1101, 1, 3), gpu(1102, 2, 610, 1090)]));
    a.settle();
    expect(windows.map((w) => [w.seq, w.device?.gpuNs ?? null])).toEqual([[1, null], [2, 480_000]]);
    expect(reasons).toEqual(["stream"]);
  });

  it("a GPU start a moment before submission (the clock mapping's error) is a zero queue delay, never negative", () => {
    const { a, windows } = withMissing();
    a.ingest(Buffer.concat([begin(100, 1), launch(101), end(100, 1000, 1, 1), gpu(1101, 1, 99, 1102)]));
    a.settle();
    a.settle();
    expect(windows[0].device).toMatchObject({ queueNs: 0, gpuNs: 1_003_000, completionNs: 0 });
  });

  it("busyDuring: the window of the process in flight longest during an interval, open ones until its end", () => {
    const { a } = withMissing();
    a.ingest(Buffer.concat([begin(0, 1), launch(1), end(0, 500, 1, 1), begin(600, 2), launch(601), end(600, 300, 2, 1), begin(1000, 3)]));
    a.settle();
    a.settle(); // windows 1 and 2 finished; 3 still open
    expect(a.busyDuring(us(400), us(700))).toEqual({ seq: 1, ns: 100_000 }); // 1: 400..500, 2: 600..700 (a tie: the first)
    expect(a.busyDuring(us(550), us(950))).toEqual({ seq: 2, ns: 300_000 });
    expect(a.busyDuring(us(950), us(1500))).toEqual({ seq: 3, ns: 500_000 }); // open: in flight until the interval's end
    expect(a.busyDuring(us(910), us(990))).toBeNull();
  });

  it("a recording shows them: gpu_start and gpu_end from the origin, or the reason", () => {
    const ctx = { pid: 42, origin: T0, apiName: () => "", kernelName: () => undefined };
    expect(recordToJson(decodeRecord(gpu(2181, 1, 150, 2150)), ctx)).toEqual({ kind: "gpu_time", op: "window", pid: 42, tid: 0,
      t: 2_181_000, window: 1, gpu_start: 150_000, gpu_end: 2_150_000 });
    expect(recordToJson(decodeRecord(missing(10, 0, 4)), ctx)).toMatchObject({ kind: "gpu_time", op: "missing", window: 0, reason: "fork" });
  });
});
