// The live view's state (agent/src/serve/live.ts) on a clock of its own: per-second P50/P99 from known windows, the recent
// span, late windows, holds, pid reuse, and memory that stays bounded however long it runs.
import { describe, expect, it } from "vitest";

import { LiveState } from "../../agent/src/serve/live.js";
import type { Hold, ProcessMeta, RequestWindow } from "../../agent/src/model.js";

/** epoch ms at a second boundary; the processes' monotonic clock reads ANCHOR_NS then */
const T0 = 1_800_000_000_000;
const ANCHOR_NS = 5_000_000_000n;

function processMeta(pid: number, priority: number, serviceName?: string): ProcessMeta {
  return {
    pid,
    ppid: 1,
    cmdline: ["/usr/local/bin/server", "--port", "80"],
    priority,
    gpu: { ordinal: 0, uuid: "GPU-test", name: "Test GPU", pci: "0000:01:00.0" },
    anchorMonotonic: ANCHOR_NS,
    anchorRealtime: BigInt(T0) * 1_000_000n,
    serviceName,
    resource: {},
  };
}

/** monotonic ns of epoch ms */
const mono = (epochMs: number) => ANCHOR_NS + BigInt(Math.round((epochMs - T0) * 1e6));

function window(meta: ProcessMeta, endMs: number, durMs: number, seq = 1): RequestWindow {
  const durNs = Math.round(durMs * 1e6);
  return { pid: meta.pid, seq, t: mono(endMs) - BigInt(durNs), durNs, launchCount: 1, streams: 1, launches: [], launchesDropped: 0,
    holds: [], heldNs: 0, gpuNs: null };
}

function hold(meta: ProcessMeta, startMs: number, durMs: number, causePid: number | null): Hold {
  return { pid: meta.pid, reason: causePid === null ? "budget" : "priority", t: mono(startMs), durNs: Math.round(durMs * 1e6),
    priority: meta.priority, causePid, causePriority: null, causeWindow: null, releasedBy: "idle" };
}

function clock(start = T0) {
  const c = { now: start, fn: () => c.now };
  return c;
}

describe("live state", () => {
  it("makes one P50/P99 point per second from the windows that ended in it, once the second is over", () => {
    const c = clock();
    const live = new LiveState({ now: c.fn });
    const server = processMeta(101, 10, "inference");
    live.attach(server);
    // second 2: 100 windows of 1..100 ms (shuffled); second 3: 20 windows of 7 ms
    const durations = Array.from({ length: 100 }, (_, i) => ((i * 37) % 100) + 1);
    c.now = T0 + 3000;
    durations.forEach((d, i) => live.observeWindow(server, window(server, T0 + 2000 + i * 9, d, i + 1)));
    for (let i = 0; i < 20; i++) live.observeWindow(server, window(server, T0 + 3000 + i * 40, 7, 101 + i));

    c.now = T0 + 3100; // second 2 is over, but its last windows may still be on their way: no point yet
    let p = live.snapshot().processes[0];
    expect(p.series).toEqual([]);
    expect(p.recent).toEqual({ windows: 120, p50: 40, p99: 99, max: 100, gpuP50: null, gpuP99: null, queueP50: null, queueP99: null });

    c.now = T0 + 4300;
    p = live.snapshot().processes[0];
    expect(p.series).toEqual([
      { t: T0 + 2000, n: 100, p50: 50, p99: 99, max: 100 },
      { t: T0 + 3000, n: 20, p50: 7, p99: 7, max: 7 },
    ]);
    expect(p).toMatchObject({ pid: 101, service: "inference", priority: 10, state: "attached", windows: 120,
      gpu: { name: "Test GPU", uuid: "GPU-test" } });

    // the table's P50/P99 cover the last 10 s: second 2 leaves it when second 12 begins
    c.now = T0 + 11_999;
    expect(live.snapshot().processes[0].recent.windows).toBe(120);
    c.now = T0 + 12_000;
    expect(live.snapshot().processes[0].recent).toEqual({ windows: 20, p50: 7, p99: 7, max: 7, gpuP50: null, gpuP99: null, queueP50: null, queueP99: null });
    c.now = T0 + 13_000;
    expect(live.snapshot().processes[0].recent).toEqual({ windows: 0, p50: null, p99: null, max: null, gpuP50: null, gpuP99: null, queueP50: null, queueP99: null });
    expect(live.snapshot().processes[0].series).toHaveLength(2); // the series go back further
  });

  it("shows the recent GPU time and queue delay of the windows that have device times", () => {
    const c = clock();
    const live = new LiveState({ now: c.fn });
    const server = processMeta(101, 10, "inference");
    c.now = T0 + 2500;
    // 10 windows of 3 ms: 1..10 ms queued, then 2 ms on the GPU; one more without device times
    for (let i = 1; i <= 10; i++) {
      const w = window(server, T0 + 2000 + i * 20, 3, i);
      const queueNs = i * 100_000;
      w.device = { submitted: w.t, gpuStart: w.t + BigInt(queueNs), gpuEnd: w.t + BigInt(queueNs + 2_000_000), returned: w.t + 3_000_000n,
        queueNs, gpuNs: 2_000_000, completionNs: 1_000_000 - queueNs };
      live.observeWindow(server, w);
    }
    live.observeWindow(server, window(server, T0 + 2300, 5, 11));
    expect(live.snapshot().processes[0].recent).toEqual({ windows: 11, p50: 3, p99: 5, max: 5, gpuP50: 2, gpuP99: 2, queueP50: 0.5, queueP99: 1 });
  });

  it("counts a window that arrives after its second closed in the first open second, not in a past point", () => {
    const c = clock(T0 + 5000);
    const live = new LiveState({ now: c.fn });
    const server = processMeta(102, 0);
    live.observeWindow(server, window(server, T0 + 4500, 3)); // second 4 is still open
    c.now = T0 + 6300;
    live.observeWindow(server, window(server, T0 + 1500, 30)); // second 1 closed long ago: counted in second 6
    c.now = T0 + 7300;
    const p = live.snapshot().processes[0];
    expect(p.series).toEqual([
      { t: T0 + 4000, n: 1, p50: 3, p99: 3, max: 3 },
      { t: T0 + 6000, n: 1, p50: 30, p99: 30, max: 30 },
    ]);
    expect(p.service).toBe("server"); // no OTEL_SERVICE_NAME: the program's name
  });

  it("keeps holds with wall-clock times, their cause, and each process's held time", () => {
    const c = clock(T0 + 10_000);
    const live = new LiveState({ now: c.fn });
    const high = processMeta(201, 10, "inference");
    const low = processMeta(202, -10, "batch");
    live.attach(high);
    live.attach(low);
    live.observeHold(low, hold(low, T0 + 9000, 2.5, high.pid));
    live.observeHold(low, hold(low, T0 + 9100, 1.5, null));
    live.addDropped(low, 7);
    const s = live.snapshot();
    expect(s.holds).toEqual([
      { pid: 202, reason: "priority", start: T0 + 9000, end: T0 + 9002.5, causePid: 201, releasedBy: "idle" },
      { pid: 202, reason: "budget", start: T0 + 9100, end: T0 + 9101.5, causePid: null, releasedBy: "idle" },
    ]);
    expect(s.processes.map((p) => [p.pid, p.priority, p.holds, p.heldMs, p.dropped])).toEqual([[201, 10, 0, 0, 0], [202, -10, 2, 4, 7]]);
    expect(s.totals).toMatchObject({ processes: 2, holds: 2, dropped: 7, windows: 0 });
  });

  it("shows a gone process until forgotten, and a reused pid as the new process", () => {
    const c = clock();
    const live = new LiveState({ now: c.fn });
    const first = processMeta(301, -10, "batch");
    live.attach(first);
    live.observeWindow(first, window(first, T0 - 100, 5));
    c.now = T0 + 1000;
    live.gone(first);
    expect(live.snapshot().processes[0]).toMatchObject({ state: "gone", goneAt: T0 + 1000, windows: 1 });
    const second = processMeta(301, 10, "inference"); // the pid again, another process
    live.attach(second);
    live.forget(first); // the first one's forget must not remove the second
    live.gone(first);
    expect(live.snapshot().processes).toMatchObject([{ pid: 301, priority: 10, service: "inference", state: "attached", windows: 0 }]);
    live.forget(second);
    expect(live.snapshot().processes).toEqual([]);
  });

  it("stays bounded: series, the samples behind the recent percentiles and holds", () => {
    const c = clock();
    const live = new LiveState({ now: c.fn, seriesSeconds: 60, recentSeconds: 10, samplesPerSecond: 50, holdLimit: 100 });
    const high = processMeta(401, 10);
    const low = processMeta(402, -10);
    live.attach(high);
    live.attach(low);
    let seq = 0;
    for (let sec = 0; sec < 200; sec++) {
      for (let i = 0; i < 500; i++) {
        c.now = T0 + sec * 1000 + i * 2;
        live.observeWindow(high, window(high, c.now, (i * 7) % 500 + 1, ++seq)); // 1..500 ms, every value once a second
      }
      for (let i = 0; i < 3; i++) live.observeHold(low, hold(low, T0 + sec * 1000 + i * 100, 1, high.pid));
    }
    c.now = T0 + 200_300; // second 199 is closed
    const s = live.snapshot();
    const p = s.processes.find((x) => x.pid === high.pid)!;
    expect(p.windows).toBe(100_000);
    expect(p.series).toHaveLength(60);
    expect(p.series[0].t).toBe(T0 + 140_000);
    for (const pt of p.series) {
      expect(pt.n).toBe(500); // counts and maxima are exact,
      expect(pt.max).toBe(500);
      expect(pt.p50).toBeGreaterThan(100); // percentiles from a uniform sample of 50
      expect(pt.p50).toBeLessThan(400);
      expect(pt.p99).toBeGreaterThan(300);
    }
    // what is kept behind the recent percentiles: the last 10 seconds, 50 durations each
    const seconds = (live as unknown as { processes: Map<number, { seconds: { samples: number[] }[] }> }).processes.get(high.pid)!.seconds;
    expect(seconds.length).toBeLessThanOrEqual(10);
    for (const x of seconds) expect(x.samples.length).toBeLessThanOrEqual(50);
    expect(p.recent.windows).toBe(4500); // seconds 191..199 (second 200 has no window yet)
    // the last 100 holds, oldest first
    expect(s.holds).toHaveLength(100);
    expect(s.holds.at(-1)!.start).toBe(T0 + 199_200);
    expect(s.holds.map((h) => h.start)).toEqual([...s.holds.map((h) => h.start)].sort((a, b) => a - b));
    expect(s.processes.find((x) => x.pid === low.pid)!.holds).toBe(600);
  });
});
