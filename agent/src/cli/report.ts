// `tailguard report`: percentile tables of what a run recorded, from either a `tailguard run --record` file
// (docs/records.md: request windows, holds and timed launches, per process) or an HdrHistogram interval log
// (IntervalLog's, or any other writer's: each tag's intervals added up). The input is recognised by its content.
//
// Any file may be given, so reading is bounded (REPORT_LIMITS): the file is read in chunks and a line longer than
// maxLine is skipped without being held whole; a series keeps its few values rather than a histogram until it has
// thousands (Histograms' compact mode: a recording of 20,000 processes takes tens of MiB, not gigabytes), and the
// series and their memory are capped. A line that cannot be used (not JSON, a
// field of the wrong type, too long, an interval that does not decode) is skipped and counted, the report is made of
// the rest, and Report.skipped says which lines and why (the CLI prints that on stderr).
import { open, type FileHandle } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";

import { bySeries, Histograms, IntervalLogSums, isIntervalLog, parseTag, type LoggedSeries } from "../telemetry/histograms.js";
import { RecordedRequests } from "../ingest/requests.js";
import type { HistogramMetricName, SeriesSnapshot } from "../model.js";

/** A series of the report, with the command of its process when the input names it. */
export interface ReportRow extends SeriesSnapshot {
  command?: string;
}

/** A kernel's device time in a recording (kernel_time lines), over all its processes. */
export interface KernelTotal {
  kernel: string;
  count: number;
  totalNs: number;
  meanNs: number;
  /** its share of all kernels' device time */
  share: number;
}
/** Kernels the report lists; distinct kernel names it tells apart (the rest are added up as "other"). */
const TOP_KERNELS = 10;
const KERNEL_NAMES_MAX = 10_000;

/** A line the report could not use. */
export interface SkippedLine {
  line: number;
  problem: string;
}

export interface Report {
  file: string;
  format: "recording" | "interval-log";
  /** ordered by metric, pid, priority, GPU */
  series: ReportRow[];
  /** interval-log histograms whose tag names no tailguard series (another tool's log), by tag */
  other: LoggedSeries[];
  /** durations beyond the histograms' range (over an hour) or below it, recorded at its edge */
  clamped: number;
  /** recordings with kernel timing on (TAILGUARD_KERNEL_TIMING): the kernels that took the most device time, most
   *  first (at most TOP_KERNELS; absent when the recording has no kernel times) */
  kernels?: KernelTotal[];
  /** lines skipped because they could not be used: how many, and the first SKIPPED_SHOWN of them */
  skipped: { lines: number; first: SkippedLine[] };
}

/** What a report reads at most. */
export interface ReportLimits {
  /** characters in a line (UTF-16 code units: bytes, for ASCII); longer lines are skipped unread. The longest line
   *  tailguard writes is an attach line, whose command line the shim truncates at 2 KiB */
  maxLine: number;
  /** series (metric, process, priority), processes, or interval-log tags */
  maxSeries: number;
  /** memory the series' values and histograms take (Histograms.bytes): a few hundred bytes for a series of a few
   *  values, 136 KiB for one of thousands; a recording needing more is refused rather than read until memory runs out */
  maxBytes: number;
}

export const REPORT_LIMITS: ReportLimits = { maxLine: 1 << 20, maxSeries: 100_000, maxBytes: 1 << 30 };
/** Skipped lines described in Report.skipped.first. */
const SKIPPED_SHOWN = 10;
/** A command kept for the table: the shim records at most 2 KiB of one. */
const MAX_COMMAND = 2048;
/** A GPU UUID longer than this is not one. */
const MAX_UUID = 256;

const EXPECTED =
  'a tailguard recording (JSON lines from `tailguard run --record`, first line {"kind":"recording",...}) ' +
  "or an HdrHistogram interval log";

/** Reads a recording or an interval log; throws an Error naming the file and what was expected otherwise, or when it
 *  is beyond `limits`. Lines it cannot use are skipped and counted (Report.skipped). */
export async function report(file: string, limits: ReportLimits = REPORT_LIMITS): Promise<Report> {
  let fh: FileHandle;
  try {
    fh = await open(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const first = await firstLine(fh, limits.maxLine);
    if (first?.startsWith("{")) {
      let head: Record<string, unknown> | null = null;
      try {
        head = JSON.parse(first);
      } catch {
        /* not JSON: reported below */
      }
      if (head?.kind === "recording") return await reportRecording(file, fh, limits);
    } else if (first !== null && isIntervalLog(first)) return await reportIntervalLog(file, fh, limits);
    throw new Error(`${file} is not ${EXPECTED}`);
  } finally {
    await fh.close();
  }
}

/** A line of the file: its number and text, or null for a line too long to be kept. */
interface Line {
  n: number;
  text: string | null;
}

/** The lines of a file, read in 64 KiB chunks from its start: a line longer than `max` is skipped as it is read. */
async function* lines(fh: FileHandle, max: number): AsyncGenerator<Line> {
  const decoder = new StringDecoder("utf8");
  const chunk = Buffer.allocUnsafe(1 << 16);
  let pending = ""; // the start of the current line
  let tooLong = false;
  let n = 0;
  let position = 0;
  for (;;) {
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, position);
    position += bytesRead;
    const text = bytesRead > 0 ? decoder.write(chunk.subarray(0, bytesRead)) : decoder.end();
    let from = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; from = nl + 1, nl = text.indexOf("\n", from)) {
      n++;
      if (tooLong || pending.length + nl - from > max) yield { n, text: null };
      else {
        const line = pending + text.slice(from, nl);
        yield { n, text: line.endsWith("\r") ? line.slice(0, -1) : line };
      }
      pending = "";
      tooLong = false;
    }
    if (!tooLong && pending.length + text.length - from > max) {
      tooLong = true;
      pending = "";
    } else if (!tooLong) pending += text.slice(from);
    if (bytesRead === 0) break;
  }
  if (tooLong || pending !== "") yield { n: n + 1, text: tooLong ? null : pending.replace(/\r$/, "") };
}

/** The first line that is not blank (null if none, or if it is too long to be a header). */
async function firstLine(fh: FileHandle, maxLine: number): Promise<string | null> {
  for await (const { text } of lines(fh, maxLine)) if (text === null || text.trim() !== "") return text;
  return null;
}

/** Counts skipped lines and keeps the first few. */
class Skipped {
  lines = 0;
  readonly first: SkippedLine[] = [];

  constructor(private readonly maxLine: number) {}

  add(line: number, problem: string): void {
    this.lines++;
    if (this.first.length < SKIPPED_SHOWN) this.first.push({ line, problem });
  }

  tooLong(line: number): void {
    this.add(line, `longer than ${this.maxLine.toLocaleString("en-US")} characters`);
  }

  get summary(): Report["skipped"] {
    return { lines: this.lines, first: this.first };
  }
}

/** A value in a message: JSON, shortened. */
function shown(v: unknown): string {
  const text = v === undefined ? "missing" : typeof v === "number" ? String(v) : JSON.stringify(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
/** A line's `t`: ns from the recording's origin (negative for a record taken before the recording began). */
const isTime = (v: unknown): v is number => Number.isSafeInteger(v);

/** The lines of a recording a report reads (docs/records.md). */
type Use = "attach" | "detach" | "request_latency" | "hold_time" | "launch_api_time" | "gpu_time" | "kernel_time" | null;

function useOf(o: Record<string, any>): Use {
  if (o.kind === "process") return o.op === "attach" || o.op === "detach" ? o.op : null;
  if (o.kind === "window") return o.op === "end" ? "request_latency" : null;
  if (o.kind === "hold") return "hold_time";
  if (o.kind === "launch") return "launch_api_time";
  if (o.kind === "gpu_time") return o.op === "window" ? "gpu_time" : null;
  if (o.kind === "kernel_time") return o.op === "kernel" ? "kernel_time" : null;
  return null;
}

/** What is wrong with the fields a report reads from a line, or null. */
function problemOf(o: Record<string, any>, use: Use): string | null {
  if (typeof o.kind !== "string") return `kind is ${shown(o.kind)}, not a string`;
  if (use === null) return null;
  if (!isCount(o.pid)) return `pid is ${shown(o.pid)}, not a process id`;
  if (use === "attach") {
    if (!Number.isSafeInteger(o.priority)) return `priority is ${shown(o.priority)}, not an integer`;
    if (o.cmd !== undefined && !(Array.isArray(o.cmd) && o.cmd.every((a: unknown) => typeof a === "string")))
      return `cmd is ${shown(o.cmd)}, not a list of strings`;
  } else if (use === "detach") {
    if (o.gpu != null && (typeof o.gpu !== "object" || Array.isArray(o.gpu))) return `gpu is ${shown(o.gpu)}, not an object`;
    const uuid = o.gpu?.uuid;
    if (uuid != null && typeof uuid !== "string") return `gpu.uuid is ${shown(uuid)}, not a string`;
    if (typeof uuid === "string" && uuid.length > MAX_UUID) return `gpu.uuid is ${uuid.length} characters long, not a GPU's UUID`;
  } else if (use === "gpu_time" || use === "kernel_time") {
    if (use === "gpu_time" && !isCount(o.window)) return `window is ${shown(o.window)}, not a request window's number`;
    if (use === "kernel_time" && o.kernel !== undefined && typeof o.kernel !== "string") return `kernel is ${shown(o.kernel)}, not a name`;
    if (!isTime(o.gpu_start) || !isTime(o.gpu_end) || o.gpu_end < o.gpu_start)
      return `gpu_start ${shown(o.gpu_start)} and gpu_end ${shown(o.gpu_end)} are not device times in nanoseconds, start first`;
  } else {
    if (o.dur !== undefined || use !== "launch_api_time") {
      // launches are timed on a sample (the others have no dur); every window end and hold has one
      if (typeof o.dur !== "number" || !Number.isFinite(o.dur) || o.dur < 0)
        return `dur is ${shown(o.dur)}, not a duration in nanoseconds`;
    }
    // where a window or hold is in time places holds in windows (a line without a `t` is taken as it is)
    if (use !== "launch_api_time" && o.t !== undefined && !isTime(o.t)) return `t is ${shown(o.t)}, not a time in nanoseconds`;
  }
  return null;
}

function tooMany(file: string, n: number, max: number, what: string): Error {
  return new Error(
    `${file}:${n}: more than ${max.toLocaleString("en-US")} ${what}: tailguard report keeps at most that many; report a ` +
      "part of the file (e.g. grep the lines of some pids)",
  );
}

/**
 * A recording's durations per series, in one pass. A series is named by its process's GPU, which only the process's
 * `detach` line (at its end) gives: durations are kept per metric, process and priority, and the GPU is put in the
 * key at the end. A process's priority and command are those of its latest `attach` line before the duration (after
 * an exec the new image attaches again).
 *
 * Request latency is requestOf's (ingest/requests.ts), as the agent's: a window whose first launch was held starts at
 * that hold. Windows are therefore finished a little after they are read (RecordedRequests), and at the latest when
 * their process attaches again or detaches, or at the end of the file.
 */
async function reportRecording(file: string, fh: FileHandle, limits: ReportLimits): Promise<Report> {
  const gpuOf = new Map<number, string>();
  const attached = new Map<number, { priority: number; command: string }>();
  const commands = new Map<string, string>();
  const skipped = new Skipped(limits.maxLine);
  const histograms = new Histograms({ compact: true });
  try {
    let n = 0;
    const record = (metric: HistogramMetricName, pid: number, ns: number) => {
      const proc = attached.get(pid);
      const key = { pid, priority: proc?.priority ?? 0, gpu: "unknown" };
      histograms.record(metric, key, ns);
      if (histograms.size > limits.maxSeries) throw tooMany(file, n, limits.maxSeries, "series (metric, process, priority)");
      if (proc) commands.set(`${pid};${key.priority}`, proc.command);
    };
    const requests = new RecordedRequests((pid, ns) => record("request_latency", pid, ns));
    const kernels = new Map<string, { count: number; totalNs: number }>();
    // where each window began (its end line's t), for the queue delay of its gpu_time line, which follows it
    const began = new Map<string, number>();
    for await (const line of lines(fh, limits.maxLine)) {
      n = line.n;
      if ((n & 0xffff) === 0 && histograms.bytes > limits.maxBytes)
        throw new Error(`${file}:${n}: its durations need more than ${limits.maxBytes / 2 ** 20} MiB of histograms ` +
          `(${histograms.size} series): tailguard report takes at most that; report a part of the file (e.g. grep the ` +
          "lines of some pids)");
      const text = line.text;
      if (text === null) {
        skipped.tooLong(n);
        continue;
      }
      // JSON.parse is most of the cost of a large recording, and most of its lines are launches without a duration:
      // only lines that may matter are parsed; a line cut short (no closing brace) is caught without it
      const trimmed = text.trim();
      if (trimmed === "") continue;
      if (!trimmed.startsWith("{") || !trimmed.endsWith("}")) {
        skipped.add(n, "not a JSON object");
        continue;
      }
      if (!text.includes('"dur"') && !text.includes('"process"') && !text.includes('"gpu_time"') && !text.includes('"kernel_time"')) continue;
      let o: unknown;
      try {
        o = JSON.parse(text);
      } catch (err) {
        skipped.add(n, `not JSON (${(err as Error).message})`);
        continue;
      }
      if (typeof o !== "object" || o === null || Array.isArray(o)) {
        skipped.add(n, "not a JSON object");
        continue;
      }
      const r = o as Record<string, any>;
      const use = useOf(r);
      const problem = problemOf(r, use);
      if (problem) {
        skipped.add(n, problem);
        continue;
      }
      if (use === "attach") {
        requests.finish(r.pid); // its windows so far are the previous image's, at its priority
        if (!attached.has(r.pid) && attached.size >= limits.maxSeries) throw tooMany(file, n, limits.maxSeries, "processes");
        const command = Array.isArray(r.cmd) ? r.cmd.join(" ") : "";
        attached.set(r.pid, { priority: r.priority, command: command.slice(0, MAX_COMMAND) });
      } else if (use === "detach") {
        if (typeof r.gpu?.uuid === "string" && r.gpu.uuid !== "" && !gpuOf.has(r.pid)) {
          if (gpuOf.size >= limits.maxSeries) throw tooMany(file, n, limits.maxSeries, "processes");
          gpuOf.set(r.pid, r.gpu.uuid);
        }
        requests.finish(r.pid);
      } else if (use === "request_latency") {
        if (isTime(r.t)) requests.end(r.pid, isCount(r.window) ? r.window : -1, r.t, r.dur);
        else record(use, r.pid, r.dur);
        if (isTime(r.t) && isCount(r.window)) {
          began.set(`${r.pid}/${r.window}`, r.t);
          if (began.size > 4096) began.delete(began.keys().next().value!);
        }
      } else if (use === "gpu_time") {
        // the device times of a window (docs/gpu-time.md): its GPU time, and its queue delay from its begin
        record("request_gpu_time", r.pid, r.gpu_end - r.gpu_start);
        const key = `${r.pid}/${r.window}`;
        const t = began.get(key);
        if (t !== undefined) {
          record("request_queue_delay", r.pid, Math.max(0, r.gpu_start - t));
          began.delete(key);
        }
      } else if (use === "kernel_time") {
        // one kernel's device time, measured by CUPTI (docs/gpu-time.md)
        const ns = r.gpu_end - r.gpu_start;
        record("kernel_gpu_time", r.pid, ns);
        let name = typeof r.kernel === "string" ? r.kernel : "unknown";
        if (!kernels.has(name) && kernels.size >= KERNEL_NAMES_MAX) name = "other";
        const k = kernels.get(name) ?? { count: 0, totalNs: 0 };
        k.count++;
        k.totalNs += ns;
        kernels.set(name, k);
      } else if (use === "hold_time") {
        record(use, r.pid, r.dur);
        if (isTime(r.t)) requests.hold(r.pid, r.t, r.dur);
      } else {
        if (use === "launch_api_time" && typeof r.dur === "number") record(use, r.pid, r.dur); // (an untimed launch has none)
        if (isCount(r.pid) && isTime(r.t)) {
          if (r.kind === "window" && r.op === "begin" && isCount(r.window)) requests.begin(r.pid, r.window, r.t);
          else requests.advance(r.pid, r.t);
        }
      }
    }
    requests.finishAll();
    const series = histograms
      .snapshot()
      .map((s): ReportRow => {
        const row: ReportRow = { ...s, key: { ...s.key, gpu: gpuOf.get(s.key.pid) ?? "unknown" } };
        const command = commands.get(`${s.key.pid};${s.key.priority}`);
        return command === undefined ? row : { ...row, command };
      })
      .sort(bySeries);
    const report: Report = { file, format: "recording", series, other: [], clamped: histograms.clamped, skipped: skipped.summary };
    if (kernels.size) {
      const all = [...kernels.values()].reduce((sum, k) => sum + k.totalNs, 0);
      report.kernels = [...kernels.entries()]
        .map(([kernel, k]) => ({ kernel, count: k.count, totalNs: k.totalNs, meanNs: k.totalNs / k.count, share: all ? k.totalNs / all : 0 }))
        .sort((a, b) => b.totalNs - a.totalNs)
        .slice(0, TOP_KERNELS);
    }
    return report;
  } finally {
    histograms.close();
  }
}

async function reportIntervalLog(file: string, fh: FileHandle, limits: ReportLimits): Promise<Report> {
  const sums = new IntervalLogSums();
  const skipped = new Skipped(limits.maxLine);
  for await (const { n, text } of lines(fh, limits.maxLine)) {
    if (text === null) {
      skipped.tooLong(n);
      continue;
    }
    try {
      sums.add(text);
    } catch (err) {
      skipped.add(n, (err as Error).message);
    }
    if (sums.tags > limits.maxSeries) throw tooMany(file, n, limits.maxSeries, "tags");
  }
  const series: ReportRow[] = [];
  const other: LoggedSeries[] = [];
  for (const logged of sums.result()) {
    const named = parseTag(logged.tag);
    if (!named) {
      other.push(logged);
      continue;
    }
    const { count, min, max, mean, percentiles } = logged;
    series.push({ ...named, count, min, max, mean, percentiles });
  }
  series.sort(bySeries);
  return { file, format: "interval-log", series, other, clamped: 0, skipped: skipped.summary };
}

/** One line for stderr about the lines a report skipped, or null when it read them all. */
export function formatSkipped(r: Report): string | null {
  const { lines, first } = r.skipped;
  if (lines === 0) return null;
  const shownNow = first.slice(0, 3).map((s) => `line ${s.line}: ${s.problem}`);
  const more = lines > shownNow.length ? `; ${lines - shownNow.length} more${lines > first.length ? "" : " (--json lists them)"}` : "";
  return `tailguard report: ${r.file}: skipped ${lines} line${lines === 1 ? "" : "s"} that could not be read, not in the ` +
    `report: ${shownNow.join("; ")}${more}`;
}

/** Nanoseconds for people, to 3 significant digits: 850ns, 12.3µs, 1.41ms, 2.50s. */
export function formatNs(ns: number): string {
  // a unit's range ends where rounding would print 1000 of it
  if (ns < 999.5) return `${Math.round(ns)}ns`;
  const [v, unit] = ns < 999_500 ? [ns / 1e3, "µs"] : ns < 999_500_000 ? [ns / 1e6, "ms"] : [ns / 1e9, "s"];
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}${unit}`;
}

/** The table's percentile columns: heading, and label in PERCENTILES. */
const COLUMNS: [string, string][] = [
  ["P50", "p50"],
  ["P90", "p90"],
  ["P99", "p99"],
  ["P99.9", "p999"],
  ["P99.99", "p9999"],
];

/** The report as a table: one row per metric and series. */
export function formatReport(r: Report): string[] {
  const what = r.format === "recording" ? "recording" : "HdrHistogram interval log";
  if (r.series.length === 0 && r.other.length === 0) return [`${r.file} (${what}): no durations recorded`];
  const labels = COLUMNS.map(([, label]) => label);
  const header = ["METRIC", "PID", "PRIO", "GPU", "COUNT", ...COLUMNS.map(([h]) => h), "MAX", "COMMAND"];
  const rows: string[][] = [
    ...r.series.map((s) => [
      s.metric,
      String(s.key.pid),
      String(s.key.priority),
      // the UUID's first group tells a machine's GPUs apart; --json has it whole
      s.key.gpu.replace(/^(GPU-[0-9a-f]{8})-.*$/i, "$1"),
      String(s.count),
      ...labels.map((label) => formatNs(s.percentiles[label])),
      formatNs(s.max),
      s.command ?? "",
    ]),
    ...r.other.map((o) => [
      o.tag,
      "-",
      "-",
      "-",
      String(o.count),
      ...labels.map((label) => formatNs(o.percentiles[label])),
      formatNs(o.max),
      "",
    ]),
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  const out = [`${r.file} (${what})`, "", line(header), ...rows.map(line)];
  if (r.kernels?.length) {
    // the kernels that took the most device time (kernel timing: docs/gpu-time.md), names as CUPTI gives them
    const kHeader = ["KERNEL", "COUNT", "DEVICE TIME", "SHARE", "MEAN"];
    const kRows = r.kernels.map((k) => [k.kernel.length > 80 ? `${k.kernel.slice(0, 77)}...` : k.kernel, String(k.count),
      formatNs(k.totalNs), `${(k.share * 100).toFixed(1)}%`, formatNs(k.meanNs)]);
    const kw = kHeader.map((h, i) => Math.max(h.length, ...kRows.map((row) => row[i].length)));
    const kLine = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(kw[i]))).join("  ").trimEnd();
    out.push("", `top kernels by device time (kernel_time lines, all processes):`, kLine(kHeader), ...kRows.map(kLine));
  }
  if (r.clamped > 0)
    out.push("", `${r.clamped} durations were outside 0 ns to 1 hour and were counted at the nearest end`);
  return out;
}
