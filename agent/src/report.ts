// `tailguard report`: percentile tables of what a run recorded, from either a `tailguard run --record` file
// (docs/records.md: request windows, holds and timed launches, per process) or an HdrHistogram interval log
// (IntervalLog's, or any other writer's: each tag's intervals added up). The input is recognised by its content.
import { open } from "node:fs/promises";

import { bySeries, Histograms, isIntervalLog, parseTag, readIntervalLog, type LoggedSeries } from "./histograms.js";
import type { HistogramMetricName, SeriesSnapshot } from "./model.js";

/** A series of the report, with the command of its process when the input names it. */
export interface ReportRow extends SeriesSnapshot {
  command?: string;
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
}

const EXPECTED =
  'a tailguard recording (JSON lines from `tailguard run --record`, first line {"kind":"recording",...}) ' +
  "or an HdrHistogram interval log";

/** Reads a recording or an interval log; throws an Error naming the file and what was expected otherwise. */
export async function report(file: string): Promise<Report> {
  const first = await firstLine(file);
  if (first.startsWith("{")) {
    let head: Record<string, unknown> | null = null;
    try {
      head = JSON.parse(first);
    } catch {
      /* not JSON: reported below */
    }
    if (head?.kind === "recording") return reportRecording(file);
  } else if (isIntervalLog(first)) return reportIntervalLog(file);
  throw new Error(`${file} is not ${EXPECTED}`);
}

async function firstLine(file: string): Promise<string> {
  let fh;
  try {
    fh = await open(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    for await (const line of fh.readLines()) if (line.trim() !== "") return line;
    return "";
  } finally {
    await fh.close();
  }
}

/** Each line of a file with its number; `want` picks the lines worth parsing (JSON.parse is most of the cost of a
 *  large recording, and most of its lines are launches without a duration). */
async function* jsonLines(file: string, want: (line: string) => boolean): AsyncGenerator<Record<string, any>> {
  const fh = await open(file);
  try {
    let n = 0;
    for await (const line of fh.readLines()) {
      n++;
      if (!want(line)) continue;
      try {
        yield JSON.parse(line);
      } catch (err) {
        throw new Error(`${file}:${n}: not a JSON line of a recording (${(err as Error).message})`);
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * A recording's durations per series. The series key needs the process's GPU, which only its `detach` line (at the
 * end) gives, so the file is read twice: once for the process lines, once for the durations. A process's priority
 * and command are those of its latest `attach` line (after an exec the new image attaches again).
 */
async function reportRecording(file: string): Promise<Report> {
  const gpuOf = new Map<number, string>();
  for await (const o of jsonLines(file, (l) => l.includes('"process"')))
    if (o.kind === "process" && o.op === "detach" && o.gpu?.uuid && !gpuOf.has(o.pid)) gpuOf.set(o.pid, o.gpu.uuid);

  const histograms = new Histograms();
  try {
    const attached = new Map<number, { priority: number; command: string }>();
    const commands = new Map<string, string>();
    const record = (metric: HistogramMetricName, pid: number, ns: number) => {
      const proc = attached.get(pid);
      const key = { pid, priority: proc?.priority ?? 0, gpu: gpuOf.get(pid) ?? "unknown" };
      histograms.record(metric, key, ns);
      if (proc) commands.set(`${pid};${key.priority};${key.gpu}`, proc.command);
    };
    for await (const o of jsonLines(file, (l) => l.includes('"dur"') || l.includes('"attach"'))) {
      if (o.kind === "process" && o.op === "attach")
        attached.set(o.pid, { priority: o.priority, command: Array.isArray(o.cmd) ? o.cmd.join(" ") : "" });
      else if (typeof o.dur !== "number") continue;
      else if (o.kind === "window" && o.op === "end") record("request_latency", o.pid, o.dur);
      else if (o.kind === "hold") record("hold_time", o.pid, o.dur);
      else if (o.kind === "launch") record("launch_api_time", o.pid, o.dur);
    }
    const series = histograms.snapshot().map((s): ReportRow => {
      const command = commands.get(`${s.key.pid};${s.key.priority};${s.key.gpu}`);
      return command === undefined ? s : { ...s, command };
    });
    return { file, format: "recording", series, other: [], clamped: histograms.clamped };
  } finally {
    histograms.close();
  }
}

function reportIntervalLog(file: string): Report {
  const series: ReportRow[] = [];
  const other: LoggedSeries[] = [];
  for (const logged of readIntervalLog(file)) {
    const named = parseTag(logged.tag);
    if (!named) {
      other.push(logged);
      continue;
    }
    const { count, min, max, mean, percentiles } = logged;
    series.push({ ...named, count, min, max, mean, percentiles });
  }
  series.sort(bySeries);
  return { file, format: "interval-log", series, other, clamped: 0 };
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
  if (r.clamped > 0)
    out.push("", `${r.clamped} durations were outside 0 ns to 1 hour and were counted at the nearest end`);
  return out;
}
