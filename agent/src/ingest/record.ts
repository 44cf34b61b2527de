// The TypeScript mirror of native/include/tailguard/record.h: field offsets, kinds, ops and flags, and a decoder for
// the 64-byte records the shim writes. test/unit/record-layout.test.ts proves every number here against the C header.

export const RECORD_SIZE = 64;

/** [offset, size] of each field of tg_record. */
export const RecordField = {
  seq: [0, 8],
  kind: [8, 1],
  op: [9, 1],
  api: [10, 2],
  tid: [12, 4],
  t_start: [16, 8],
  dur: [24, 4],
  flags: [28, 2],
  result: [30, 2],
  stream: [32, 8],
  "launch.kernel": [40, 4],
  "launch.grid": [44, 12],
  "launch.block": [56, 6],
  "launch.shared_kib": [62, 2],
  "graph.exec": [40, 8],
  "copy.bytes": [40, 8],
  "copy.element_size": [48, 4],
  "sync.object": [40, 8],
  "event.event": [40, 8],
  "stream_info.priority": [40, 4],
  "stream_info.flags": [44, 4],
  "process.pid": [40, 4],
  "process.ppid": [44, 4],
  "process.priority": [48, 4],
  "hold.cause_window": [40, 8],
  "hold.cause_pid": [48, 4],
  "hold.cause_priority": [52, 4],
  "hold.released_by": [56, 4],
  "hold.priority": [60, 4],
  "window.seq": [40, 8],
  "window.launches": [48, 4],
  "window.streams": [52, 4],
  "context.trace_id": [40, 16],
  "context.span_id": [56, 8],
  "range.id": [40, 8],
  "range.message": [48, 4],
  "range.domain": [52, 4],
  "range.depth": [56, 4],
  "range.category": [60, 4],
  "gpu_time.seq": [40, 8],
  "gpu_time.gpu_start": [48, 8],
  "gpu_time.gpu_end": [56, 8],
  "kernel_time.launch": [40, 8],
  "kernel_time.gpu_start": [48, 8],
  "kernel_time.gpu_end": [56, 8],
} as const satisfies Record<string, readonly [number, number]>;

export const Kind = {
  PROCESS: 1,
  LAUNCH: 2,
  COPY: 3,
  SYNC: 4,
  WAIT: 5,
  EVENT: 6,
  STREAM: 7,
  HOLD: 8,
  WINDOW: 9,
  CONTEXT: 10,
  RANGE: 11,
  GPU_TIME: 12,
  KERNEL_TIME: 13,
} as const;
export const KindName: Record<number, string> = {
  1: "process",
  2: "launch",
  3: "copy",
  4: "sync",
  5: "wait",
  6: "event",
  7: "stream",
  8: "hold",
  9: "window",
  10: "context",
  11: "range",
  12: "gpu_time",
  13: "kernel_time",
};

/** Names of `op`, by kind. */
export const OpName: Record<number, Record<number, string>> = {
  [Kind.PROCESS]: { 1: "start", 2: "exit", 3: "exec" },
  [Kind.LAUNCH]: { 1: "kernel", 2: "graph", 3: "host_func" },
  [Kind.COPY]: { 1: "htod", 2: "dtoh", 3: "dtod", 4: "htoh", 5: "any", 6: "peer", 7: "memset" },
  [Kind.SYNC]: { 1: "stream", 2: "device", 3: "event" },
  [Kind.STREAM]: { 1: "create", 2: "destroy", 3: "capture_begin", 4: "capture_end" },
  [Kind.HOLD]: { 1: "priority", 2: "budget", 3: "share" },
  [Kind.WINDOW]: { 1: "begin", 2: "end" },
  [Kind.CONTEXT]: { 1: "process", 2: "request_begin", 3: "request_end" },
  [Kind.RANGE]: { 1: "push", 2: "pop", 3: "start", 4: "end", 5: "mark" },
  [Kind.GPU_TIME]: { 1: "window", 2: "missing" },
  [Kind.KERNEL_TIME]: { 1: "kernel", 2: "memcpy", 3: "memset", 4: "dropped", 5: "started" },
};
/** Why a window's device times are missing (GPU_TIME missing records' result). */
export const GpuMissingName: Record<number, string> = { 1: "no_timing", 2: "pool_full", 3: "stream", 4: "fork" };
export const ReleaseName: Record<number, string> = { 1: "idle", 2: "lapsed", 3: "min_share", 4: "drained" };

export const Flag = { DUR_US: 1, CAPTURED: 2, ASYNC: 4, BLOCKING: 8, PER_THREAD: 16, UNTIMED: 32, SAMPLED: 64, KT_CALL: 128 } as const;
/** KERNEL_TIME with Flag.KT_CALL: how long before its CUDA call began its launch record may have been made (ns). */
export const KT_CALL_SLACK_NS = 20_000;
export const RingState = { RUNNING: 1, EXITED: 2, EXECED: 3 } as const;
export const AttachPath = { CUDA_SYMBOL: 1, CUDA_GPA: 2, CUDA_DLSYM: 4, HIP_SYMBOL: 8, HIP_DLSYM: 16 } as const;

/** The constants of record.h under their C names, for the agreement test. */
export const recordConstants: Record<string, number> = {
  TG_KIND_PROCESS: Kind.PROCESS,
  TG_KIND_LAUNCH: Kind.LAUNCH,
  TG_KIND_COPY: Kind.COPY,
  TG_KIND_SYNC: Kind.SYNC,
  TG_KIND_WAIT: Kind.WAIT,
  TG_KIND_EVENT: Kind.EVENT,
  TG_KIND_STREAM: Kind.STREAM,
  TG_OP_START: 1,
  TG_OP_EXIT: 2,
  TG_OP_EXEC: 3,
  TG_OP_KERNEL: 1,
  TG_OP_GRAPH: 2,
  TG_OP_HOST_FUNC: 3,
  TG_OP_HTOD: 1,
  TG_OP_DTOH: 2,
  TG_OP_DTOD: 3,
  TG_OP_HTOH: 4,
  TG_OP_ANY: 5,
  TG_OP_PEER: 6,
  TG_OP_MEMSET: 7,
  TG_OP_SYNC_STREAM: 1,
  TG_OP_SYNC_DEVICE: 2,
  TG_OP_SYNC_EVENT: 3,
  TG_OP_CREATE: 1,
  TG_OP_DESTROY: 2,
  TG_OP_CAPTURE_BEGIN: 3,
  TG_OP_CAPTURE_END: 4,
  TG_KIND_HOLD: Kind.HOLD,
  TG_KIND_WINDOW: Kind.WINDOW,
  TG_OP_HOLD_PRIORITY: 1,
  TG_OP_HOLD_BUDGET: 2,
  TG_OP_HOLD_SHARE: 3,
  TG_OP_BEGIN: 1,
  TG_OP_END: 2,
  TG_RELEASE_IDLE: 1,
  TG_RELEASE_LAPSED: 2,
  TG_RELEASE_MIN_SHARE: 3,
  TG_RELEASE_DRAINED: 4,
  TG_F_DUR_US: Flag.DUR_US,
  TG_F_CAPTURED: Flag.CAPTURED,
  TG_F_ASYNC: Flag.ASYNC,
  TG_F_BLOCKING: Flag.BLOCKING,
  TG_F_PER_THREAD: Flag.PER_THREAD,
  TG_F_UNTIMED: Flag.UNTIMED,
  TG_F_SAMPLED: Flag.SAMPLED,
  TG_F_KT_CALL: Flag.KT_CALL,
  TG_KT_CALL_SLACK_NS: KT_CALL_SLACK_NS,
  TG_KIND_CONTEXT: Kind.CONTEXT,
  TG_KIND_RANGE: Kind.RANGE,
  TG_KIND_GPU_TIME: Kind.GPU_TIME,
  TG_OP_CONTEXT_PROCESS: 1,
  TG_OP_REQUEST_BEGIN: 2,
  TG_OP_REQUEST_END: 3,
  TG_OP_RANGE_PUSH: 1,
  TG_OP_RANGE_POP: 2,
  TG_OP_RANGE_START: 3,
  TG_OP_RANGE_END: 4,
  TG_OP_RANGE_MARK: 5,
  TG_OP_GPU_WINDOW: 1,
  TG_OP_GPU_MISSING: 2,
  TG_GPU_MISSING_NO_TIMING: 1,
  TG_GPU_MISSING_POOL: 2,
  TG_GPU_MISSING_STREAM: 3,
  TG_GPU_MISSING_FORK: 4,
  TG_KIND_KERNEL_TIME: Kind.KERNEL_TIME,
  TG_OP_KT_KERNEL: 1,
  TG_OP_KT_MEMCPY: 2,
  TG_OP_KT_MEMSET: 3,
  TG_OP_KT_DROPPED: 4,
  TG_OP_KT_STARTED: 5,
  TG_STATE_RUNNING: RingState.RUNNING,
  TG_STATE_EXITED: RingState.EXITED,
  TG_STATE_EXECED: RingState.EXECED,
  TG_PATH_CUDA_SYMBOL: AttachPath.CUDA_SYMBOL,
  TG_PATH_CUDA_GPA: AttachPath.CUDA_GPA,
  TG_PATH_CUDA_DLSYM: AttachPath.CUDA_DLSYM,
  TG_PATH_HIP_SYMBOL: AttachPath.HIP_SYMBOL,
  TG_PATH_HIP_DLSYM: AttachPath.HIP_DLSYM,
};

/** Byte offsets of the fields every reader needs, from RecordField (the one copy of record.h's layout). Plain
 *  constants, not an object's properties: the agent's ingest reads them ten million times a second. */
export const AT_KIND = RecordField.kind[0];
export const AT_OP = RecordField.op[0];
export const AT_TID = RecordField.tid[0];
export const AT_T_START = RecordField.t_start[0];
export const AT_DUR = RecordField.dur[0];
export const AT_FLAGS = RecordField.flags[0];
export const AT_STREAM = RecordField.stream[0];
export const AT_PAYLOAD = RecordField["graph.exec"][0];
export const AT_KERNEL = RecordField["launch.kernel"][0];
export const AT_GRID = RecordField["launch.grid"][0];
export const AT_BLOCK = RecordField["launch.block"][0];
export const AT_WINDOW_SEQ = RecordField["window.seq"][0];
export const AT_WINDOW_LAUNCHES = RecordField["window.launches"][0];
export const AT_CONTEXT_TRACE_ID = RecordField["context.trace_id"][0];
export const AT_CONTEXT_SPAN_ID = RecordField["context.span_id"][0];
export const AT_RANGE_ID = RecordField["range.id"][0];
export const AT_RANGE_MESSAGE = RecordField["range.message"][0];
export const AT_RANGE_DOMAIN = RecordField["range.domain"][0];
export const AT_RANGE_DEPTH = RecordField["range.depth"][0];
export const AT_RANGE_CATEGORY = RecordField["range.category"][0];
export const AT_GPU_TIME_SEQ = RecordField["gpu_time.seq"][0];
export const AT_GPU_TIME_START = RecordField["gpu_time.gpu_start"][0];
export const AT_GPU_TIME_END = RecordField["gpu_time.gpu_end"][0];
export const AT_KT_LAUNCH = RecordField["kernel_time.launch"][0];
export const AT_KT_START = RecordField["kernel_time.gpu_start"][0];
export const AT_KT_END = RecordField["kernel_time.gpu_end"][0];
export const AT_WINDOW_STREAMS = RecordField["window.streams"][0];
export const AT_HOLD_CAUSE_WINDOW = RecordField["hold.cause_window"][0];
export const AT_HOLD_CAUSE_PID = RecordField["hold.cause_pid"][0];
export const AT_HOLD_CAUSE_PRIORITY = RecordField["hold.cause_priority"][0];
export const AT_HOLD_RELEASED_BY = RecordField["hold.released_by"][0];
export const AT_HOLD_PRIORITY = RecordField["hold.priority"][0];

/** A record's `dur` in nanoseconds given its flags: the one reading of TG_F_DUR_US (microseconds for calls longer
 *  than 2^32 ns). */
export function durationOf(flags: number, dur: number): number {
  return flags & Flag.DUR_US ? dur * 1000 : dur;
}

/** The time the call of the record at byte o took (ns), or null when only its start was timed (TG_F_UNTIMED: launch
 *  durations are sampled). */
export function durationNs(b: Buffer, o: number): number | null {
  const flags = b.readUInt16LE(o + AT_FLAGS);
  return flags & Flag.UNTIMED ? null : durationOf(flags, b.readUInt32LE(o + AT_DUR));
}

/** Records earliestEndNs skips between two it reads: a record is a cache line, and reading every one cost about 40 ns
 *  a record (a batch of 65536, out of the cache; node, 2 busy cores), one in 64 under 1 ns. */
const END_SAMPLE = 64;

/** The earliest end (start + duration, CLOCK_MONOTONIC ns, as a double: exact to the ns for 104 days of uptime, to a
 *  few ns after) among a batch of whole records, the first and one in END_SAMPLE after it: about when the oldest of
 *  them was written (a lane's records are in order, and a batch has each lane's from its oldest). Infinity for none. */
export function earliestEndNs(b: Buffer): number {
  let min = Infinity;
  for (let o = 0; o + RECORD_SIZE <= b.length; o += RECORD_SIZE * END_SAMPLE) {
    const flags = b.readUInt16LE(o + AT_FLAGS);
    const start = b.readUInt32LE(o + AT_T_START + 4) * 4294967296 + b.readUInt32LE(o + AT_T_START);
    const end = flags & Flag.UNTIMED ? start : start + durationOf(flags, b.readUInt32LE(o + AT_DUR));
    if (end < min) min = end;
  }
  return min;
}

/** One record, decoded. Times are CLOCK_MONOTONIC nanoseconds. */
export interface RawRecord {
  kind: number;
  op: number;
  api: number;
  tid: number;
  tStart: bigint;
  /** nanoseconds spent in the call; null when not measured (launch durations are sampled, 1 in 8 per thread) */
  durNs: number | null;
  flags: number;
  result: number;
  stream: bigint;
  /** launch: kernel name id; host_func: callback name id */
  kernel: number;
  grid: [number, number, number];
  block: [number, number, number];
  sharedKiB: number;
  /** graph exec, copy bytes, sync/wait/event object: the first 8 payload bytes */
  payload64: bigint;
  elementSize: number;
  streamPriority: number;
  streamFlags: number;
  pid: number;
  ppid: number;
  priority: number;
  /** hold: the process and request window waited for, why it ended, the held process's priority */
  causePid: number;
  causePriority: number;
  releasedBy: number;
  heldPriority: number;
  /** window: launches and distinct streams in it (at its end) */
  windowLaunches: number;
  windowStreams: number;
  /** gpu_time window: when the device began and finished the window's work (CLOCK_MONOTONIC ns) */
  gpuStart: bigint;
  gpuEnd: bigint;
  /** range (NVTX): message and domain name ids (0: none), nesting depth, category; its id is payload64 */
  rangeMessage: number;
  rangeDomain: number;
  rangeDepth: number;
  rangeCategory: number;
}

/** Every field's offset, by its name in RecordField. */
const AT = Object.fromEntries(Object.entries(RecordField).map(([name, [off]]) => [name, off])) as {
  readonly [F in keyof typeof RecordField]: number;
};

/** Decodes the record at byte `offset` of `buf`. */
export function decodeRecord(buf: Buffer, offset = 0): RawRecord {
  const o = offset;
  const grid = o + AT["launch.grid"];
  const block = o + AT["launch.block"];
  return {
    kind: buf[o + AT.kind],
    op: buf[o + AT.op],
    api: buf.readUInt16LE(o + AT.api),
    tid: buf.readUInt32LE(o + AT.tid),
    tStart: buf.readBigUInt64LE(o + AT.t_start),
    durNs: durationNs(buf, o),
    flags: buf.readUInt16LE(o + AT.flags),
    result: buf.readInt16LE(o + AT.result),
    stream: buf.readBigUInt64LE(o + AT.stream),
    kernel: buf.readUInt32LE(o + AT["launch.kernel"]),
    grid: [buf.readUInt32LE(grid), buf.readUInt32LE(grid + 4), buf.readUInt32LE(grid + 8)],
    block: [buf.readUInt16LE(block), buf.readUInt16LE(block + 2), buf.readUInt16LE(block + 4)],
    sharedKiB: buf.readUInt16LE(o + AT["launch.shared_kib"]),
    payload64: buf.readBigUInt64LE(o + AT["graph.exec"]),
    elementSize: buf.readUInt32LE(o + AT["copy.element_size"]),
    streamPriority: buf.readInt32LE(o + AT["stream_info.priority"]),
    streamFlags: buf.readUInt32LE(o + AT["stream_info.flags"]),
    pid: buf.readUInt32LE(o + AT["process.pid"]),
    ppid: buf.readUInt32LE(o + AT["process.ppid"]),
    priority: buf.readInt32LE(o + AT["process.priority"]),
    causePid: buf.readUInt32LE(o + AT["hold.cause_pid"]),
    causePriority: buf.readInt32LE(o + AT["hold.cause_priority"]),
    releasedBy: buf.readUInt32LE(o + AT["hold.released_by"]),
    heldPriority: buf.readInt32LE(o + AT["hold.priority"]),
    windowLaunches: buf.readUInt32LE(o + AT["window.launches"]),
    windowStreams: buf.readUInt32LE(o + AT["window.streams"]),
    gpuStart: buf.readBigUInt64LE(o + AT["gpu_time.gpu_start"]),
    gpuEnd: buf.readBigUInt64LE(o + AT["gpu_time.gpu_end"]),
    rangeMessage: buf.readUInt32LE(o + AT["range.message"]),
    rangeDomain: buf.readUInt32LE(o + AT["range.domain"]),
    rangeDepth: buf.readUInt32LE(o + AT["range.depth"]),
    rangeCategory: buf.readUInt32LE(o + AT["range.category"]),
  };
}
