// `tailguard run --record`: drains the rings of one recording session (the command and all its children) and writes
// every record as one JSON object per line, then summarises what each process did. The line format is documented in
// docs/records.md; recordToJson is its one definition.
import { closeSync, openSync, writeSync } from "node:fs";

import { contextLine } from "./contexts.js";
import { Drain } from "./drain.js";
import { native, type RingInfo } from "./native.js";
import {
  AttachPath,
  decodeRecord,
  Flag,
  GpuMissingName,
  Kind,
  KindName,
  OpName,
  RECORD_SIZE,
  ReleaseName,
  RingState,
  type RawRecord,
} from "./record.js";

/** Per-process tallies for the summary. */
export interface ProcessSummary {
  pid: number;
  ppid: number;
  cmdline: string[];
  priority: number;
  attachPaths: number;
  gpu: RingInfo["gpu"];
  records: number;
  launches: number;
  kernels: Map<string, number>;
  syncs: number;
  copies: number;
  /** its launches held by the scheduler: how often, and for how long in all (ns) */
  holds: number;
  heldNs: number;
  /** request windows (busy periods) that ended */
  windows: number;
  dropped: number;
  torn: number;
  ended: "running" | "exit" | "exec" | "gone";
}

const hex = (v: bigint) => "0x" + v.toString(16);

/** Attach paths as words, for people. */
export function describePaths(bits: number): string[] {
  const out: string[] = [];
  if (bits & AttachPath.CUDA_SYMBOL) out.push("cuda: exported symbols");
  if (bits & AttachPath.CUDA_GPA) out.push("cuda: cuGetProcAddress");
  if (bits & AttachPath.CUDA_DLSYM) out.push("cuda: dlsym");
  if (bits & AttachPath.HIP_SYMBOL) out.push("hip: exported symbols");
  if (bits & AttachPath.HIP_DLSYM) out.push("hip: dlsym");
  return out;
}

export interface JsonContext {
  pid: number;
  /** CLOCK_MONOTONIC ns that `t` is measured from */
  origin: bigint;
  apiName(api: number): string;
  kernelName(id: number): string | undefined;
}

/** One record as the JSON object written to the recording (see docs/records.md). */
export function recordToJson(r: RawRecord, ctx: JsonContext): Record<string, unknown> {
  const kind = KindName[r.kind] ?? `unknown-${r.kind}`;
  const o: Record<string, unknown> = { kind };
  const op = OpName[r.kind]?.[r.op];
  if (op) o.op = op;
  o.pid = ctx.pid;
  o.tid = r.tid;
  o.t = Number(r.tStart - ctx.origin);
  if (r.kind === Kind.WINDOW) {
    o.dur = r.durNs;
    o.window = Number(r.payload64);
    if (op === "end") {
      o.launches = r.windowLaunches;
      o.streams = r.windowStreams;
    }
  } else if (r.kind === Kind.GPU_TIME) {
    o.window = Number(r.payload64);
    if (op === "window") {
      o.gpu_start = Number(r.gpuStart - ctx.origin);
      o.gpu_end = Number(r.gpuEnd - ctx.origin);
    } else o.reason = GpuMissingName[r.result] ?? r.result;
  } else if (r.kind === Kind.KERNEL_TIME) {
    if (op === "dropped") {
      const count = Number(r.payload64);
      o.count = count;
      // why (record.h, TG_OP_KT_DROPPED): records written before the reasons were counted have zeros here
      const unmatched = Number(r.gpuStart), thread = Number(r.gpuEnd >> 32n), overflow = Number(r.gpuEnd & 0xffffffffn);
      o.reasons = { unmatched, thread, overflow, cupti: Math.max(0, count - unmatched - thread - overflow) };
    }
    else if (op === "started") o.mode = r.result === 2 ? "all" : "sampled";
    else {
      if (r.flags & Flag.KT_CALL) {
        // keyed by the CUDA call that submitted it (record.h, TG_F_KT_CALL)
        const start = Number(r.payload64 - ctx.origin);
        o.call_start = start;
        o.call_end = start + (r.durNs ?? 0);
      } else o.launch = Number(r.payload64 - ctx.origin);
      o.gpu_start = Number(r.gpuStart - ctx.origin);
      o.gpu_end = Number(r.gpuEnd - ctx.origin);
      if (r.stream) o.kernel = ctx.kernelName(Number(r.stream)) ?? `#${r.stream}`;
    }
  } else if (r.kind === Kind.RANGE) {
    rangeJson(r, ctx, o);
  } else if (r.kind !== Kind.PROCESS) {
    if (r.durNs !== null) o.dur = r.durNs;
    o.api = ctx.apiName(r.api);
    o.result = r.result;
    o.stream = hex(r.stream);
  }
  if (r.flags & Flag.PER_THREAD) o.per_thread = true;
  if (r.flags & Flag.CAPTURED) o.captured = true;
  if (r.flags & Flag.ASYNC) o.async = true;
  if (r.flags & Flag.BLOCKING) o.blocking = true;
  switch (r.kind) {
    case Kind.PROCESS:
      o.ppid = r.ppid;
      o.priority = r.priority;
      break;
    case Kind.LAUNCH:
      if (op === "graph") o.graph = hex(r.payload64);
      else {
        o[op === "host_func" ? "func" : "kernel"] = ctx.kernelName(r.kernel) ?? `#${r.kernel}`;
        if (op === "kernel") {
          o.grid = r.grid;
          o.block = r.block;
          o.shared_kib = r.sharedKiB;
        }
      }
      break;
    case Kind.COPY:
      o.bytes = Number(r.payload64);
      if (op === "memset") o.element_size = r.elementSize;
      break;
    case Kind.SYNC:
      if (op === "event") o.event = hex(r.payload64);
      break;
    case Kind.WAIT:
    case Kind.EVENT:
      o.event = hex(r.payload64);
      break;
    case Kind.HOLD:
      o.priority = r.heldPriority;
      o.released_by = ReleaseName[r.releasedBy] ?? r.releasedBy;
      if (op === "priority" || op === "share") {
        o.cause_pid = r.causePid;
        o.cause_priority = r.causePriority;
        o.cause_window = Number(r.payload64);
      }
      delete o.result;
      break;
    case Kind.STREAM:
      if (op === "create") {
        o.priority = r.streamPriority;
        o.flags = r.streamFlags;
      }
      break;
  }
  return o;
}

/** An NVTX range record's fields (docs/records.md): the message and domain by name, the range id of start/end (a
 *  decimal string: 64 bits), the nesting depth of push/pop, the category. */
function rangeJson(r: RawRecord, ctx: JsonContext, o: Record<string, unknown>): void {
  const name = (id: number) => (id === 0 ? undefined : (ctx.kernelName(id) ?? `#${id}`));
  const message = name(r.rangeMessage);
  if (message !== undefined) o.message = message;
  const domain = name(r.rangeDomain);
  if (domain !== undefined) o.domain = domain;
  const op = OpName[Kind.RANGE][r.op];
  if (op === "start" || op === "end") o.id = r.payload64.toString();
  if (op === "push" || op === "pop") o.depth = r.rangeDepth;
  if (r.rangeCategory) o.category = r.rangeCategory;
}

/** A ring of the session: its process, its kernel names, the launch records drained from it. */
interface SessionRing {
  pid: number;
  names: Map<number, string>;
  launches: number;
}

/** Records one take of the collector hands over at most. */
const TAKE_RECORDS = 1 << 18;

/** Drains one session's rings into a JSON-lines file (or only tallies them when `outPath` is null). */
export class Recording {
  readonly origin = process.hrtime.bigint(); // CLOCK_MONOTONIC, like the shim's timestamps
  readonly processes = new Map<number, ProcessSummary>();
  readonly problems: string[] = [];
  /** processes still running when the recording stopped */
  readonly stillRunning: number[] = [];
  private readonly drain: Drain<SessionRing>;
  private readonly fd: number | null;
  private readonly apiNames: string[];
  private pending: string[] = [];
  private pendingBytes = 0;
  records = 0;

  constructor(
    dir: string,
    readonly session: string,
    outPath: string | null,
    command: string[],
  ) {
    const addon = native();
    this.apiNames = addon.apis().map((a) => a?.name ?? "none");
    this.drain = new Drain(dir, { session, pollUs: 500 }, {
      opened: (info) => this.attach(info),
      name: (ring, id, demangled) => ring.names.set(id, demangled),
      records: (ring, data) => this.ingest(ring, data),
      closed: (ring, info) => this.finishRing(ring, info),
    });
    this.fd = outPath ? openSync(outPath, "w") : null;
    const epoch = BigInt(Date.now()) * 1_000_000n;
    this.write({
      kind: "recording",
      format: 1,
      tailguard: addon.version,
      session,
      command,
      origin_monotonic_ns: this.origin.toString(),
      origin_epoch_ns: epoch.toString(),
    });
  }

  private write(o: Record<string, unknown>) {
    if (this.fd === null) return;
    const line = JSON.stringify(o) + "\n";
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (this.pendingBytes > 1 << 20) this.flush();
  }

  private flush() {
    if (this.fd === null || this.pending.length === 0) return;
    writeSync(this.fd, this.pending.join(""));
    this.pending = [];
    this.pendingBytes = 0;
  }

  private summaryOf(info: RingInfo): ProcessSummary {
    let s = this.processes.get(info.pid);
    if (!s) {
      s = {
        pid: info.pid,
        ppid: info.ppid,
        cmdline: info.cmdline,
        priority: info.priority,
        attachPaths: 0,
        gpu: null,
        records: 0,
        launches: 0,
        kernels: new Map(),
        syncs: 0,
        copies: 0,
        holds: 0,
        heldNs: 0,
        windows: 0,
        dropped: 0,
        torn: 0,
        ended: "running",
      };
      this.processes.set(info.pid, s);
    }
    return s;
  }

  /** Moves what the collector has gathered into the file (one take); returns the number of records handled. */
  pump(): number {
    const n = this.drain.pump(TAKE_RECORDS);
    this.problems.push(...this.drain.problems());
    return n;
  }

  private attach(info: RingInfo): SessionRing {
    const s = this.summaryOf(info);
    s.cmdline = info.cmdline; // an exec'd image replaces its predecessor's command line
    this.write({
      kind: "process",
      op: "attach",
      pid: info.pid,
      ppid: info.ppid,
      cmd: info.cmdline,
      priority: info.priority,
      session: info.session,
      shim: info.shimVersion,
      exec_generation: info.execGeneration,
      anchor_realtime_ns: info.anchorRealtime.toString(),
      anchor_monotonic_ns: info.anchorMonotonic.toString(),
      ring: info.path,
    });
    return { pid: info.pid, names: new Map(), launches: 0 };
  }

  /** One batch of a ring's records: tallied, and written as lines. */
  private ingest(ring: SessionRing, data: Buffer) {
    const s = this.processes.get(ring.pid)!;
    const ctx: JsonContext = {
      pid: ring.pid,
      origin: this.origin,
      apiName: (api) => this.apiNames[api] ?? `api#${api}`,
      kernelName: (id) => ring.names.get(id),
    };
    for (let off = 0; off < data.length; off += RECORD_SIZE) {
      const r = decodeRecord(data, off);
      s.records++;
      if (r.kind === Kind.LAUNCH) {
        s.launches++;
        ring.launches++;
        const name = r.op === 2 ? "(graph)" : (ring.names.get(r.kernel) ?? `#${r.kernel}`);
        s.kernels.set(name, (s.kernels.get(name) ?? 0) + 1);
      } else if (r.kind === Kind.SYNC) s.syncs++;
      else if (r.kind === Kind.COPY) s.copies++;
      else if (r.kind === Kind.HOLD) {
        s.holds++;
        s.heldNs += r.durNs ?? 0;
      } else if (r.kind === Kind.WINDOW && r.op === 2) s.windows++;
      if (this.fd !== null)
        this.write(r.kind === Kind.CONTEXT ? contextLine(recordToJson(r, ctx), data, off, ring.names) : recordToJson(r, ctx));
    }
    this.records += data.length / RECORD_SIZE;
  }

  private finishRing(ring: SessionRing, info: RingInfo) {
    const s = this.summaryOf(info);
    // exact: what was recorded plus what was dropped (the header's running count lags by design)
    const launches = ring.launches + info.counters.droppedLaunches;
    s.attachPaths |= info.attachPaths;
    s.gpu = info.gpu ?? s.gpu;
    s.dropped += info.counters.dropped;
    s.torn += info.counters.torn ?? 0;
    s.ended = info.state === RingState.EXITED ? "exit" : info.state === RingState.EXECED ? "exec" : "gone";
    this.write({
      kind: "process",
      op: "detach",
      pid: info.pid,
      ended: s.ended,
      gpu: info.gpu,
      attach_paths: describePaths(info.attachPaths),
      launches,
      dropped: info.counters.dropped,
      dropped_launches: info.counters.droppedLaunches,
      names_dropped: info.counters.namesDropped,
      torn: info.counters.torn ?? 0,
    });
  }

  /** Rings still open (their processes run, or their last records are not drained yet). */
  get openRings(): number {
    return this.drain.openRings;
  }

  /** Drains until every ring of the session is closed. `graceMs` bounds only the wait for processes that outlive
   *  the command (daemons it started): records already in rings are always drained. */
  async finish(graceMs: number): Promise<void> {
    await this.drain.finish(TAKE_RECORDS, graceMs);
    this.problems.push(...this.drain.problems());
    // Processes that outlive the command (daemons it started) keep their state; note what is still open.
    for (const info of this.drain.status()) {
      this.stillRunning.push(info.pid);
      const s = this.summaryOf(info);
      s.attachPaths |= info.attachPaths;
      s.gpu = info.gpu ?? s.gpu;
      s.dropped += info.counters.dropped;
    }
    this.drain.close();
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
  }
}
