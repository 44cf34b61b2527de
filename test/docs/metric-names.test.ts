// Metric names are defined once, METRICS in agent/src/telemetry/metrics.ts (docs/metrics.md's table is proven against
// it in test/unit/metrics.test.ts; the dashboard's and the rules' queries against a running agent in
// dashboards.test.ts). Everything else that names a metric for people or tools -- the documents' prose and queries,
// the alerts' descriptions, the rules' unit tests, the deployment files -- names only metrics of that table. (Code,
// the bench's scripts included, takes the names from METRICS.)
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { METRICS, type MetricDefinition } from "../../agent/src/telemetry/metrics.js";
import { root } from "../support/native.js";

const PLACES = ["README.md", "CONTRIBUTING.md", "docs", "dashboards", "deploy", "collectors"];

function files(rel: string): string[] {
  const full = path.join(root, rel);
  if (!statSync(full).isDirectory()) return [rel];
  return readdirSync(full, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(rel, e.name)) : /\.(md|ya?ml|json|mjs|ts|sh|py)$|Dockerfile$/.test(e.name) ? [path.join(rel, e.name)] : []);
}

/** Every series name Prometheus can show: each metric's name, and a histogram's _bucket, _sum and _count. */
const exported = new Set(
  (Object.values(METRICS) as MetricDefinition[]).flatMap((d) =>
    d.type === "histogram" ? ["", "_bucket", "_sum", "_count"].map((s) => d.prometheus + s) : [d.prometheus]),
);

/** The application ABI's functions and types share the prefix (native/include/tailguard/tailguard.h): not metrics. */
const abi = new Set(readFileSync(path.join(root, "native/include/tailguard/tailguard.h"), "utf8").match(/\btailguard_[a-z0-9_]*[a-z0-9]\b/g));

describe("metric names outside the code", () => {
  it("name only metrics of METRICS", () => {
    const unknown: string[] = [];
    let named = 0;
    for (const file of PLACES.flatMap(files))
      readFileSync(path.join(root, file), "utf8").split("\n").forEach((line, i) => {
        for (const m of line.matchAll(/\btailguard_[a-z0-9_]*[a-z0-9]\b/g)) {
          named++;
          if (!exported.has(m[0]) && !abi.has(m[0])) unknown.push(`${file}:${i + 1}: ${m[0]}`);
        }
      });
    expect(named).toBeGreaterThan(50);
    expect(unknown).toEqual([]);
  });
});
