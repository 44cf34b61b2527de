// Issue 17: the dashboard and the rules work the same whether Prometheus scrapes the agents or receives their OTLP
// metrics through the OpenTelemetry Collector's remote write (collectors/otel-collector.yaml).
//
// No Collector can be installed on these machines, and Debian's Prometheus is built without its OTLP
// receiver. The stand-in is vmagent (Debian 13's victoria-metrics package; test/support/fetch-vmagent.sh): OTLP/HTTP
// in, metric and label names made Prometheus-compatible by its own implementation of the OpenTelemetry spec's rules
// (`-opentelemetry.usePrometheusNaming`: unit suffixes, `_total`, `_bucket`/`_sum`/`_count`), every resource
// attribute a label (as the shipped Collector's `resource_to_telemetry_conversion`), and Prometheus remote write out to
// a real Prometheus. The one rule of the Collector's exporter that vmagent does not apply, `job` from service.name and
// `instance` from service.instance.id, is given to it as a relabelling, written here.
//
// Two agents of two nodes push OTLP to vmagent, which remote-writes to one Prometheus; another Prometheus scrapes the
// same agents; both evaluate dashboards/rules.yml. Every panel query of dashboards/tailguard.json, every rule's
// expression and every recorded series is then asked of both: the same series (labels the same once each path's `instance` is mapped to its node, and the resource labels
// only the Collector path has are set aside), and the same values.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { expect, it } from "vitest";

import { Agent } from "../../agent/src/agent.js";
import { agentOptions } from "../../agent/src/cli/agent.js";
import { requireComponent } from "../support/components.js";
import { panelQueries, ruleQueries } from "../support/dashboard.js";
import { freePort, query, type RunningPrometheus, startPrometheus, until } from "../support/prometheus.js";
import { nativeBuild, root, runProgram, shimLib, simEnv, testDir } from "../support/native.js";

const NODES = ["node-a", "node-b"];
/** Labels only the Collector path has: the resource attributes it turns into labels. */
const RESOURCE_LABELS = ["host_name", "k8s_node_name", "service_name", "service_instance_id", "service_version", "service_namespace"];

interface Server {
  proc: ChildProcess;
  log: () => string;
}

function start(cmd: string, args: string[]): Server {
  let log = "";
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout!.on("data", (d: Buffer) => (log += d));
  proc.stderr!.on("data", (d: Buffer) => (log += d));
  return { proc, log: () => log };
}

async function stop(s: Server | null) {
  if (!s || s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const exited = once(s.proc, "exit");
  s.proc.kill("SIGTERM");
  if (!(await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]))) {
    s.proc.kill("SIGKILL");
    await exited;
  }
}

type Sample = [Record<string, string>, number];

/** A result's series keyed by their labels, with `instance` replaced by the node it names and the Collector-only
 *  resource labels set aside. */
function keyed(result: Sample[], nodeOf: Map<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [labels, value] of result) {
    const l: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels)) if (!RESOURCE_LABELS.includes(k)) l[k] = k === "instance" ? (nodeOf.get(v) ?? `unknown ${v}`) : v;
    out.set(JSON.stringify(Object.entries(l).sort()), value);
  }
  return out;
}

it("the dashboard's queries and the rules give the same series and values by scrape and by the Collector's remote write", async () => {
  const PROMETHEUS = requireComponent("prometheus");
  const VMAGENT = requireComponent("vmagent");
  const dirs = NODES.map((node) => testDir(`collector-path-${node}`));
  const work = dirs[0];
  const agents: Agent[] = [];
  let scraper: RunningPrometheus | null = null;
  let written: RunningPrometheus | null = null;
  let vmagent: Server | null = null;
  try {
    // both Prometheus evaluate the shipped rules, every second instead of every 30 s
    const rules = readFileSync(path.join(root, "dashboards/rules.yml"), "utf8").replaceAll(/interval: \d+s/g, "interval: 1s");
    writeFileSync(path.join(work, "rules.yml"), rules);
    const ruleFiles = `rule_files: ["${path.join(work, "rules.yml")}"]\n`;
    // the Collector path: Prometheus with its remote-write receiver, and vmagent writing to it
    written = await startPrometheus(PROMETHEUS, work, { name: "written", extraConfig: ruleFiles, args: ["--web.enable-remote-write-receiver"] });
    // the Collector's prometheusremotewrite exporter: job from service.namespace/service.name, instance from
    // service.instance.id (opentelemetry-collector-contrib's translator; the agent sets no service.namespace)
    writeFileSync(path.join(work, "relabel.yml"),
      "- source_labels: [service_name]\n  target_label: job\n- source_labels: [service_instance_id]\n  target_label: instance\n");
    const vmAt = `127.0.0.1:${await freePort()}`;
    vmagent = start(VMAGENT, [`-httpListenAddr=${vmAt}`, "-opentelemetry.usePrometheusNaming",
      `-remoteWrite.url=${written.base}/api/v1/write`, `-remoteWrite.urlRelabelConfig=${path.join(work, "relabel.yml")}`,
      "-remoteWrite.flushInterval=100ms", "-remoteWrite.queues=1", `-remoteWrite.tmpDataPath=${path.join(work, "vmagent-queue")}`, "-loggerLevel=WARN"]);

    const instanceIds: string[] = [];
    for (const [i, node] of NODES.entries()) {
      const env = {
        K8S_NODE_NAME: node,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `http://${vmAt}/opentelemetry/v1/metrics`,
        OTEL_METRIC_EXPORT_INTERVAL: "250",
      };
      const opts = agentOptions(["--dir", path.join(dirs[i], "rings"), "--port", "0"], env);
      instanceIds.push(opts.otel.resource["service.instance.id"]);
      agents.push(await Agent.start(opts));
    }
    const targets = agents.map((a) => new URL(a.server!.url()!).host);
    const nodeOf = new Map<string, string>([...targets.map((t, i) => [t, NODES[i]] as const), ...instanceIds.map((t, i) => [t, NODES[i]] as const)]);

    // the scrape path
    scraper = await startPrometheus(PROMETHEUS, work, { name: "scraper", targets, extraConfig: ruleFiles });
    const [S, W] = [scraper.base, written.base];
    const logs = () => `scraper:\n${scraper!.log().slice(-1500)}\nwritten:\n${written!.log().slice(-1500)}\nvmagent:\n${vmagent!.log().slice(-1500)}`;
    await until("both agents scraped", async () => ((await query(S, 'up{job="tailguard"} == 1')).length === 2 ? true : undefined), 15_000, logs);

    // One process per node, 6 s long. A counter or bucket series is born holding what was counted before its first
    // sample, which rate() leaves out, and each path takes that sample at another moment (scraped every 1 s, pushed
    // every 250 ms): over 300 windows that is a few percent. (Two processes one after the other would share a label
    // set and give the second a pid label; see docs/metrics.md on what the push path keeps of a series that leaves.)
    const workload = path.join(nativeBuild, "tg-workload");
    const args = ["requests", "--rate", "50", "--count", "300", "--kernels", "2", "--kernel-us", "200"];
    const runs = await Promise.all(dirs.map((dir) => runProgram(workload, args, { env: simEnv(dir, { LD_PRELOAD: shimLib }) })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    for (const base of [S, W])
      await until(`${base === S ? "the scrape" : "the Collector"} path to have both nodes' 300 windows`, async () => {
        const r = await query(base, "sum by (instance) (tailguard_request_windows_total)");
        return r.length === 2 && r.every(([, v]) => v === 300) ? true : undefined;
      }, 10_000, logs);
    // and both have evaluated the recording rules on them
    for (const base of [S, W])
      await until("the recording rules evaluated", async () =>
        ((await query(base, "tailguard:request_windows:rate5m")).length === 2 ? true : undefined), 10_000, logs);
    await sleep(2_000);

    const at = Date.now() / 1000; // one evaluation time for both
    const ask = async (base: string, expr: string) => {
      const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}&time=${at}`);
      const body = (await res.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      if (body.status !== "success") throw new Error(`${expr} on ${base}: ${body.error}`);
      return body.data.result.map((r) => [r.metric, Number(r.value[1])] as Sample);
    };
    const queries = [...panelQueries(), ...ruleQueries()];
    expect(queries.length).toBeGreaterThan(20);
    let compared = 0;
    let nonEmpty = 0;
    for (const { source, expr, recordedFrom } of queries) {
      const [s, w] = [keyed(await ask(S, expr), nodeOf), keyed(await ask(W, expr), nodeOf)];
      expect([...w.keys()].sort(), `${source}: the same series by both paths\n${expr}`).toEqual([...s.keys()].sort());
      // The same counts and buckets, sampled at other moments (scraped every 1 s, pushed every 250 ms), so rates
      // extrapolate over slightly different spans, and a series is born holding what was counted before its first
      // sample, which rate() leaves out: sums and rates agree within 25 %. A bucket-precision quantile rests on the
      // few requests of its tail, which of them fall inside the window differs by those moments: it must land in the
      // same bucket or the next one.
      const bucketed = /histogram_quantile\(.*?(tailguard_\w+)_bucket/.exec(recordedFrom ?? expr);
      const bounds = bucketed
        ? [...new Set((await ask(S, `count by (le) (${bucketed[1]}_bucket)`)).map(([l]) => Number(l.le)))].sort((a, b) => a - b)
        : [];
      const bucketOf = (x: number) => bounds.findIndex((b) => x <= b);
      for (const [k, v] of s) {
        const x = w.get(k)!;
        const what = `${source} ${k}: scrape ${v}, Collector ${x}\n${expr}`;
        if (Number.isNaN(v)) expect(x, what).toBeNaN();
        else if (bucketed) expect(Math.abs(bucketOf(x) - bucketOf(v)), what).toBeLessThanOrEqual(1);
        else expect(Math.abs(x - v), what).toBeLessThanOrEqual(0.25 * Math.abs(v) + 1e-9);
      }
      compared++;
      if (s.size > 0) nonEmpty++;
    }
    // the comparison is not vacuous: most queries have series (the alerts' thresholds leave theirs empty)
    expect(nonEmpty, "queries with results").toBeGreaterThanOrEqual(10);
    expect(compared).toBeGreaterThanOrEqual(queries.length - 2);
    // vmagent wrote everything it got
    expect(vmagent.log()).not.toMatch(/rejected|cannot send/);
  } finally {
    await scraper?.stop();
    await stop(vmagent);
    await written?.stop();
    for (const agent of agents) await agent.stop();
  }
}, 60_000);
