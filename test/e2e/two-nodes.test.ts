// Issue 17's acceptance on two nodes: two agents with different node identities (K8S_NODE_NAME), each with a process
// on its own simulated GPU. Their OTLP metrics, decoded with the official protobuf definitions (otlp-receiver.ts),
// carry distinct resources; and a real Prometheus (the Debian package `prometheus`) scraping both as two targets gives
// distinct series, on which the dashboard's own request-latency query returns one result per node.
import path from "node:path";
import { expect, it } from "vitest";

import { Agent } from "../../agent/src/agent.js";
import { agentOptions } from "../../agent/src/cli/agent.js";
import { requireComponent } from "../support/components.js";
import { panelQuery } from "../support/dashboard.js";
import { query, type RunningPrometheus, startPrometheus, until } from "../support/prometheus.js";
import { nativeBuild, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { startOtlpReceiver, type OtlpReceiver } from "../support/otlp-receiver.js";

const NODES = ["node-a", "node-b"];
const PANEL = "Request latency P99 by process (histogram_quantile, bucket precision)";

it("two agents on two nodes: distinct OTLP resources, and the dashboard's latency query gives one result per node", async () => {
  const PROMETHEUS = requireComponent("prometheus");
  const expr = panelQuery(PANEL);
  expect(expr).not.toContain("$");

  const receiver: OtlpReceiver = await startOtlpReceiver();
  const dirs = NODES.map((node) => testDir(`two-nodes-${node}`));
  const agents: Agent[] = [];
  let prometheus: RunningPrometheus | null = null;
  try {
    for (const [i, node] of NODES.entries()) {
      const env = {
        K8S_NODE_NAME: node,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${receiver.url}/v1/metrics`,
        OTEL_METRIC_EXPORT_INTERVAL: "200",
      };
      agents.push(await Agent.start(agentOptions(["--dir", path.join(dirs[i], "rings"), "--port", "0"], env)));
    }
    const targets = agents.map((a) => new URL(a.server!.url()!).host);
    expect(new Set(targets).size).toBe(2);

    prometheus = await startPrometheus(PROMETHEUS, dirs[0], { targets });
    const base = prometheus.base;
    const logOf = prometheus.log;
    // Prometheus 2.42 hands static targets to its scrape manager only after its discovery throttle (5 s)
    await until("both agents scraped", async () => ((await query(base, 'up{job="tailguard"} == 1')).length === 2 ? true : undefined),
      15_000, logOf);

    // one process per node, on that node's simulated GPU; long enough (about 2 s) to span several scrapes, so that
    // rate() over its buckets sees an increase
    const workload = path.join(nativeBuild, "tg-workload");
    const args = ["requests", "--rate", "50", "--count", "100", "--kernels", "2", "--kernel-us", "200"];
    const runs = await Promise.all(dirs.map((dir) => runProgram(workload, args, { env: simEnv(dir, { LD_PRELOAD: shimLib }) })));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    for (const agent of agents) expect(agent.stats().windows).toBeGreaterThan(0);

    // OTLP: each agent's metrics under its own resource
    const resources = await until(
      "both agents' request windows pushed over OTLP",
      async () => {
        const byNode = new Map<unknown, Record<string, unknown>>();
        for (const m of receiver.metrics()) if (m.name === "tailguard.request.windows" && m.points.length > 0) byNode.set(m.resource["k8s.node.name"], m.resource);
        return NODES.every((n) => byNode.has(n)) ? NODES.map((n) => byNode.get(n)!) : undefined;
      },
      5_000,
      () => JSON.stringify([...new Set(receiver.metrics().map((m) => JSON.stringify(m.resource)))]),
    );
    expect(receiver.requests.filter((q) => q.signal === "metrics").every((q) => q.encoding === "protobuf")).toBe(true);
    const [a, b] = resources;
    for (const [i, r] of resources.entries()) {
      expect(r).toMatchObject({ "service.name": "tailguard", "k8s.node.name": NODES[i] });
      expect(r["service.instance.id"]).toEqual(expect.any(String));
      expect(r["host.name"]).toEqual(expect.any(String));
    }
    expect(a["service.instance.id"]).not.toBe(b["service.instance.id"]);
    // every resource the receiver saw is one of the two: no metric went out without its node's identity
    expect(new Set(receiver.metrics().map((m) => m.resource["k8s.node.name"]))).toEqual(new Set(NODES));

    // Prometheus: the dashboard's query returns one finite P99 per agent, told apart by `instance`
    const results = await until(
      `the dashboard's "${PANEL}" query to give a result per agent`,
      async () => {
        const r = await query(base, expr);
        return r.length === 2 && r.every(([, v]) => Number.isFinite(v)) ? r : undefined;
      },
      6_000,
      logOf,
    );
    expect(results.map(([labels]) => labels.instance).sort()).toEqual([...targets].sort());
    for (const [, p99] of results) expect(p99).toBeGreaterThan(0);
    // and the dashboard's node variable (label_values(tailguard_processes_attached, instance)) offers both
    const res = await fetch(`${base}/api/v1/label/instance/values?match[]=tailguard_processes_attached`);
    expect(((await res.json()) as { data: string[] }).data.sort()).toEqual([...targets].sort());
  } finally {
    await prometheus?.stop();
    for (const agent of agents) await agent.stop();
    await receiver.close();
  }
}, 25_000);
