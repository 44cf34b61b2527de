// dashboards/: the Grafana dashboard and the Prometheus rules. The rules are checked and unit-tested by promtool (from
// Debian's `prometheus`, which .ci/run installs); every metric the dashboard and the rules name must be one the agent
// really exports, read from a running agent's /metrics; every percentile panel says how its percentile is computed.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { Agent } from "../../agent/src/agent.js";
import { agentOptions } from "../../agent/src/cli/agent.js";
import { requireComponent } from "../support/components.js";
import { nativeBuild, root, runProgram, shimLib, simEnv, testDir } from "../support/native.js";

const dashboards = path.join(root, "dashboards");
const dashboard = JSON.parse(readFileSync(path.join(dashboards, "tailguard.json"), "utf8"));
const rules = readFileSync(path.join(dashboards, "rules.yml"), "utf8");

function promtool(args: string[]): string {
  return execFileSync(requireComponent("promtool"), args, { cwd: dashboards, encoding: "utf8", stdio: "pipe" });
}

/** Every query in the dashboard: panel targets and template variables. */
function queries(): string[] {
  const out: string[] = [];
  for (const p of dashboard.panels) for (const t of p.targets ?? []) out.push(t.expr);
  for (const v of dashboard.templating.list) if (v.type === "query") out.push(v.query.query ?? v.query);
  return out;
}

describe("Prometheus rules", () => {
  it("pass promtool check rules", () => {
    expect(promtool(["check", "rules", "rules.yml"])).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("pass their unit tests: alerts fire, and stay quiet, when they should (promtool test rules)", () => {
    expect(promtool(["test", "rules", "rules.test.yml"])).toContain("SUCCESS");
  });
});

describe("the Grafana dashboard", () => {
  it("is a dashboard model with unique panel ids, a Prometheus datasource variable used everywhere, and node/GPU/service variables", () => {
    const ids = dashboard.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const vars = dashboard.templating.list;
    expect(vars.find((v: { name: string }) => v.name === "datasource")).toMatchObject({ type: "datasource", query: "prometheus" });
    expect(vars.map((v: { name: string }) => v.name)).toEqual(expect.arrayContaining(["node", "gpu", "service"]));
    for (const p of dashboard.panels) {
      expect(p.datasource?.uid, p.title).toBe("${datasource}");
      for (const t of p.targets) expect(t.datasource?.uid, p.title).toBe("${datasource}");
      expect(p.gridPos, p.title).toMatchObject({ w: expect.any(Number), h: expect.any(Number) });
    }
  });

  it("says on every percentile panel how its percentile is computed: histogram_quantile over buckets, or exact HDR", () => {
    const methods: Record<string, { query: RegExp; title: string; description: string[] }> = {
      buckets: {
        query: /\bhistogram_quantile\(/,
        title: "(histogram_quantile, bucket precision)",
        description: ["histogram_quantile over the buckets", "interpolates linearly", "bucket's width", "Two P99s"],
      },
      exact: {
        query: /\btailguard_[a-z_]+_percentile_seconds\b/,
        title: "(exact, HDR since attach)",
        description: ["exact, from the agent's HDR histogram", "cumulative since the agent began following", "Two P99s"],
      },
    };
    const percentilePanels = dashboard.panels.filter(
      (p: { title: string; targets?: { expr: string }[] }) =>
        /\bP\d+|percentile|quantile/i.test(p.title) ||
        (p.targets ?? []).some((t) => Object.values(methods).some((m) => m.query.test(t.expr))),
    );
    expect(percentilePanels.length).toBeGreaterThanOrEqual(5);
    for (const p of percentilePanels) {
      const used = Object.entries(methods).filter(([, m]) => p.targets.some((t: { expr: string }) => m.query.test(t.expr)));
      expect(used.map(([name]) => name), `${p.title}: one method per panel`).toHaveLength(1);
      const [, m] = used[0];
      expect(p.title, p.title).toContain(m.title);
      for (const words of m.description) expect(p.description ?? "", p.title).toContain(words);
    }
    const doc = readFileSync(path.join(root, "docs/metrics.md"), "utf8");
    expect(doc).toContain("### Two P99s");
  });

  it("shows exemplars on the panels over the request-latency and hold-time buckets, and only there", () => {
    const withExemplars = /\btailguard_(request_latency|hold_time)_seconds_bucket\b/;
    const targets = dashboard.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => ({ panel: p.title, ...t })));
    const latency = targets.filter((t: any) => withExemplars.test(t.expr));
    expect(latency.length).toBeGreaterThanOrEqual(3);
    for (const t of targets) expect(t.exemplar === true, t.panel).toBe(withExemplars.test(t.expr));
  });

  it("and the rules name only metrics a running agent exports", async () => {
    const dir = testDir("dashboards");
    const agent = await Agent.start(agentOptions(["--dir", path.join(dir, "rings"), "--port", "0"], {}));
    let text: string;
    try {
      const r = await runProgram(path.join(nativeBuild, "tg-workload"), ["requests", "--rate", "100", "--count", "10", "--kernels", "2", "--kernel-us", "100"],
        // kernel timing on (the simulated CUPTI): the kernel device-time panels' metric is exported only then
        { env: simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "high", TAILGUARD_KERNEL_TIMING: "all" }) });
      expect(r.code, r.stderr).toBe(0);
      const end = Date.now() + 10_000;
      while (agent.stats().windows < 10 && Date.now() < end) await new Promise((res) => setTimeout(res, 25));
      // the kernel times come at the process's exit (CUPTI's last flush), after its last window
      text = await (await fetch(agent.server!.url()!)).text();
      while (!text.includes("tailguard_kernel_gpu_time_seconds_bucket") && Date.now() < end) {
        await new Promise((res) => setTimeout(res, 50));
        text = await (await fetch(agent.server!.url()!)).text();
      }
    } finally {
      await agent.stop();
    }
    const exported = new Set(text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]));
    const named = (exprs: string[]) => new Set(exprs.flatMap((e) => e.match(/\btailguard_[a-z_]+\b/g) ?? []));
    const fromDashboard = named(queries());
    const fromRules = named(rules.split("\n").filter((l) => l.trim().startsWith("expr:")));
    expect(fromDashboard.size).toBeGreaterThan(8);
    expect(fromRules.size).toBeGreaterThan(3);
    expect([...fromDashboard].filter((m) => !exported.has(m))).toEqual([]);
    expect([...fromRules].filter((m) => !exported.has(m))).toEqual([]);
  });
});
