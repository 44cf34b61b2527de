// The layout is the architecture (README "Layout"): agent/src's rooms import downwards only, with no circle among its
// files, nothing but the `tailguard` entry imports `tailguard bench`, and every path the README's layout table names
// exists.
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { root } from "../support/native.js";

const SRC = path.join(root, "agent/src");

/** What each room may import (besides itself): the layers, from the top down. */
const ALLOWED: Record<string, string[]> = {
  "cli.ts": ["*"],
  "bench/": ["cli/", "ingest/", "telemetry/", "model.ts", "stats.ts", "sim-models.ts"],
  "cli/": ["agent.ts", "identity.ts", "serve/", "telemetry/", "ingest/", "model.ts", "stats.ts", "sim-models.ts"],
  "agent.ts": ["identity.ts", "serve/", "telemetry/", "ingest/", "model.ts", "stats.ts"],
  "identity.ts": ["telemetry/", "ingest/", "model.ts"],
  "serve/": ["telemetry/", "model.ts", "stats.ts"],
  "telemetry/": ["model.ts", "stats.ts"],
  "ingest/": ["model.ts"],
  "model.ts": [],
  "stats.ts": [],
  "sim-models.ts": [],
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []);
}

const roomOf = (file: string) => {
  const parts = path.relative(SRC, file).split(path.sep);
  return parts.length > 1 ? `${parts[0]}/` : parts[0];
};

/** file -> the agent/src files it imports (relative imports, static and dynamic). */
function imports(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of sources(SRC)) {
    const text = readFileSync(f, "utf8");
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)]
      .map((m) => path.normalize(path.join(path.dirname(f), m[1])).replace(/\.js$/, ".ts"))
      .filter((t) => t.startsWith(SRC + path.sep));
    out.set(f, targets);
  }
  return out;
}

describe("agent/src's rooms", () => {
  const graph = imports();

  it("every file is in a room the architecture names", () => {
    const unknown = [...graph.keys()].map(roomOf).filter((r) => !(r in ALLOWED));
    expect([...new Set(unknown)]).toEqual([]);
  });

  it("each room imports only from the rooms below it", () => {
    const wrong: string[] = [];
    for (const [f, targets] of graph)
      for (const t of targets) {
        const from = roomOf(f), to = roomOf(t);
        if (from !== to && !ALLOWED[from].includes("*") && !ALLOWED[from].includes(to))
          wrong.push(`${path.relative(SRC, f)} -> ${path.relative(SRC, t)}`);
      }
    expect(wrong).toEqual([]);
  });

  it("no file imports itself back through others", () => {
    const state = new Map<string, "open" | "done">();
    const circles: string[] = [];
    const visit = (f: string, trail: string[]) => {
      if (state.get(f) === "done") return;
      if (state.get(f) === "open") {
        circles.push([...trail.slice(trail.indexOf(f)), f].map((x) => path.relative(SRC, x)).join(" -> "));
        return;
      }
      state.set(f, "open");
      for (const t of graph.get(f) ?? []) visit(t, [...trail, f]);
      state.set(f, "done");
    };
    for (const f of graph.keys()) visit(f, []);
    expect(circles).toEqual([]);
  });
});

describe("agent/src's types", () => {
  it("no value is cast through unknown (the type system is told the truth, not overruled)", () => {
    const casts = sources(SRC).flatMap((f) => readFileSync(f, "utf8").split("\n")
      .flatMap((line, i) => (/\bas unknown as\b/.test(line) ? [`${path.relative(SRC, f)}:${i + 1}`] : [])));
    expect(casts).toEqual([]);
  });
});

describe("the README's layout table", () => {
  it("names only paths that exist", () => {
    const readme = readFileSync(path.join(root, "README.md"), "utf8");
    const table = readme.slice(readme.indexOf("## Layout"));
    const named = [...table.matchAll(/`((?:native|agent|test|bench|collectors|dashboards|deploy|docs)\/[^`\s]*)`/g)].map((m) => m[1]);
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((p) => !existsSync(path.join(root, p)))).toEqual([]);
  });
});
