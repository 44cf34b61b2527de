// The agent's Prometheus endpoint scraped by a real Prometheus (the Debian package `prometheus`, which .ci/run
// installs): its histogram_quantile() over the agent's request latency buckets must land in the bucket that holds the
// exact P99 of what the agent observed, and the percentile gauge must equal that P99 to HDR precision. And `promtool
// check metrics` (the same package) finds nothing wrong with a live agent's /metrics.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { build } from "hdr-histogram-js";
import { expect, it } from "vitest";

import { METRICS } from "../../agent/src/telemetry/metrics.js";
import { requireComponent } from "../support/components.js";
import { query, type RunningPrometheus, startPrometheus, until } from "../support/prometheus.js";
import { ServedMetrics } from "../support/served-metrics.js";
import { PERCENTILES, type SeriesSnapshot } from "../../agent/src/model.js";
import { processMeta, requestWindow } from "../support/model.js";
import { Agent } from "../../agent/src/agent.js";
import { agentOptions } from "../../agent/src/cli/agent.js";
import { nativeBuild, runProgram, shimLib, simEnv, testDir } from "../support/native.js";

const N = 2000;

/** A deterministic skewed latency sample (ns): 96% log-normal around 2 ms, 4% a slow tail of 80-400 ms. */
function latencies(): number[] {
  let seed = 0x7a11_6a4d;
  const random = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    if (random() < 0.04) out.push(Math.round(80e6 + random() * 320e6));
    else {
      const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      out.push(Math.round(2e6 * Math.exp(0.5 * normal)));
    }
  }
  return out;
}

it("a real Prometheus scraping the agent: histogram_quantile(0.99) lands in the exact P99's bucket; the gauge is the P99", async () => {
  const PROMETHEUS = requireComponent("prometheus");

  const meta = processMeta(4242, { priority: 10, gpu: { ordinal: 0, uuid: "GPU-0000-test", name: "H100", pci: "0000:01:00.0" } });
  const values = latencies();
  const sorted = [...values].sort((a, b) => a - b);
  // the value at rank ceil(0.99 N): the one histogram_quantile's rank 0.99 N falls on
  const exactP99 = sorted[Math.ceil(0.99 * N) - 1];

  const hdr = build({ numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000 });
  let snapshots: SeriesSnapshot[] = [];
  const metrics = new ServedMetrics({ snapshots: () => snapshots });
  const dir = mkdtempSync(path.join(tmpdir(), "tailguard-prometheus-"));
  let prometheus: RunningPrometheus | null = null;
  try {
    await metrics.ready;
    metrics.attach(meta); // the zero state is scraped first, so rate() sees every observation as an increase
    const target = new URL(metrics.url()!).host;
    prometheus = await startPrometheus(PROMETHEUS, dir, { targets: [target] });
    const base = prometheus.base;
    const logOf = prometheus.log;
    const count = "tailguard_request_latency_seconds_count";
    // Prometheus 2.42 hands static targets to its scrape manager only after its discovery throttle (5 s)
    await until("the first scrape", async () => ((await query(base, count))[0]?.[1] === 0 ? true : undefined), 20_000, logOf);
    expect(await query(base, 'up{job="tailguard"}')).toEqual([[expect.objectContaining({ job: "tailguard" }), 1]]);

    for (const ns of values) {
      metrics.observeWindow(meta, requestWindow(meta.pid, { durNs: ns }));
      hdr.recordValue(ns);
    }
    snapshots = [
      {
        metric: "request_latency",
        key: { pid: meta.pid, priority: meta.priority, gpu: meta.gpu!.uuid },
        count: hdr.totalCount,
        min: hdr.minNonZeroValue,
        max: hdr.maxValue,
        mean: hdr.mean,
        percentiles: Object.fromEntries(Object.entries(PERCENTILES).map(([label, p]) => [label, hdr.getValueAtPercentile(p)])),
      },
    ];
    await until("a scrape with every window", async () => ((await query(base, count))[0]?.[1] === N ? true : undefined), 5_000, logOf);

    // Which bucket holds the exact P99: Prometheus only knows the buckets and interpolates linearly inside one.
    const bounds = [0, ...METRICS.request_latency.buckets];
    const i = bounds.findIndex((b, k) => k > 0 && exactP99 / 1e9 <= b);
    expect(i, "the P99 must not fall in the +Inf bucket").toBeGreaterThan(0);
    const [lower, upper] = [bounds[i - 1], bounds[i]];

    // Over the cumulative buckets: everything the process did, which here is exactly the 2000 windows.
    const [[, cumulative]] = await query(base, "histogram_quantile(0.99, sum by (le) (tailguard_request_latency_seconds_bucket))");
    // Over rate(): what an alert uses. The range holds the zero sample and the full one, and rate() scales every
    // bucket alike, so the estimate is the same.
    const [[, windowed]] = await query(
      base,
      "histogram_quantile(0.99, sum by (le) (rate(tailguard_request_latency_seconds_bucket[1m])))",
    );
    for (const estimate of [cumulative, windowed]) {
      expect(estimate).toBeGreaterThan(lower);
      expect(estimate).toBeLessThanOrEqual(upper);
    }
    expect(windowed).toBeCloseTo(cumulative, 9);

    // The gauge carries the HDR P99, which is the exact P99 to within HDR's 3 significant digits.
    const hdrP99 = hdr.getValueAtPercentile(99);
    expect(Math.abs(hdrP99 - exactP99)).toBeLessThanOrEqual(exactP99 / 1000 + 1);
    const gauge = await query(base, 'tailguard_request_latency_percentile_seconds{percentile="99"}');
    expect(gauge).toHaveLength(1);
    expect(gauge[0][0]).toMatchObject({ priority: "10", gpu: "GPU-0000-test", command: "python3" });
    expect(gauge[0][0]).not.toHaveProperty("pid"); // off by default
    expect(gauge[0][1]).toBeCloseTo(hdrP99 / 1e9, 12);
    expect(Math.abs(gauge[0][1] - exactP99 / 1e9)).toBeLessThanOrEqual(exactP99 / 1e12 + 1e-9);
  } finally {
    await prometheus?.stop();
    await metrics.shutdown();
    hdr.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}, 20_000);

it("promtool check metrics finds no problem in a live agent's /metrics, with processes on the simulated GPU", async () => {
  const PROMTOOL = requireComponent("promtool");
  const dir = testDir("promtool-metrics");
  const agent = await Agent.start(agentOptions(["--dir", path.join(dir, "rings"), "--port", "0"], {}));
  let text: string;
  let records: number;
  try {
    // a high-priority request stream and a low-priority one on the same GPU: windows, holds, launches, percentiles
    const workload = path.join(nativeBuild, "tg-workload");
    const args = ["requests", "--rate", "200", "--count", "40", "--kernels", "2", "--kernel-us", "300"];
    const runs = await Promise.all([
      runProgram(workload, args, { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "high" }) }),
      runProgram(workload, args, { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "low" }) }),
    ]);
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const end = Date.now() + 10_000;
    while (agent.stats().windows < 80 && Date.now() < end) await sleep(25);
    // the drain's health is published by the agent's housekeeping, once a second: scrape after one has seen the records
    await sleep(1100);
    text = await (await fetch(agent.server!.url()!)).text();
    records = agent.stats().records;
  } finally {
    await agent.stop();
  }
  // every kind of series is there, so that promtool sees each of them
  for (const name of ["tailguard_request_latency_seconds_bucket", "tailguard_hold_time_seconds_bucket", "tailguard_launches_total"])
    expect(text, name).toContain(`${name}{`);
  expect(text).toMatch(/^tailguard_request_latency_percentile_seconds\{/m);
  // the agent's own health, plausible: every record read counted, no backlog left, read within a second of being written
  const sample = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1]);
  expect(sample("tailguard_records_read_total")).toBe(records);
  expect(records).toBeGreaterThan(80);
  expect(sample("tailguard_rings_backlog")).toBe(0);
  expect(sample("tailguard_drain_lag_seconds")).toBeGreaterThanOrEqual(0);
  expect(sample("tailguard_drain_lag_seconds")).toBeLessThan(1);
  expect(sample("tailguard_build_info")).toBe(1);
  for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"])
    expect(sample(name), name).toBeGreaterThan(0);
  const r = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
  // promtool prints one line per problem ("NAME: what is wrong") and exits 1 when there is any
  expect(`${r.stdout}${r.stderr}`.trim(), "promtool check metrics").toBe("");
  expect(r.status).toBe(0);
}, 30_000);
