// `tailguard agent [options]`: starts the agent (agent.ts) and keeps it running until SIGINT/SIGTERM. With --demo it
// also runs a high-priority request stream and a low-priority batch job on the simulated GPU, and prints what the
// agent sees every two seconds: this is what `npm start` runs on a machine with no GPU.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

import { Agent, type AgentOptions } from "../agent.js";
import { FORGET_AFTER_MS } from "../model.js";
import { resnet18Mix, resnet50Mix } from "../sim-models.js";
import { DEFAULT_HTTP_LIMITS } from "../serve/http-limits.js";
import type { ServerEndpoint } from "../serve/server.js";
import { OtelEnvError, otelConfig, type OtelConfig } from "../telemetry/otel-env.js";
import { DEFAULT_BATCH_SAMPLE, DEFAULT_SPANS_FILE_LIMITS, SPAN_MODES, type SpanPolicy, type SpansFileLimits } from "../telemetry/spans.js";
import { packageRoot, ringDir, shimPath, simLibDir } from "../ingest/native.js";
import { parseCommand, UsageError } from "./usage.js";
import { formatColumns, ms, type Column } from "./table.js";

export const AGENT_USAGE = `  agent [--port N] [--host ADDR] [--max-connections N] [--no-prometheus] [--pid-label] [--otlp]
        [--spans-file FILE] [--spans-file-max-mb N] [--spans-file-keep K] [--interval-log FILE] [--interval S]
        [--slo-ms MS] [--sample-rate R] [--spans policy|all] [--batch-sample R] [--dir DIR]
        [--dir-access all|group:GROUP] [--demo]
                 the daemon: request windows, HDR histograms, spans and metrics of every attached process;
                 Prometheus on http://127.0.0.1:9464/metrics and the live view on http://127.0.0.1:9464/; OTLP
                 as the OTEL_* variables say (docs/agent.md), spans also with --otlp; --demo also runs a
                 high/low-priority pair on the simulated GPU (what \`npm start\` runs); --host is an IP address or
                 localhost (0.0.0.0: every interface), --max-connections bounds its HTTP connections (default
                 256); the spans file is rotated at N MiB (default 100) to FILE.1 … FILE.K (default 5 kept);
                 --pid-label labels every per-process metric with its pid (off: a restart would start new series);
                 --spans policy (the default) makes spans of the windows of processes at or above normal
                 priority (those over --slo-ms with status ERROR), of windows held or causing a hold, and of an
                 --batch-sample share (default 0.01) of the rest; --spans all of every window (docs/agent.md);
                 --dir-access sets up DIR for every user's processes (all: mode 1777) or a group's (mode 3770), as
                 root (docs/security.md)`;

/** V8 heap settings for the long-running agent (npm start, the container image, bench:agent): a small young generation
 * and an old generation capped well above what it keeps alive (~15 MB): measured at 1 M records/s with span export,
 * the agent's peak RSS is ~138 MiB with them and ~175 MiB without (docs/agent.md, bench/results/README.md). */
export const AGENT_NODE_OPTIONS = "--max-semi-space-size=4 --max-old-space-size=96";

function number(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const v = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(v) || v < min || v > max) throw new UsageError(`tailguard agent: --${name} must be a number from ${min} to ${max}, not "${text}"`);
  return v;
}

function integer(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  const v = number(name, text, fallback, min, max);
  if (!Number.isInteger(v)) throw new UsageError(`tailguard agent: --${name} must be a whole number from ${min} to ${max}, not "${text}"`);
  return v;
}

/** The address to listen on: an IP address or localhost. Node would take "" (and a name it cannot resolve the way one
 *  expects) as every interface, exposing process names and command lines to the network by a typo. */
function listenHost(text: string | undefined): string {
  if (text === undefined) return "127.0.0.1";
  if (text === "localhost" || isIP(text) !== 0) return text;
  throw new UsageError(
    `tailguard agent: --host must be an IP address or localhost, not ${JSON.stringify(text)}` +
      (text.trim() === "" ? " (empty)" : " (host names are not resolved)") +
      ": pass the address of the interface to listen on, e.g. 127.0.0.1 (the default) or ::1; to listen on every " +
      "interface say so: --host 0.0.0.0 (IPv4) or --host :: (IPv4 and IPv6)",
  );
}

/** What `tailguard agent` was asked for: the agent's options, the demo, and how large the spans file may grow. */
export type AgentCommandOptions = AgentOptions & { demo: boolean };

/** --spans-file-max-mb and --spans-file-keep, which only mean something with --spans-file. */
function spansFileLimits(values: { "spans-file"?: string; "spans-file-max-mb"?: string; "spans-file-keep"?: string }): SpansFileLimits {
  for (const name of ["spans-file-max-mb", "spans-file-keep"] as const)
    if (values[name] !== undefined && values["spans-file"] === undefined)
      throw new UsageError(`tailguard agent: --${name} limits the spans file, and no --spans-file FILE is given`);
  const mb = number("spans-file-max-mb", values["spans-file-max-mb"], DEFAULT_SPANS_FILE_LIMITS.maxBytes / 2 ** 20, 1, 2 ** 20);
  return {
    maxBytes: Math.round(mb * 2 ** 20),
    keep: integer("spans-file-keep", values["spans-file-keep"], DEFAULT_SPANS_FILE_LIMITS.keep, 0, 1000),
  };
}

export function agentOptions(args: string[], env: NodeJS.ProcessEnv = process.env): AgentCommandOptions {
  const { values } = parseCommand("agent", {
    args,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "no-prometheus": { type: "boolean" },
      "pid-label": { type: "boolean" },
      otlp: { type: "boolean" },
      "spans-file": { type: "string" },
      "spans-file-max-mb": { type: "string" },
      "spans-file-keep": { type: "string" },
      "max-connections": { type: "string" },
      "interval-log": { type: "string" },
      interval: { type: "string" },
      "slo-ms": { type: "string" },
      "sample-rate": { type: "string" },
      spans: { type: "string" },
      "batch-sample": { type: "string" },
      dir: { type: "string" },
      "dir-access": { type: "string" },
      demo: { type: "boolean" },
    },
  });
  const dir = values.dir ?? ringDir(env);
  if (!path.isAbsolute(dir)) throw new UsageError(`tailguard agent: --dir must be an absolute path, not "${dir}"`);
  const prometheus: ServerEndpoint & { host: string } = {
    host: listenHost(values.host),
    port: integer("port", values.port, 9464, 0, 65535),
    maxConnections: integer("max-connections", values["max-connections"], DEFAULT_HTTP_LIMITS.maxConnections, 1, 65536),
  };
  const otel = otelOptions(env, Boolean(values.otlp), values["no-prometheus"] ? null : prometheus.port);
  return {
    dir,
    dirAccess: dirAccess(values["dir-access"]),
    // its limits reach the agent's server with it (serve/server.ts)
    prometheus: values["no-prometheus"] ? null : prometheus,
    otel,
    spansFile: values["spans-file"] ?? null,
    spansFileLimits: spansFileLimits(values),
    intervalLog: values["interval-log"]
      ? { path: values["interval-log"], seconds: number("interval", values.interval, 10, 0.1, 3600) }
      : null,
    sloMs: values["slo-ms"] === undefined ? null : number("slo-ms", values["slo-ms"], 0, 0, 3_600_000),
    sampleRate: number("sample-rate", values["sample-rate"], 0.01, 0, 1),
    ...spanPolicy(values),
    forgetAfterMs: FORGET_AFTER_MS,
    pidLabel: Boolean(values["pid-label"]),
    demo: Boolean(values.demo),
  };
}

/** --spans and --batch-sample: which request windows become spans. A batch share only means something under the
 *  policy: with --spans all every window is a span already. */
function spanPolicy(values: { spans?: string; "batch-sample"?: string }): { spanPolicy: SpanPolicy["mode"]; batchSample: number } {
  const mode = values.spans ?? "policy";
  if (!(SPAN_MODES as readonly string[]).includes(mode))
    throw new UsageError(`tailguard agent: --spans must be ${SPAN_MODES.join(" or ")}, not ${JSON.stringify(mode)}: policy keeps ` +
      "request, over-SLO, held and sampled batch windows; all keeps every window");
  if (mode === "all" && values["batch-sample"] !== undefined)
    throw new UsageError("tailguard agent: --batch-sample samples batch windows under --spans policy, and --spans all keeps " +
      "every window: give one or the other");
  return {
    spanPolicy: mode as SpanPolicy["mode"],
    batchSample: number("batch-sample", values["batch-sample"], DEFAULT_BATCH_SAMPLE, 0, 1),
  };
}

/** The OTEL_* configuration (telemetry/otel-env.ts); a value the agent cannot honour is a usage error. */
function otelOptions(env: NodeJS.ProcessEnv, otlp: boolean, port: number | null): OtelConfig {
  try {
    return otelConfig(env, { otlp, port });
  } catch (err) {
    if (err instanceof OtelEnvError) throw new UsageError(`tailguard agent: ${err.message}`);
    throw err;
  }
}

/** --dir-access: who may attach through DIR, which the agent (as root) sets up at start. A group by number, or by a name
 *  this machine's /etc/group knows (in a container, the container's: use the number there). */
function dirAccess(text: string | undefined): AgentOptions["dirAccess"] {
  if (text === undefined) return null;
  if (text === "all") return { gid: null };
  const m = /^group:(.+)$/.exec(text);
  if (m) {
    if (/^\d+$/.test(m[1])) return { gid: Number(m[1]) };
    let groups = "";
    try {
      groups = readFileSync("/etc/group", "utf8");
    } catch {
      /* no names to look up */
    }
    const line = groups.split("\n").find((l) => l.split(":")[0] === m[1]);
    if (line) return { gid: Number(line.split(":")[2]) };
    throw new UsageError(`tailguard agent: --dir-access group "${m[1]}" is not in /etc/group: give its number (group:GID)`);
  }
  throw new UsageError(`tailguard agent: --dir-access must be "all" or "group:GROUP", not "${text}"`);
}

/** The demo's workloads: tg-workload processes on one simulated GPU, reporting to the agent's ring directory. The
 *  simulated GPU's files are in a folder of their own under the temporary directory, removed when the demo stops or,
 *  failing that, when the agent exits. */
function startDemo(dir: string): { stop(): Promise<void> } {
  const work = mkdtempSync(path.join(tmpdir(), "tailguard-demo-"));
  const remove = () => rmSync(work, { recursive: true, force: true });
  process.once("exit", remove);
  const workload = path.join(packageRoot, "native/build/tg-workload");
  const env = {
    ...process.env,
    LD_PRELOAD: shimPath(),
    LD_LIBRARY_PATH: simLibDir,
    TAILGUARD_DIR: dir,
    TAILGUARD_SIM_DEVICE: path.join(work, "gpu"),
  };
  const proc = (priority: string, name: string, args: string[]) =>
    spawn(workload, args, { env: { ...env, TAILGUARD_PRIORITY: priority, OTEL_SERVICE_NAME: name }, stdio: "ignore" });
  // the simulated models of `tailguard bench --sim` (docs/bench.md), for an hour or until the agent stops
  const workers = [
    proc("high", "demo-inference", ["requests", "--rate", "20", "--count", "72000", "--mix", resnet18Mix(1), "--graph", "1",
      "--name", "resnet18_b1"]),
    proc("low", "demo-batch", ["continuous", "--seconds", "3600", "--mix", resnet50Mix(8), "--name", "resnet50_b8"]),
  ];
  return {
    async stop() {
      // the workers first: their simulated GPU is in `work`
      await Promise.all(workers.map((c) => stopWorker(c)));
      remove();
      process.removeListener("exit", remove);
    },
  };
}

/** SIGTERM, and its exit (SIGKILL after 5 s). */
async function stopWorker(c: ChildProcess): Promise<void> {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()));
  c.kill("SIGTERM");
  const timer = setTimeout(() => c.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** The columns of the --demo report. */
const DEMO_COLUMNS: Column[] = [
  { title: "PID", width: 8, align: "left" },
  { title: "PRIO", width: 6, align: "left" },
  { title: "SERVICE", width: 18, align: "left" },
  { title: "WINDOWS", width: 8, align: "right" },
  { title: "P50 ms", width: 9, align: "right" },
  { title: "P99 ms", width: 9, align: "right" },
  { title: "HOLDS", width: 8, align: "right" },
  { title: "HELD P99 ms", width: 13, align: "right" },
];

/** What the agent has seen, per process: a few lines for people. */
function table(agent: Agent): string[] {
  const snaps = agent.histograms.snapshot();
  const rows = snaps.filter((x) => x.metric === "request_latency").map((s) => {
    const hold = snaps.find((x) => x.metric === "hold_time" && x.key.pid === s.key.pid);
    const meta = agent.processMeta(s.key.pid);
    const name = meta?.serviceName ?? path.basename(meta?.cmdline[0] ?? "?");
    return [String(s.key.pid), String(s.key.priority), name, String(s.count), ms(s.percentiles.p50), ms(s.percentiles.p99),
      String(hold?.count ?? 0), ms(hold?.percentiles.p99)];
  });
  return formatColumns(DEMO_COLUMNS, rows);
}

export async function agentCommand(args: string[]): Promise<number> {
  const opts = agentOptions(args);
  // values the OpenTelemetry specification says to ignore: ignored, and said once
  for (const w of opts.otel.warnings) process.stderr.write(`tailguard agent: ${w}\n`);
  // from the start: the collector may take a ring's last records before the agent has said a word, and a SIGTERM then
  // must still drain them rather than end the process
  const stopRequested = new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  const agent = await Agent.start(opts);
  const where = [
    `rings in ${opts.dir}`,
    agent.server ? `Prometheus at ${agent.server.url()}` : "no Prometheus endpoint",
    ...(agent.server ? [`live view at ${agent.server.url("/")}`] : []),
    opts.otel.traces ? `spans over OTLP to ${opts.otel.traces.url}` : "no span export over OTLP",
    opts.otel.metrics
      ? `metrics over OTLP to ${opts.otel.metrics.url} every ${opts.otel.metrics.intervalMs / 1000} s`
      : "no metric push over OTLP",
    ...(opts.spansFile ? [`spans also in ${opts.spansFile}`] : []),
    ...(opts.intervalLog ? [`HDR interval log ${opts.intervalLog.path}`] : []),
  ];
  console.log(`tailguard agent (pid ${process.pid}): ${where.join("; ")}`);
  const demo = opts.demo ? startDemo(opts.dir) : null;
  if (opts.demo)
    console.log("demo: on the simulated GPU, ResNet-18-like requests at 20/s (high priority, replayed as a CUDA graph) " +
      "beside ResNet-50-like batches of 8 back to back (low priority): the models of `tailguard bench --sim`\n");
  const report = opts.demo
    ? setInterval(() => {
        const s = agent.stats();
        console.log(`${new Date().toISOString()}  ${s.processes} attached, ${s.records} records, ${s.windows} request windows, ${s.holds} holds, spans ${s.spans.exported} exported / ${s.spans.dropped} dropped`);
        for (const line of table(agent)) console.log(line);
      }, 2000)
    : null;
  await stopRequested;
  if (report) clearInterval(report);
  await demo?.stop();
  await agent.stop();
  const s = agent.stats();
  console.log(`tailguard agent: stopped after ${s.records} records, ${s.windows} request windows, ${s.holds} holds; ` +
    `the shims dropped ${s.dropped} records (rings full); spans ${s.spans.exported} exported, ${s.spans.dropped} dropped, ` +
    `${s.spans.failed} failed`);
  return 0;
}
