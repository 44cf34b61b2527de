// docs/agent.md's table of OpenTelemetry variables names exactly those otel-env.ts reads (watched as it reads them),
// and no other file of agent/src reads an OTEL_* variable itself.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { otelConfig, otelIdentity, type Env } from "../../agent/src/telemetry/otel-env.js";
import { root } from "../support/native.js";

/** The variables named in the first column of the table under "## OpenTelemetry variables". */
function documented(): string[] {
  const doc = readFileSync(path.join(root, "docs/agent.md"), "utf8");
  const section = doc.split(/^## OpenTelemetry variables$/m)[1]?.split(/^## /m)[0] ?? "";
  const firstColumns = section.split("\n").filter((l) => l.startsWith("| `")).map((l) => l.split("|")[1]);
  return [...new Set(firstColumns.flatMap((c) => [...c.matchAll(/`(OTEL_[A-Z_]+)`/g)].map((m) => m[1])))].sort();
}

/** The table of the agent's own resource attributes, in the same section. */
function resourceTable(): string {
  const doc = readFileSync(path.join(root, "docs/agent.md"), "utf8");
  const section = doc.split(/^## OpenTelemetry variables$/m)[1]?.split(/^## /m)[0] ?? "";
  return section.split("\n").filter((l) => l.startsWith("| `k8s.node.name`")).join("\n");
}

/** The names otelConfig and otelIdentity look up in `env`, over configurations that leave nothing unread. */
function read(): string[] {
  const names = new Set<string>();
  const watched = (env: Record<string, string>): Env =>
    new Proxy(env, {
      get(target, key) {
        if (typeof key === "string") names.add(key);
        return target[key as string];
      },
    });
  // with both signals on and nothing else set, every signal-specific variable and its generic fallback is read
  for (const env of [{}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }, { OTEL_TRACES_EXPORTER: "otlp", OTEL_METRICS_EXPORTER: "otlp" }]) {
    otelConfig(watched(env));
    otelConfig(watched(env), { otlp: true });
    otelIdentity(watched(env));
  }
  return [...names].sort();
}

describe("OpenTelemetry variables", () => {
  it("docs/agent.md's table names every variable otel-env.ts reads, and nothing else", () => {
    const all = read();
    const reads = all.filter((n) => n.startsWith("OTEL_"));
    expect(reads.length).toBeGreaterThan(30);
    // besides: the node name the DaemonSet gives the agent's resource, in the table of what it detects
    expect(all.filter((n) => !n.startsWith("OTEL_"))).toEqual(["K8S_NODE_NAME", "NODE_NAME"]);
    expect(resourceTable()).toMatch(/`K8S_NODE_NAME` \(or `NODE_NAME`\)/);
    expect(documented()).toEqual(reads);
  });

  it("no other file of agent/src reads an OTEL_* variable", () => {
    const src = path.join(root, "agent/src");
    const files = readdirSync(src, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts") && f !== path.join("telemetry", "otel-env.ts"));
    const readers = files.filter((f) => {
      // code only: comments may name the variables
      const code = readFileSync(path.join(src, f), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
      return /\.\s*OTEL_[A-Z_]+|\[\s*["'`]OTEL_/.test(code);
    });
    expect(readers).toEqual([]);
  });
});
