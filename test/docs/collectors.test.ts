// collectors/: the OpenTelemetry Collector pipeline, checked structurally (no Collector can be installed here): every
// pipeline names defined components of known types, every defined component is used, processors are in the order
// the Collector's documentation asks for, and the slow-request sampling threshold is the SLO of the alert rules.
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";

import { root } from "../support/native.js";

const config = parse(readFileSync(path.join(root, "collectors/otel-collector.yaml"), "utf8"));
const rules = parse(readFileSync(path.join(root, "dashboards/rules.yml"), "utf8"));

/** Component types this file may use (core and contrib), by section. */
const KNOWN: Record<string, string[]> = {
  receivers: ["otlp"],
  processors: ["memory_limiter", "batch", "tail_sampling"],
  exporters: ["otlp", "otlphttp", "prometheus", "prometheusremotewrite"],
  extensions: ["health_check"],
};
const typeOf = (id: string) => id.split("/")[0];

describe("the Collector pipeline", () => {
  it("names only defined components of known types, and uses every component it defines", () => {
    const used: Record<string, Set<string>> = { receivers: new Set(), processors: new Set(), exporters: new Set() };
    const pipelines = Object.entries(config.service.pipelines) as [string, Record<string, string[]>][];
    expect(pipelines.map(([name]) => name).sort()).toEqual(["metrics", "traces"]);
    for (const [name, p] of pipelines) {
      expect(p.receivers?.length, name).toBeGreaterThan(0);
      expect(p.exporters?.length, name).toBeGreaterThan(0);
      for (const section of ["receivers", "processors", "exporters"])
        for (const id of p[section] ?? []) {
          expect(config[section]?.[id], `${name}: ${section} ${id} is not defined`).toBeDefined();
          used[section].add(id);
        }
    }
    for (const section of ["receivers", "processors", "exporters"]) {
      expect(Object.keys(config[section]).sort(), `${section} defined but unused`).toEqual([...used[section]].sort());
      for (const id of Object.keys(config[section])) expect(KNOWN[section], id).toContain(typeOf(id));
    }
    for (const id of config.service.extensions) {
      expect(config.extensions[id]).toBeDefined();
      expect(KNOWN.extensions).toContain(typeOf(id));
    }
  });

  it("limits memory first and batches last; traces are tail-sampled before batching and go to Jaeger and Tempo", () => {
    for (const p of Object.values(config.service.pipelines) as { processors: string[] }[]) {
      expect(p.processors[0]).toBe("memory_limiter");
      expect(p.processors.at(-1)).toBe("batch");
    }
    expect(config.service.pipelines.traces.processors).toContain("tail_sampling");
    expect(config.service.pipelines.traces.exporters).toEqual(["otlp/jaeger", "otlp/tempo"]);
    expect(config.service.pipelines.metrics.exporters).toEqual(["prometheusremotewrite"]);
  });

  it("keeps traces of requests slower than the SLO the alert rules use, and of held launches", () => {
    const policies = config.processors.tail_sampling.policies as { name: string; type: string; [k: string]: any }[];
    const slow = policies.find((p) => p.type === "latency")!;
    const alert = rules.groups.flatMap((g: any) => g.rules).find((r: any) => r.alert === "TailguardHighPriorityP99AboveSLO");
    const slo = Number(/> ([0-9.]+) and/.exec(alert.expr)![1]);
    expect(slow.latency.threshold_ms).toBe(slo * 1000);
    const held = policies.find((p) => p.type === "string_attribute")!;
    expect(held.string_attribute.key).toBe("tailguard.hold.reason");
    // the hold reasons the agent's spans carry (agent/src/model.ts)
    expect(held.string_attribute.values.sort()).toEqual(["budget", "priority", "share"]);
  });

  it("keeps the traces the agent's exemplars name: the attribute its spans carry (agent/src/telemetry/spans.ts)", () => {
    const policies = config.processors.tail_sampling.policies as { name: string; type: string; [k: string]: any }[];
    const exemplars = policies.find((p) => p.name === "exemplars")!;
    expect(exemplars).toMatchObject({ type: "boolean_attribute", boolean_attribute: { key: "tailguard.exemplar", value: true } });
    const spans = readFileSync(path.join(root, "agent/src/telemetry/spans.ts"), "utf8");
    expect(spans).toContain('attributes["tailguard.exemplar"] = true;');
  });

  it("keeps traces with an error: the status the agent gives a request over its SLO (docs/agent.md, Spans)", () => {
    const policies = config.processors.tail_sampling.policies as { name: string; type: string; [k: string]: any }[];
    const errors = policies.find((p) => p.type === "status_code")!;
    expect(errors.name).toBe("errors");
    expect(errors.status_code.status_codes).toEqual(["ERROR"]);
    const agentDoc = readFileSync(path.join(root, "docs/agent.md"), "utf8");
    expect(agentDoc).toMatch(/Status: ERROR on a window longer than `--slo-ms`, at or above normal priority/);
  });
});
