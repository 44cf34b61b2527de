// The agent's metrics (agent/src/telemetry/metrics.ts): the definition table against docs/metrics.md, the Prometheus endpoint as
// a scraper reads it (names, types, labels, buckets, values), the percentile gauges, forgetting processes, and OTLP push
// in both encodings through a loopback receiver.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";

import { AgentMetrics, KERNEL_LABELS, METRICS, otlpMetricExporter, type MetricDefinition } from "../../agent/src/telemetry/metrics.js";
import { otelConfig, type Env } from "../../agent/src/telemetry/otel-env.js";
import { ServedMetrics } from "../support/served-metrics.js";
import { HISTOGRAM_METRICS, PERCENTILES, type Hold, type RequestWindow, type SeriesSnapshot } from "../../agent/src/model.js";
import { heldLaunch, processMeta, requestWindow } from "../support/model.js";
import { root } from "../support/native.js";
import { startOtlpReceiver, type OtlpReceiver } from "../support/otlp-receiver.js";

const meta = processMeta;
const window = (pid: number, durNs: number): RequestWindow => requestWindow(pid, { durNs });
const hold = (pid: number, reason: Hold["reason"], durNs: number): Hold => heldLaunch(pid, { reason, durNs });

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, as far as these tests read it. */
function parseExposition(text: string) {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: m[3] === "+Inf" ? Infinity : Number(m[3]) });
  }
  return { types, samples };
}

async function scrape(m: ServedMetrics) {
  const res = await fetch(m.url()!);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) => {
  const found = find(samples, name, labels);
  expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
  return found[0].value;
};

/** The OpenTelemetry→Prometheus name translation (units this table uses). */
const translated = (d: MetricDefinition) =>
  d.otel.replace(/\./g, "_") + (d.unit === "s" ? "_seconds" : d.unit === "By" ? "_bytes" : "") + (d.type === "counter" ? "_total" : "");

let open: AgentMetrics[] = [];
let receivers: OtlpReceiver[] = [];
afterEach(async () => {
  await Promise.all(open.map((m) => m.shutdown()));
  await Promise.all(receivers.map((r) => r.close()));
  open = [];
  receivers = [];
});

/** A served AgentMetrics; with --pid-label unless `opts` says otherwise: most tests here tell processes apart by pid
 *  ("pid off by default" has its own). */
async function start(opts: ConstructorParameters<typeof ServedMetrics>[0]) {
  const m = new ServedMetrics({ pidLabel: true, ...opts });
  open.push(m);
  await m.ready;
  return m;
}

describe("the metric definitions", () => {
  it("docs/metrics.md's table is METRICS", () => {
    const doc = readFileSync(path.join(root, "docs/metrics.md"), "utf8");
    const section = doc.slice(doc.indexOf("## The metrics"));
    const rows = section
      .split("\n")
      .filter((l) => l.startsWith("| `tailguard_") || l.startsWith("| `process_"))
      .map((l) => l.slice(1, -1).split("|").map((c) => c.trim()));
    const code = (c: string) => c.replace(/^`|`$/g, "");
    const documented = rows.map(([prometheus, otel, type, unit, labels, buckets, description]) => ({
      prometheus: code(prometheus),
      otel: code(otel),
      type,
      unit: code(unit),
      labels: labels ? labels.split(",").map((l) => code(l.trim())) : [],
      buckets: buckets ? buckets.split(",").map(Number) : undefined,
      description,
    }));
    const defined = Object.values(METRICS).map((d: MetricDefinition) => ({
      prometheus: d.prometheus,
      otel: d.otel,
      type: d.type,
      unit: d.unit,
      labels: [...d.labels],
      buckets: d.buckets ? [...d.buckets] : undefined,
      description: d.description,
    }));
    expect(documented).toEqual(defined);
  });

  it("names follow the Prometheus conventions, and histogram buckets bracket round SLOs", () => {
    for (const d of Object.values(METRICS) as MetricDefinition[]) {
      // process_*: the agent's own process, under the names every Prometheus client library gives them
      expect(d.prometheus).toMatch(d.otel.startsWith("process.") ? /^process_[a-z0-9_]+$/ : /^tailguard_[a-z0-9_]+$/);
      expect(d.prometheus, d.otel).toBe(translated(d));
      if (d.type === "histogram") {
        const b = d.buckets!;
        expect(b.length).toBeGreaterThan(10);
        for (let i = 1; i < b.length; i++) expect(b[i]).toBeGreaterThan(b[i - 1]);
      } else expect(d.buckets).toBeUndefined();
    }
    for (const slo of [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
      expect(METRICS.request_latency.buckets).toContain(slo);
    expect(METRICS.launch_api_time.buckets[0]).toBe(0.000001);
  });

  it("each metric has one name: its key and the HDR histogram of that name are its OTel name", () => {
    for (const [key, d] of Object.entries(METRICS) as [string, MetricDefinition][])
      expect(key, d.otel).toBe(d.otel.replace(/^tailguard\./, "").replace(/\./g, "_"));
    // the agent's histograms are the exported ones of the same name
    for (const h of HISTOGRAM_METRICS)
      expect((METRICS as Record<string, MetricDefinition>)[h]?.type, h).toBe("histogram");
  });
});

describe("the Prometheus endpoint", () => {
  it("listens on 127.0.0.1, port 0 picks a free one, and serves /metrics only", async () => {
    const m = await start({});
    expect(m.url()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect((await fetch(m.url()!.replace("/metrics", "/other"))).status).toBe(404);
    const res = await fetch(m.url()!);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const unserved = new ServedMetrics({});
    expect(unserved.url()).toBeNull(); // before it listens
    await unserved.shutdown();
  });

  it("shows every metric with its type, labels, buckets and the counts observed", async () => {
    const spans = { exported: 120, dropped: 3, failed: 8 };
    const m = await start({ spanStats: () => spans });
    const a = meta(101, { priority: 10, resource: { "k8s.namespace.name": "ml", "k8s.pod.name": "infer-0", "k8s.container.name": "server" } });
    const b = meta(202, { gpu: null, serviceName: "llm-batch", cmdline: ["/opt/bin/trainer"],
      resource: { "k8s.namespace.name": "batch", "k8s.pod.name": "train-0", "k8s.container.name": "trainer" } });
    const windowsA = [50_000, 100_000, 3_000_000, 2e9, 20e9]; // 100 µs sits on a bound: bounds are inclusive
    for (const ns of windowsA) m.observeWindow(a, window(101, ns));
    m.observeWindow(b, window(202, 7_000_000));
    m.observeHold(a, hold(101, "priority", 40_000));
    m.observeHold(a, hold(101, "priority", 3_000_000));
    m.observeHold(a, hold(101, "share", 600_000_000));
    m.observeLaunches(a, 1000, [1000, 2500, 7000]);
    m.observeLaunches(a, 24);
    m.observeLaunches(b, 10, new Float64Array([20_000]));
    m.addDropped(b, 7);
    m.addDropped(b, 3);
    m.observeKernelTime(a, "gemm_kernel", 30_000);
    m.observeKernelTime(b, "gemm_kernel", 1_000_000);
    m.setProcesses(2, 1);

    const { types, samples } = await scrape(m);
    for (const d of Object.values(METRICS) as MetricDefinition[]) {
      if (d.labels.includes("percentile")) continue; // no snapshots here: see the next test
      expect(types.get(d.prometheus), d.prometheus).toBe(d.type);
      const names = d.type === "histogram" ? ["_bucket", "_sum", "_count"].map((s) => d.prometheus + s) : [d.prometheus];
      for (const name of names) {
        const found = find(samples, name);
        expect(found.length, name).toBeGreaterThan(0);
        for (const s of found)
          expect(Object.keys(s.labels).sort(), name).toEqual(
            [...d.labels, ...(d.labels.includes("pod") ? ["pid"] : []), ...(name.endsWith("_bucket") ? ["le"] : [])].sort(),
          );
      }
      if (d.type === "histogram") {
        const one = find(samples, d.prometheus + "_bucket", { pid: "101" }).filter((s) => !("reason" in s.labels) || s.labels.reason === "share");
        expect(one.map((s) => s.labels.le)).toEqual([...d.buckets!.map(String), "+Inf"]);
      }
    }

    const labelsA = { pid: "101", priority: "10", gpu: "GPU-11111111-2222-3333-4444-555555555555", command: "python3",
      namespace: "ml", pod: "infer-0", container: "server" };
    const labelsB = { pid: "202", priority: "0", gpu: "unknown", command: "llm-batch", namespace: "batch", pod: "train-0",
      container: "trainer" };
    expect(find(samples, "tailguard_launches_total", labelsA)).toHaveLength(1);
    expect(find(samples, "tailguard_launches_total", labelsB)).toHaveLength(1);

    for (const le of METRICS.request_latency.buckets)
      expect(value(samples, "tailguard_request_latency_seconds_bucket", { pid: "101", le: String(le) }), `le ${le}`).toBe(
        windowsA.filter((ns) => ns <= le * 1e9).length,
      );
    expect(value(samples, "tailguard_request_latency_seconds_bucket", { pid: "101", le: "0.0001" })).toBe(2);
    expect(value(samples, "tailguard_request_latency_seconds_bucket", { pid: "101", le: "+Inf" })).toBe(5);
    expect(value(samples, "tailguard_request_latency_seconds_count", { pid: "101" })).toBe(5);
    expect(value(samples, "tailguard_request_latency_seconds_sum", { pid: "101" })).toBeCloseTo(22.00315, 9);
    expect(value(samples, "tailguard_request_windows_total", { pid: "101" })).toBe(5);
    expect(value(samples, "tailguard_request_windows_total", { pid: "202" })).toBe(1);

    expect(value(samples, "tailguard_holds_total", { pid: "101", reason: "priority" })).toBe(2);
    expect(value(samples, "tailguard_holds_total", { pid: "101", reason: "share" })).toBe(1);
    expect(value(samples, "tailguard_holds_total", { pid: "101", reason: "budget" })).toBe(0);
    expect(value(samples, "tailguard_hold_time_seconds_bucket", { pid: "101", reason: "priority", le: "0.00005" })).toBe(1);
    expect(value(samples, "tailguard_hold_time_seconds_bucket", { pid: "101", reason: "priority", le: "0.005" })).toBe(2);
    expect(value(samples, "tailguard_hold_time_seconds_sum", { pid: "101", reason: "share" })).toBeCloseTo(0.6, 12);

    expect(value(samples, "tailguard_launches_total", { pid: "101" })).toBe(1024);
    expect(value(samples, "tailguard_launches_total", { pid: "202" })).toBe(10);
    expect(value(samples, "tailguard_launch_api_time_seconds_bucket", { pid: "101", le: "0.000001" })).toBe(1);
    expect(value(samples, "tailguard_launch_api_time_seconds_bucket", { pid: "101", le: "0.0000025" })).toBe(2);
    expect(value(samples, "tailguard_launch_api_time_seconds_bucket", { pid: "101", le: "0.00001" })).toBe(3);
    expect(value(samples, "tailguard_launch_api_time_seconds_count", { pid: "202" })).toBe(1);
    expect(value(samples, "tailguard_records_dropped_total", { pid: "202" })).toBe(10);
    expect(value(samples, "tailguard_records_dropped_total", { pid: "101" })).toBe(0);

    expect(value(samples, "tailguard_spans_exported_total")).toBe(120);
    expect(value(samples, "tailguard_spans_dropped_total")).toBe(3);
    expect(value(samples, "tailguard_spans_failed_total")).toBe(8);
    expect(value(samples, "tailguard_metric_export_failures_total")).toBe(0);
    expect(value(samples, "tailguard_processes_attached")).toBe(2);
    expect(value(samples, "tailguard_processes_in_flight")).toBe(1);
    expect(value(samples, "target_info", { service_name: "tailguard" })).toBe(1);

    // counters are cumulative across scrapes
    m.observeLaunches(a, 6);
    expect(value((await scrape(m)).samples, "tailguard_launches_total", { pid: "101" })).toBe(1030);
  });

  it("exports the agent's own process (the standard process_* names), its build, and how its drain keeps up", async () => {
    const m = await start({ drain: () => ({ recordsRead: 123_456, backlog: 789, lagSeconds: 0.0042 }) });
    const before = Date.now() / 1000;
    const { samples } = await scrape(m);
    const rss = process.memoryUsage.rss();
    expect(value(samples, "tailguard_records_read_total")).toBe(123_456);
    expect(value(samples, "tailguard_rings_backlog")).toBe(789);
    expect(value(samples, "tailguard_drain_lag_seconds")).toBe(0.0042);
    const version = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).version;
    expect(value(samples, "tailguard_build_info", { version, node: process.versions.node })).toBe(1);

    const cpu = value(samples, "process_cpu_seconds_total");
    const usage = process.cpuUsage();
    expect(cpu).toBeGreaterThan(0);
    expect(cpu).toBeLessThanOrEqual((usage.user + usage.system) / 1e6);
    // within 64 MiB of what Node says now (the scrape itself allocates)
    expect(Math.abs(value(samples, "process_resident_memory_bytes") - rss)).toBeLessThan(64 << 20);
    expect(value(samples, "process_virtual_memory_bytes")).toBeGreaterThan(value(samples, "process_resident_memory_bytes"));
    const fds = value(samples, "process_open_fds");
    expect(fds).toBeGreaterThanOrEqual(3); // stdin, stdout, stderr at least, and the server's socket
    expect(fds).toBeLessThan(value(samples, "process_max_fds"));
    const started = value(samples, "process_start_time_seconds");
    expect(started).toBeGreaterThan(before - process.uptime() - 1);
    expect(started).toBeLessThan(before - process.uptime() + 1);
    // the same at the next scrape: a change of it is a restart
    expect(value((await scrape(m)).samples, "process_start_time_seconds")).toBe(started);
  });

  it("shows a process's series from attach() on, before any observation, at zero", async () => {
    const m = await start({});
    m.attach(meta(7));
    const { samples } = await scrape(m);
    expect(value(samples, "tailguard_launches_total", { pid: "7" })).toBe(0);
    expect(value(samples, "tailguard_request_latency_seconds_count", { pid: "7" })).toBe(0);
    expect(value(samples, "tailguard_request_latency_seconds_bucket", { pid: "7", le: "+Inf" })).toBe(0);
  });

  it("measured GPU time: GPU time and queue delay of the windows that have device times; missing ones by reason", async () => {
    const m = await start({});
    const device = { submitted: 0n, gpuStart: 300_000n, gpuEnd: 2_300_000n, returned: 2_350_000n, queueNs: 300_000, gpuNs: 2_000_000, completionNs: 50_000 };
    m.observeWindow(meta(7), requestWindow(7, { durNs: 2_350_000, gpuNs: 2_000_000, device }));
    m.observeWindow(meta(7), window(7, 1_000_000)); // no device times
    m.observeGpuTimeMissing(meta(7), "stream");
    const { samples } = await scrape(m);
    expect(value(samples, "tailguard_request_gpu_time_seconds_count", { pid: "7" })).toBe(1);
    expect(value(samples, "tailguard_request_gpu_time_seconds_sum", { pid: "7" })).toBeCloseTo(0.002, 9);
    expect(value(samples, "tailguard_request_gpu_time_seconds_bucket", { pid: "7", le: "0.0025" })).toBe(1);
    expect(value(samples, "tailguard_request_gpu_time_seconds_bucket", { pid: "7", le: "0.001" })).toBe(0);
    expect(value(samples, "tailguard_request_queue_delay_seconds_sum", { pid: "7" })).toBeCloseTo(0.0003, 9);
    expect(value(samples, "tailguard_request_windows_total", { pid: "7" })).toBe(2);
    expect(value(samples, "tailguard_gpu_time_missing_total", { pid: "7", reason: "stream" })).toBe(1);
    expect(value(samples, "tailguard_gpu_time_missing_total", { pid: "7", reason: "no_timing" })).toBe(0); // from the start
  });

  it("kernel device times (CUPTI): by kernel name, the first KERNEL_LABELS names of a process, then other", async () => {
    const m = await start({});
    m.observeKernelTime(meta(7), "gemm", 2_000_000);
    m.observeKernelTime(meta(7), "gemm", 3_000_000);
    for (let i = 0; i < KERNEL_LABELS + 5; i++) m.observeKernelTime(meta(7), `k${i}`, 10_000);
    m.observeKernelTime(meta(7), "x".repeat(5000), 10_000);
    const { samples } = await scrape(m);
    expect(value(samples, "tailguard_kernel_gpu_time_seconds_count", { pid: "7", kernel: "gemm" })).toBe(2);
    expect(value(samples, "tailguard_kernel_gpu_time_seconds_sum", { pid: "7", kernel: "gemm" })).toBeCloseTo(0.005, 9);
    expect(value(samples, "tailguard_kernel_gpu_time_seconds_bucket", { pid: "7", kernel: "gemm", le: "0.0025" })).toBe(1);
    const kernels = new Set(find(samples, "tailguard_kernel_gpu_time_seconds_count", { pid: "7" }).map((s) => s.labels.kernel));
    // a process that times no kernels: no kernel-time metric at all, not an empty one
    const none = await start({});
    none.observeLaunches(meta(8), 3);
    expect((await scrape(none)).types.has("tailguard_kernel_gpu_time_seconds")).toBe(false);
    expect(kernels.size).toBe(KERNEL_LABELS + 1);
    expect(kernels.has("other")).toBe(true);
    expect(value(samples, "tailguard_kernel_gpu_time_seconds_count", { pid: "7", kernel: "other" })).toBe(7);
  });

  it("exports the HDR snapshots' percentiles as gauges in seconds, labelled with the percentile in percent", async () => {
    const a = meta(101, { priority: 10 });
    const snap = (metric: SeriesSnapshot["metric"], scale: number): SeriesSnapshot => ({
      metric,
      key: { pid: 101, priority: 10, gpu: a.gpu!.uuid },
      count: 1000,
      min: 1000,
      max: 90_000_000 * scale,
      mean: 2_000_000,
      percentiles: { p50: 1_500_000 * scale, p90: 4_250_000 * scale, p99: 12_345_678 * scale, p999: 50_000_001 * scale, p9999: 89_999_999 * scale },
    });
    const snapshots: SeriesSnapshot[] = [
      snap("request_latency", 1),
      snap("hold_time", 2),
      snap("launch_api_time", 1), // no gauge for this one
      { ...snap("request_latency", 1), key: { pid: 999, priority: 0, gpu: "unknown" } }, // no series here: not exported
    ];
    const m = await start({ snapshots: () => snapshots });
    m.observeWindow(a, window(101, 1_000_000));
    const { types, samples } = await scrape(m);
    expect(types.get("tailguard_request_latency_percentile_seconds")).toBe("gauge");
    expect(types.get("tailguard_hold_time_percentile_seconds")).toBe("gauge");
    const expected: Record<string, string> = { p50: "50", p90: "90", p99: "99", p999: "99.9", p9999: "99.99" };
    expect(Object.keys(PERCENTILES).sort()).toEqual(Object.keys(expected).sort());
    for (const [label, percentile] of Object.entries(expected)) {
      const labels = { pid: "101", priority: "10", gpu: a.gpu!.uuid, command: "python3", percentile };
      expect(value(samples, "tailguard_request_latency_percentile_seconds", labels)).toBe(snapshots[0].percentiles[label] / 1e9);
      expect(value(samples, "tailguard_hold_time_percentile_seconds", labels)).toBe(snapshots[1].percentiles[label] / 1e9);
    }
    expect(find(samples, "tailguard_request_latency_percentile_seconds")).toHaveLength(5);
    expect(samples.some((s) => s.name.includes("api_time_percentile"))).toBe(false);
    // `quantile` is a summary's label: on a gauge, `promtool check metrics` rejects it
    expect(samples.filter((s) => "quantile" in s.labels)).toEqual([]);
  });
});

describe("pid off by default (--pid-label keeps it)", () => {
  const pod = { "k8s.namespace.name": "ml", "k8s.pod.name": "infer-0", "k8s.container.name": "server" };

  it("a process's series are named by what it is: a restart continues its label set", async () => {
    const m = await start({ pidLabel: false, forgetAfterMs: 60_000 });
    const first = meta(101, { resource: pod });
    m.observeLaunches(first, 5);
    let { samples } = await scrape(m);
    expect(find(samples, "tailguard_launches_total")).toEqual([
      { name: "tailguard_launches_total", labels: { priority: "0", gpu: first.gpu!.uuid, command: "python3", namespace: "ml",
        pod: "infer-0", container: "server" }, value: 5 },
    ]);
    expect(samples.filter((x) => "pid" in x.labels)).toEqual([]);
    // it restarts (a new pid) within forgetAfterMs: the new process takes the label set, the old series leaves at once
    m.forget(101);
    m.observeLaunches(meta(202, { resource: pod }), 2);
    ({ samples } = await scrape(m));
    expect(find(samples, "tailguard_launches_total").map((x) => [x.labels.pid, x.value])).toEqual([[undefined, 2]]);
  });

  it("two live processes with the same labels keep their pids, only while they are two", async () => {
    const m = await start({ pidLabel: false, forgetAfterMs: 0 });
    const [a, b] = [meta(101, { resource: pod }), meta(202, { resource: pod })];
    m.observeLaunches(a, 5);
    m.observeLaunches(b, 7);
    m.observeLaunches(meta(303, { resource: { ...pod, "k8s.container.name": "sidecar" } }), 1);
    let { samples } = await scrape(m);
    const launches = () => find(samples, "tailguard_launches_total").map((x) => [x.labels.container, x.labels.pid, x.value]);
    expect(launches()).toEqual([["server", "101", 5], ["server", "202", 7], ["sidecar", undefined, 1]]);
    expect(find(samples, "tailguard_holds_total", { pid: "202", reason: "share" })).toHaveLength(1);
    m.forget(101);
    ({ samples } = await scrape(m));
    expect(launches()).toEqual([["server", undefined, 7], ["sidecar", undefined, 1]]);
  });

  it("--pid-label: every per-process series has its pid", async () => {
    const m = await start({ pidLabel: true });
    m.observeLaunches(meta(101, { resource: pod }), 5);
    const { samples } = await scrape(m);
    expect(value(samples, "tailguard_launches_total", { pid: "101", pod: "infer-0" })).toBe(5);
    expect(find(samples, "tailguard_request_latency_seconds_bucket").every((x) => x.labels.pid === "101")).toBe(true);
  });
});

describe("processes that go away", () => {
  it("forget(pid): the series stay for forgetAfterMs with their final values, then leave the scrape", async () => {
    const a = meta(101);
    const b = meta(202, { cmdline: ["/usr/bin/batch"] });
    const snapshots: SeriesSnapshot[] = [101, 202].map((pid) => ({
      metric: "request_latency",
      key: { pid, priority: 0, gpu: a.gpu!.uuid },
      count: 1,
      min: 1,
      max: 1,
      mean: 1,
      percentiles: { p50: 1, p90: 1, p99: 1, p999: 1, p9999: 1 },
    }));
    const m = await start({ forgetAfterMs: 300, snapshots: () => snapshots });
    m.observeWindow(a, window(101, 1_000_000));
    m.observeLaunches(a, 5);
    m.observeWindow(b, window(202, 1_000_000));
    m.forget(101);
    m.forget(4242); // never seen: nothing to do

    let { samples } = await scrape(m);
    expect(value(samples, "tailguard_launches_total", { pid: "101" })).toBe(5);
    expect(find(samples, "tailguard_request_latency_percentile_seconds", { pid: "101" })).toHaveLength(5);

    await sleep(350);
    ({ samples } = await scrape(m));
    expect(samples.filter((s) => s.labels.pid === "101")).toEqual([]);
    expect(value(samples, "tailguard_request_windows_total", { pid: "202" })).toBe(1);
    expect(find(samples, "tailguard_request_latency_percentile_seconds", { pid: "202" })).toHaveLength(5);
  });

  it("records after forget (a late drain) bring the forgotten series back: never two series with one label set", async () => {
    const m = await start({ forgetAfterMs: 60_000 });
    const a = meta(101);
    m.observeLaunches(a, 5);
    m.forget(101);
    m.observeLaunches(a, 2);
    const { samples } = await scrape(m);
    expect(value(samples, "tailguard_launches_total", { pid: "101" })).toBe(7);
  });

  it("a priority change moves a process to new series; the old ones leave the export: one live label set", async () => {
    const m = await start({ forgetAfterMs: 0 });
    m.observeLaunches(meta(101, { priority: 0 }), 5);
    m.observeLaunches(meta(101, { priority: 10 }), 3);
    // a record with the old labels before the next collection takes the old series back, with its counts
    m.observeLaunches(meta(101, { priority: 0 }), 1);
    let { samples } = await scrape(m);
    expect(value(samples, "tailguard_launches_total", { pid: "101", priority: "0" })).toBe(6);
    expect(find(samples, "tailguard_launches_total", { pid: "101", priority: "10" })).toEqual([]);
    m.attach(meta(101, { priority: 10 })); // the agent opens the new series at the change, before any traffic
    m.observeLaunches(meta(101, { priority: 10 }), 2);
    ({ samples } = await scrape(m));
    // a series of its own: the one the first change made left with the collection that saw it retired
    expect(value(samples, "tailguard_launches_total", { pid: "101", priority: "10" })).toBe(2);
    expect(find(samples, "tailguard_launches_total", { pid: "101", priority: "0" })).toEqual([]);
    expect(find(samples, "tailguard_request_windows_total", { pid: "101" }).map((x) => x.labels.priority)).toEqual(["10"]);
    m.forget(101);
    await sleep(5);
    ({ samples } = await scrape(m));
    expect(find(samples, "tailguard_launches_total", { pid: "101" })).toEqual([]);
  });
});

/** The metric push the agent makes for `env` (otel-env.ts), or null. */
function metricExporterFromEnv(env: Env) {
  const config = otelConfig(env).metrics;
  return config && otlpMetricExporter(config);
}

describe("OTLP push", () => {
  it("off unless asked for; grpc refused", () => {
    expect(metricExporterFromEnv({})).toBeNull();
    expect(metricExporterFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_METRICS_EXPORTER: "none" })).toBeNull();
    expect(metricExporterFromEnv({ OTEL_METRICS_EXPORTER: "otlp" })?.intervalMs).toBe(60_000);
    expect(
      metricExporterFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_METRIC_EXPORT_INTERVAL: "5000" })?.intervalMs,
    ).toBe(5000);
    expect(() =>
      metricExporterFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }),
    ).toThrow(/"grpc" is not supported/);
  });

  for (const [protocol, encoding] of [
    ["http/protobuf", "protobuf"],
    ["http/json", "json"],
  ] as const) {
    it(`pushes the same series over ${protocol}, cumulative, with the endpoint and headers from the environment`, async () => {
      const receiver = await startOtlpReceiver();
      receivers.push(receiver);
      const env = {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url + "/",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_HEADERS: "x-tenant=gpu%20team",
        OTEL_METRIC_EXPORT_INTERVAL: "60000",
        OTEL_SERVICE_NAME: "node-agent",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod",
      };
      const m = new AgentMetrics({ otlp: metricExporterFromEnv(env), resource: otelConfig(env).resource });
      const a = meta(101);
      m.observeWindow(a, window(101, 3_000_000));
      m.observeLaunches(a, 42);
      m.observeKernelTime(a, "gemm", 40_000); // kernel times are exported only where a process times kernels
      await m.shutdown(); // shutdown pushes a last export

      expect(receiver.requests.length).toBeGreaterThan(0);
      expect(receiver.requests[0].encoding).toBe(encoding);
      expect(receiver.requests[0].headers["x-tenant"]).toBe("gpu team");
      const metrics = receiver.metrics();
      expect(new Set(metrics.map((x) => x.name))).toEqual(
        new Set((Object.values(METRICS) as MetricDefinition[]).filter((d) => !d.labels.includes("percentile")).map((d) => d.otel)),
      );
      const latency = metrics.find((x) => x.name === "tailguard.request.latency")!;
      expect(latency.type).toBe("histogram");
      expect(latency.unit).toBe("s");
      // the agent's own
      expect(latency.resource).toMatchObject({ "service.name": "node-agent", "deployment.environment": "prod", "host.name": hostname() });
      expect(latency.temporality).toBe(2); // cumulative
      expect(latency.points[0].attributes).toEqual({ priority: 0, gpu: a.gpu!.uuid, command: "python3" }); // no pid by default
      expect(latency.points[0].explicitBounds).toEqual([...METRICS.request_latency.buckets]);
      expect(latency.points[0].bucketCounts![METRICS.request_latency.buckets.indexOf(0.005)]).toBe("1");
      expect(latency.points[0].sum).toBeCloseTo(0.003, 12);
      const launches = metrics.find((x) => x.name === "tailguard.launches")!;
      expect([launches.type, launches.monotonic, launches.temporality, Number(launches.points[0].value)]).toEqual(["sum", true, 2, 42]);
    });
  }

  it("counts failed exports in tailguard_metric_export_failures_total", async () => {
    const refusing = createServer((_req, res) => res.writeHead(400).end());
    await new Promise<void>((resolve) => refusing.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = refusing.address() as AddressInfo;
      const otlp = metricExporterFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_METRIC_EXPORT_INTERVAL: "100" });
      const m = await start({ otlp });
      let failures = 0;
      for (let i = 0; i < 50 && failures < 2; i++) {
        await sleep(100);
        failures = value((await scrape(m)).samples, "tailguard_metric_export_failures_total");
      }
      expect(failures).toBeGreaterThanOrEqual(2);
      await m.shutdown(); // while the server still answers: a refused connection is retried until the timeout
    } finally {
      refusing.closeAllConnections();
      await new Promise((resolve) => refusing.close(resolve));
    }
  });
});
