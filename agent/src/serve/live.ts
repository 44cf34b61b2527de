// The live view's state (the web page that the agent serves and `tailguard top`): the attached processes, a rolling
// per-second series of each one's request latency (P50/P99), their recent GPU time and queue delay, the recent holds
// and the drops. The agent feeds it the
// windows and holds it assembles; `snapshot()` is what GET /api/state answers.
//
// Memory is bounded whatever the load: per process one point a second for `seriesSeconds` (600), and the durations
// behind the points of the last `recentSeconds` (10) only, at most `samplesPerSecond` (4096) of them a second (beyond
// that, a uniform sample of the second's windows: the percentiles are exact up to 4096 windows a second per process);
// the last `holdLimit` (2000) holds of all processes, none older than `seriesSeconds`.
import type { AgentStats } from "../model.js";
import { commandLabel } from "../telemetry/metrics.js";
import { percentile } from "../stats.js"; // nearest rank, as the HDR histograms report
import { epochNs, type Hold, type ProcessMeta, type RequestWindow } from "../model.js";

export interface LiveOptions {
  /** how far back the latency series go (s) */
  seriesSeconds?: number;
  /** the span of the table's P50/P99 (s) */
  recentSeconds?: number;
  /** most window durations kept per process and second */
  samplesPerSecond?: number;
  /** most holds kept */
  holdLimit?: number;
  /** the agent's counters, for the totals */
  stats?: () => AgentStats;
  /** the clock (epoch ms); tests set it */
  now?: () => number;
}

/** One second of a process's request windows: those that ended in it. Latencies in ms. */
export interface LatencyPoint {
  /** the second's start, epoch ms */
  t: number;
  /** windows that ended in it */
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** A hold of a process's launches, with wall-clock times (epoch ms). */
export interface LiveHold {
  /** the held process */
  pid: number;
  reason: Hold["reason"];
  start: number;
  end: number;
  /** the process whose work caused it (priority and share holds), else null */
  causePid: number | null;
  releasedBy: string;
}

export interface LiveProcess {
  pid: number;
  /** OTEL_SERVICE_NAME, else the program's name */
  service: string;
  cmdline: string[];
  priority: number;
  gpu: { name: string; uuid: string } | null;
  /** corrupt: its ring failed the agent's checks and is no longer read (see `corrupt`) */
  state: "attached" | "gone" | "corrupt";
  /** why its ring was quarantined, or null */
  corrupt: string | null;
  /** epoch ms */
  attachedAt: number;
  goneAt: number | null;
  windows: number;
  holds: number;
  /** total time its launches were held (ms) */
  heldMs: number;
  /** records its shim dropped because its ring was full */
  dropped: number;
  /** request latency over the last `recentSeconds` (ms; null: no window ended then); the P50/P99 of the GPU time and
   *  queue delay of those windows that have device times (docs/gpu-time.md; null: none had) */
  recent: {
    windows: number;
    p50: number | null;
    p99: number | null;
    max: number | null;
    gpuP50: number | null;
    gpuP99: number | null;
    queueP50: number | null;
    queueP99: number | null;
  };
  /** one point per second that had windows, oldest first */
  series: LatencyPoint[];
}

/** What GET /api/state answers. */
export interface LiveSnapshot {
  /** epoch ms */
  now: number;
  startedAt: number;
  seriesSeconds: number;
  recentSeconds: number;
  totals: AgentStats;
  processes: LiveProcess[];
  /** oldest first */
  holds: LiveHold[];
}

/** A second's window durations (ns), sampled uniformly once there are more than fit. */
class Second {
  n = 0;
  max = 0;
  readonly samples: number[] = [];
  /** GPU time and queue delay (ns) of its windows with device times, sampled the same way */
  devices = 0;
  readonly gpu: number[] = [];
  readonly queue: number[] = [];

  constructor(readonly t: number) {}

  addDevice(gpuNs: number, queueNs: number, limit: number) {
    this.devices++;
    const i = this.gpu.length < limit ? this.gpu.length : Math.floor(Math.random() * this.devices);
    if (i < limit) {
      this.gpu[i] = gpuNs;
      this.queue[i] = queueNs;
    }
  }

  add(ns: number, limit: number) {
    this.n++;
    if (ns > this.max) this.max = ns;
    if (this.samples.length < limit) this.samples.push(ns);
    else {
      const i = Math.floor(Math.random() * this.n); // reservoir sampling: every window kept with probability limit/n
      if (i < limit) this.samples[i] = ns;
    }
  }
}

/** ns → ms, to the microsecond */
const toMs = (ns: number) => Math.round(ns / 1e3) / 1e3;
/** ms, to the microsecond */
const toUs = (ms: number) => Math.round(ms * 1e3) / 1e3;

class Tracked {
  windows = 0;
  holds = 0;
  heldNs = 0;
  dropped = 0;
  goneAt: number | null = null;
  corrupt: string | null = null;
  readonly points: LatencyPoint[] = [];
  /** seconds still open (their windows may still arrive) or within recentSeconds: their samples are kept */
  seconds: Second[] = [];
  /** windows that end before this second (epoch ms) have had their point made: later ones are counted in an open one */
  openFrom = 0;
  /** the process's monotonic ns → epoch ms, without bigint arithmetic on every window (exact to the microsecond) */
  private readonly offsetMs: number;

  constructor(
    /** what it is now (its priority, GPU and identity follow changes: LiveState.update) */
    public meta: ProcessMeta,
    readonly attachedAt: number,
  ) {
    this.offsetMs = Number(epochNs(meta, 0n)) / 1e6;
  }

  epochMs(t: bigint, plusNs = 0): number {
    return this.offsetMs + (Number(t) + plusNs) / 1e6;
  }
}

/** A second closes (its point is made) this long after it ends: the agent drains the rings every 10 ms, and finishes a
 *  window one drain pass after its end record. */
const CLOSE_AFTER_MS = 250;

export class LiveState {
  readonly seriesSeconds: number;
  readonly recentSeconds: number;
  private readonly samplesPerSecond: number;
  private readonly holdLimit: number;
  private readonly now: () => number;
  private readonly stats?: () => AgentStats;
  private readonly startedAt: number;
  private readonly processes = new Map<number, Tracked>();
  /** a ring buffer of the last holdLimit holds: `holdNext` is where the next one goes */
  private readonly recentHolds: LiveHold[] = [];
  private holdNext = 0;
  private readonly totals = { windows: 0, holds: 0, dropped: 0 };

  constructor(opts: LiveOptions = {}) {
    this.seriesSeconds = opts.seriesSeconds ?? 600;
    this.recentSeconds = opts.recentSeconds ?? 10;
    this.samplesPerSecond = opts.samplesPerSecond ?? 4096;
    this.holdLimit = opts.holdLimit ?? 2000;
    this.now = opts.now ?? Date.now;
    this.stats = opts.stats;
    this.startedAt = this.now();
  }

  /** A process the agent follows from now on (a new one with the pid of one gone replaces it). */
  attach(meta: ProcessMeta): void {
    const t = this.processes.get(meta.pid);
    if (t?.meta === meta) return;
    const now = this.now();
    const fresh = new Tracked(meta, now);
    fresh.openFrom = secondOf(now - CLOSE_AFTER_MS);
    this.processes.set(meta.pid, fresh);
  }

  /** The process's priority, GPU or identity changed: shown as it is now, its counts and latency series kept. */
  update(before: ProcessMeta, after: ProcessMeta): void {
    const t = this.processes.get(before.pid);
    if (t?.meta === before) t.meta = after;
  }

  observeWindow(meta: ProcessMeta, w: RequestWindow): void {
    const t = this.tracked(meta);
    t.windows++;
    this.totals.windows++;
    const now = this.now();
    this.close(t, now);
    const end = t.epochMs(w.t, w.durNs);
    // a window that reached the agent after its second closed (an agent catching up on a backlog) counts in the first
    // open one; one stamped in the future (a clock anchor off) in the current one
    const second = Math.min(Math.max(secondOf(end), t.openFrom), secondOf(now));
    let s = t.seconds.find((x) => x.t === second);
    if (!s) {
      s = new Second(second);
      t.seconds.push(s);
      t.seconds.sort((a, b) => a.t - b.t);
    }
    s.add(w.durNs, this.samplesPerSecond);
    if (w.device) s.addDevice(w.device.gpuNs, w.device.queueNs, this.samplesPerSecond);
  }

  observeHold(meta: ProcessMeta, h: Hold): void {
    const t = this.tracked(meta);
    t.holds++;
    t.heldNs += h.durNs;
    this.totals.holds++;
    const hold: LiveHold = {
      pid: meta.pid,
      reason: h.reason,
      start: toUs(t.epochMs(h.t)),
      end: toUs(t.epochMs(h.t, h.durNs)),
      causePid: h.causePid,
      releasedBy: h.releasedBy,
    };
    if (this.recentHolds.length < this.holdLimit) this.recentHolds.push(hold);
    else this.recentHolds[this.holdNext] = hold;
    this.holdNext = (this.holdNext + 1) % this.holdLimit;
  }

  /** Records the process's shim dropped (a delta since the last call). */
  addDropped(meta: ProcessMeta, records: number): void {
    this.tracked(meta).dropped += records;
    this.totals.dropped += records;
  }

  /** The process's ring was quarantined: shown as corrupt, with why, until it is gone. */
  corrupt(meta: ProcessMeta, why: string): void {
    this.tracked(meta).corrupt = why;
  }

  /** The process has exited: it is shown as gone until forget(). */
  gone(meta: ProcessMeta): void {
    const t = this.processes.get(meta.pid);
    if (t?.meta === meta && t.goneAt === null) t.goneAt = this.now();
  }

  /** The process is no longer shown (unless its pid now belongs to another process that attached since). */
  forget(meta: ProcessMeta): void {
    if (this.processes.get(meta.pid)?.meta === meta) this.processes.delete(meta.pid);
  }

  snapshot(): LiveSnapshot {
    const now = this.now();
    const horizon = now - this.seriesSeconds * 1000;
    const processes: LiveProcess[] = [];
    for (const t of this.processes.values()) {
      this.close(t, now);
      const recent = t.seconds.flatMap((s) => s.samples).sort((a, b) => a - b);
      const gpu = t.seconds.flatMap((s) => s.gpu).sort((a, b) => a - b);
      const queue = t.seconds.flatMap((s) => s.queue).sort((a, b) => a - b);
      const at = (sorted: number[], pct: number) => (sorted.length ? toMs(percentile(sorted, pct)) : null);
      const meta = t.meta;
      processes.push({
        pid: meta.pid,
        service: commandLabel(meta),
        cmdline: meta.cmdline,
        priority: meta.priority,
        gpu: meta.gpu ? { name: meta.gpu.name, uuid: meta.gpu.uuid } : null,
        state: t.goneAt !== null ? "gone" : t.corrupt !== null ? "corrupt" : "attached",
        corrupt: t.corrupt,
        attachedAt: t.attachedAt,
        goneAt: t.goneAt,
        windows: t.windows,
        holds: t.holds,
        heldMs: toMs(t.heldNs),
        dropped: t.dropped,
        recent: {
          windows: t.seconds.reduce((n, s) => n + s.n, 0),
          p50: recent.length ? toMs(percentile(recent, 50)) : null,
          p99: recent.length ? toMs(percentile(recent, 99)) : null,
          max: recent.length ? toMs(Math.max(...t.seconds.map((s) => s.max))) : null,
          gpuP50: at(gpu, 50),
          gpuP99: at(gpu, 99),
          queueP50: at(queue, 50),
          queueP99: at(queue, 99),
        },
        series: t.points.slice(),
      });
    }
    processes.sort((a, b) => b.priority - a.priority || a.pid - b.pid);
    const holds = [...this.recentHolds.slice(this.holdNext), ...this.recentHolds.slice(0, this.holdNext)];
    return {
      now,
      startedAt: this.startedAt,
      seriesSeconds: this.seriesSeconds,
      recentSeconds: this.recentSeconds,
      totals: this.stats?.() ?? {
        processes: processes.filter((p) => p.state === "attached").length,
        records: 0,
        launches: 0,
        ...this.totals,
        spans: { exported: 0, dropped: 0, failed: 0, queued: 0 },
      },
      processes,
      holds: holds.filter((h) => h.end >= horizon),
    };
  }

  /** A process seen first through an observation (the agent attaches before it observes; a direct user may not). */
  private tracked(meta: ProcessMeta): Tracked {
    const t = this.processes.get(meta.pid);
    if (t?.meta === meta) return t;
    this.attach(meta);
    return this.processes.get(meta.pid)!;
  }

  /** Makes the points of the seconds that are over, and lets go of the samples older than recentSeconds. */
  private close(t: Tracked, now: number): void {
    const closing = secondOf(now - CLOSE_AFTER_MS); // seconds before this one are over
    if (closing > t.openFrom) {
      for (const s of t.seconds) {
        if (s.t >= closing || s.t < t.openFrom) continue;
        const sorted = s.samples.slice().sort((a, b) => a - b);
        t.points.push({ t: s.t, n: s.n, p50: toMs(percentile(sorted, 50)), p99: toMs(percentile(sorted, 99)), max: toMs(s.max) });
      }
      t.openFrom = closing;
      const horizon = now - this.seriesSeconds * 1000;
      let old = 0;
      while (old < t.points.length && t.points[old].t + 1000 <= horizon) old++;
      if (old > 0) t.points.splice(0, old);
    }
    // the recent span: this second and the ones before it; never a second whose point is still to be made
    const keepFrom = Math.min(secondOf(now) - (this.recentSeconds - 1) * 1000, t.openFrom);
    if (t.seconds.length > 0 && t.seconds[0].t < keepFrom) t.seconds = t.seconds.filter((s) => s.t >= keepFrom);
  }
}

/** The start of the second `ms` is in (epoch ms). */
function secondOf(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}
