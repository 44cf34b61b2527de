// What `tailguard bench` writes: the JSON result (scenario, machine, every run, the summary per mode with medians,
// spreads and ratios to the standalone references), a Markdown table, and the plots (SVG, and PNG rendered by resvg).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { native, packageRoot } from "../ingest/native.js";
import { POLL_MS, type ModeName, type RunRecord } from "./orchestrate.js";
import { cdfChart, COLORS, renderPng, timelineChart, toSvg, type Scene } from "./plot.js";
import { LATENCY_STATS, spread, type LatencyStat, type Spread } from "./stats.js";

export interface ModeSummary {
  runs: number;
  /** high-priority latency (ms) per statistic: median over repetitions, range, ratio to high-alone */
  latency: Partial<Record<LatencyStat, Spread>> | null;
  /** device time per request (ms), from events around each request */
  gpu: { p50: Spread; p99: Spread } | null;
  /** low-priority iterations per second in the window, ratio to low-alone */
  lowThroughput: Spread | null;
  /** the same only while no high-priority request was under way, ratio to low-alone (modes with both workers) */
  lowIdleThroughput: Spread | null;
  /** the low worker's CPU ms per iteration (all threads) and cores busy, ratio to low-alone, where /proc told */
  lowCpu: { msPerIter: Spread; cores: Spread } | null;
  holds: { count: Spread; totalMs: Spread } | null;
  samplesPerRun: number | null;
  /** the GPU's median SM clock (MHz) and power (W) per run, where nvidia-smi sampled them */
  gpuState: { smMhz: Spread; powerW: Spread } | null;
}

/** Median and spread of every figure per mode, each as a ratio to the standalone run of the same invocation. */
export function summarizeModes(modes: ModeName[], runs: RunRecord[]): Record<string, ModeSummary> {
  const of = (m: ModeName) => runs.filter((r) => r.mode === m);
  const highRef = of("high-alone"), lowRef = of("low-alone");
  const cpuRef = lowRef.length && lowRef.every((r) => r.low!.cpu) ? lowRef.map((r) => r.low!.cpu!) : undefined;
  const out: Record<string, ModeSummary> = {};
  for (const m of modes) {
    const rs = of(m);
    const withHigh = rs.filter((r) => r.high);
    const withLow = rs.filter((r) => r.low);
    let latency: ModeSummary["latency"] = null;
    if (withHigh.length) {
      latency = {};
      for (const s of LATENCY_STATS) {
        const vals = withHigh.map((r) => r.high!.latency[s]);
        if (vals.some((v) => v === null)) continue; // P99.9 without enough samples
        const ref = highRef.length ? highRef.map((r) => r.high!.latency[s] as number) : undefined;
        latency[s] = spread(vals as number[], ref);
      }
    }
    const gpuRuns = withHigh.filter((r) => r.high!.gpu);
    out[m] = {
      runs: rs.length,
      latency,
      gpu: gpuRuns.length === withHigh.length && gpuRuns.length
        ? {
            p50: spread(gpuRuns.map((r) => r.high!.gpu!.p50), highRef.every((r) => r.high!.gpu) && highRef.length ? highRef.map((r) => r.high!.gpu!.p50) : undefined),
            p99: spread(gpuRuns.map((r) => r.high!.gpu!.p99), highRef.every((r) => r.high!.gpu) && highRef.length ? highRef.map((r) => r.high!.gpu!.p99) : undefined),
          }
        : null,
      lowThroughput: withLow.length
        ? spread(withLow.map((r) => r.low!.iterPerS), lowRef.length ? lowRef.map((r) => r.low!.iterPerS) : undefined)
        : null,
      lowIdleThroughput: withLow.length && withLow.every((r) => typeof r.low!.idleIterPerS === "number")
        ? spread(withLow.map((r) => r.low!.idleIterPerS as number), lowRef.length ? lowRef.map((r) => r.low!.iterPerS) : undefined)
        : null,
      lowCpu: withLow.length && withLow.every((r) => r.low!.cpu)
        ? {
            msPerIter: spread(withLow.map((r) => r.low!.cpu!.msPerIter), cpuRef?.map((c) => c.msPerIter)),
            cores: spread(withLow.map((r) => r.low!.cpu!.cores), cpuRef?.map((c) => c.cores)),
          }
        : null,
      holds: rs.every((r) => r.holds) && rs.length
        ? { count: spread(rs.map((r) => r.holds!.count)), totalMs: spread(rs.map((r) => r.holds!.totalMs)) }
        : null,
      samplesPerRun: withHigh.length ? withHigh[0].high!.latency.n : null,
      gpuState: rs.length && rs.every((r) => r.gpuState)
        ? { smMhz: spread(rs.map((r) => r.gpuState!.smMhzP50)), powerW: spread(rs.map((r) => r.gpuState!.powerWP50)) }
        : null,
    };
  }
  return out;
}

const tryRun = (cmd: string, args: string[]): string | null => {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 10_000 }).trim();
  } catch {
    return null;
  }
};

/** The machine, the software and the source the result came from. */
export function provenance(argv: string[], torch: Record<string, unknown> | null) {
  const cpus = os.cpus();
  const gpus = tryRun("nvidia-smi", ["--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]);
  const commit = tryRun("git", ["-C", packageRoot, "rev-parse", "HEAD"]) ?? process.env.TG_COMMIT ?? "unknown";
  const dirty = commit !== "unknown" ? tryRun("git", ["-C", packageRoot, "status", "--porcelain", "--untracked-files=no"]) : null;
  return {
    command: ["tailguard", ...argv].join(" "),
    commit,
    worktreeModified: dirty === null ? null : dirty.length > 0,
    tailguard: native().version,
    machine: {
      hostname: os.hostname(),
      cpu: cpus[0]?.model ?? "unknown",
      cpus: os.availableParallelism(),
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: `${os.type()} ${os.release()}`,
      clocksource: tryRun("cat", ["/sys/devices/system/clocksource/clocksource0/current_clocksource"]),
      node: process.version,
      gpus: gpus ? gpus.split("\n").map((l) => {
        const [name, driver, memory] = l.split(",").map((x) => x.trim());
        return { name, driver, memory };
      }) : null,
      torch,
    },
  };
}

const fmtMs = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(3));
const fmtRatio = (r: number | null) => (r === null ? "" : ` (×${r.toFixed(2)})`);

/** The Markdown table: one row per mode, each figure the median over repetitions with its ratio to standalone. */
export function markdownTable(result: { modes: ModeName[]; summary: Record<string, ModeSummary>; repetitions: number; runs?: RunRecord[] }): string {
  const stats = LATENCY_STATS.filter((s) => result.modes.some((m) => result.summary[m].latency?.[s]));
  const names: Record<LatencyStat, string> = { p50: "P50", p90: "P90", p99: "P99", p999: "P99.9", max: "max" };
  const idle = result.modes.some((m) => result.summary[m].lowIdleThroughput);
  const cpu = result.modes.some((m) => result.summary[m].lowCpu);
  const head = ["mode", ...stats.map((s) => `${names[s]} ms`), "GPU P50 ms", "low it/s", ...(idle ? ["low it/s between requests"] : []),
    ...(cpu ? ["low CPU ms/it", "low CPU cores"] : []), "holds"];
  const rows = result.modes.map((m) => {
    const s = result.summary[m];
    return [
      m,
      ...stats.map((st) => (s.latency?.[st] ? `${fmtMs(s.latency[st]!.median)}${fmtRatio(s.latency[st]!.ratio)}` : "–")),
      s.gpu ? `${fmtMs(s.gpu.p50.median)}${fmtRatio(s.gpu.p50.ratio)}` : "–",
      s.lowThroughput ? `${s.lowThroughput.median.toFixed(1)}${fmtRatio(s.lowThroughput.ratio)}` : "–",
      ...(idle ? [s.lowIdleThroughput ? `${s.lowIdleThroughput.median.toFixed(1)}${fmtRatio(s.lowIdleThroughput.ratio)}` : "–"] : []),
      ...(cpu ? s.lowCpu ? [`${fmtMs(s.lowCpu.msPerIter.median)}${fmtRatio(s.lowCpu.msPerIter.ratio)}`, s.lowCpu.cores.median.toFixed(2)] : ["–", "–"] : []),
      s.holds ? `${s.holds.count.median} (${fmtMs(s.holds.totalMs.median)} ms)` : "–",
    ];
  });
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
    "",
    `Median over ${result.repetitions} repetitions; (×r): ratio to the standalone run of the same invocation (high-alone ` +
      `for latency, low-alone for throughput). Latency from scheduled arrival; spreads in result.json.` +
      (idle ? ` Between requests: the low worker's progress while no high-priority request was under way (from its ` +
        `scheduled arrival to its completion), over that time.` : "") +
      (cpu ? ` Low CPU: the low worker's CPU time (every thread, user and system) per iteration and on average, from ` +
        `the schedule's start until it was stopped.` : ""),
    ...gpuStateLine(result),
    ...mechanismChangeLines(result.runs ?? []),
    "",
  ].join("\n");
}

/** Workers whose scheduling mechanisms changed while the schedule ran (a lever that lapsed or came late): a run that
 *  did not measure what its mode says. Lists the first changes of each. */
export function mechanismChangeLines(runs: RunRecord[]): string[] {
  const lines: string[] = [];
  for (const r of runs)
    for (const a of r.attachment ?? []) {
      const changes = a.changes ?? [];
      const during = changes.map((c, i) => ({ ...c, was: changes[i - 1]?.mechanisms }))
        .filter((c) => c.was && c.atMs > 0 && c.atMs <= r.windowS * 1000);
      if (!during.length) continue;
      const list = (m: string[]) => m.join(", ") || "none";
      const shown = during.slice(0, 5).map((c) => `at ${(c.atMs / 1000).toFixed(2)} s: ${list(c.mechanisms)} (was ${list(c.was!)})`);
      lines.push(`- ${r.mode}, repetition ${r.repetition}, ${a.role} worker: ${shown.join("; ")}` +
        (during.length > shown.length ? `; and ${during.length - shown.length} more` : ""));
    }
  return lines.length ? ["", `Scheduling mechanisms changed while the schedule ran (seen every ${POLL_MS} ms in the control block):`, ...lines] : [];
}

/** The GPU's SM clock and power per mode, where they were sampled (a real GPU with nvidia-smi). */
function gpuStateLine(result: { modes: ModeName[]; summary: Record<string, ModeSummary> }): string[] {
  const sampled = result.modes.filter((m) => result.summary[m].gpuState);
  if (!sampled.length) return [];
  const each = sampled.map((m) => {
    const g = result.summary[m].gpuState!;
    return `${m} ${Math.round(g.smMhz.median)} MHz ${Math.round(g.powerW.median)} W`;
  });
  return ["", `GPU during the runs (nvidia-smi, median of each run's median): ${each.join("; ")}.`];
}

export interface PlotFiles {
  cdfSvg: string;
  cdfPng?: string;
  timelineSvg: string;
  timelinePng?: string;
}

/** Writes the scene's SVG and, where resvg renders it, its PNG; returns the PNG's path, or why there is none. */
function writeScene(scene: Scene, base: string, render: typeof renderPng): [string, string | { error: string }] {
  const svg = toSvg(scene);
  writeFileSync(`${base}.svg`, svg);
  const png = render(svg);
  if ("error" in png) return [`${base}.svg`, png];
  writeFileSync(`${base}.png`, png.png);
  return [`${base}.svg`, `${base}.png`];
}

/** The CDFs (every repetition's samples pooled per mode) and the timeline of the first repetition, as SVG and PNG;
 *  where the PNGs cannot be rendered, the SVGs alone and one line on stderr saying why. */
export function writePlots(dir: string, title: string, modes: ModeName[], runs: RunRecord[], durationS: number,
  render = renderPng): PlotFiles {
  const highModes = modes.filter((m) => runs.some((r) => r.mode === m && r.high));
  const cdf = cdfChart(`${title}: high-priority latency CDF`, highModes.map((m) => ({
    name: m, color: COLORS[m], values: runs.filter((r) => r.mode === m).flatMap((r) => r.high!.latencyMs),
  })));
  const [cdfSvg, cdfPng] = writeScene(cdf, path.join(dir, "latency-cdf"), render);
  const first = (m: ModeName) => runs.find((r) => r.mode === m && r.repetition === 1 && r.high);
  const shown = highModes.filter((m) => m !== "high-alone" || highModes.length === 1).filter((m) => first(m));
  const holds = first("tailguard")?.holds?.list ?? [];
  const timeline = timelineChart(`${title}: high-priority latency over time (repetition 1)`,
    shown.map((m) => ({ name: m, color: COLORS[m], points: first(m)!.high!.arrivalMs.map((t, i) => [t, first(m)!.high!.latencyMs[i]] as [number, number]) })),
    holds, durationS);
  const [timelineSvg, timelinePng] = writeScene(timeline, path.join(dir, "latency-timeline"), render);
  const failed = [cdfPng, timelinePng].find((p) => typeof p !== "string");
  if (failed) process.stderr.write(`tailguard bench: PNG plots not written, the SVGs only: ${(failed as { error: string }).error}\n`);
  return {
    cdfSvg, timelineSvg,
    ...(typeof cdfPng === "string" ? { cdfPng } : {}),
    ...(typeof timelinePng === "string" ? { timelinePng } : {}),
  };
}
