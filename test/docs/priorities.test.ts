// The priority words and range are defined once, TG_PRIORITY_* in native/include/tailguard/options.h. Their copies
// that must exist agree with it: the TypeScript mirror (Priority in agent/src/ingest/native.ts), the options table,
// every document, comment or message that restates a word with its number or the range, and every priority the
// deployment examples set.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";

import { native, Priority, PRIORITY_ACCEPTED } from "../../agent/src/ingest/native.js";
import { root } from "../support/native.js";

/** Where the words are restated for people: docs, configs, headers and sources (not tests, not bench results). */
const PLACES = ["README.md", "CONTRIBUTING.md", "docs", "dashboards", "deploy", "collectors", "native", "agent/src"];
const TEXT = /\.(md|ya?ml|json|c|cc|h|def|ts)$|Dockerfile$/;

function files(rel: string): string[] {
  const full = path.join(root, rel);
  if (!statSync(full).isDirectory()) return [rel];
  return readdirSync(full, { withFileTypes: true })
    .filter((e) => e.name !== "build")
    .flatMap((e) => (e.isDirectory() ? files(path.join(rel, e.name)) : TEXT.test(e.name) ? [path.join(rel, e.name)] : []));
}

const WORD: Record<string, number> = { high: Priority.HIGH, normal: Priority.NORMAL, low: Priority.LOW };

/** Every "high (10)"-style statement (the one form the documents use), and every range on a line about priorities. */
function statements() {
  const words: { where: string; word: string; value: number }[] = [];
  const ranges: { where: string; min: number; max: number }[] = [];
  for (const file of PLACES.flatMap(files))
    readFileSync(path.join(root, file), "utf8").split("\n").forEach((line, i) => {
      const where = `${file}:${i + 1}`;
      for (const m of line.matchAll(/\b(high|normal|low)`? \((-?\d+)\)/gi))
        words.push({ where, word: m[1].toLowerCase(), value: Number(m[2]) });
      if (/priorit/i.test(line))
        for (const m of line.matchAll(/(?<![\w.])(-\d+) ?(?:\.\.| to ) ?(\d+)\b/g))
          ranges.push({ where, min: Number(m[1]), max: Number(m[2]) });
    });
  return { words, ranges };
}

describe("priorities", () => {
  it("the TypeScript mirror is options.h's TG_PRIORITY_*", () => {
    expect(native().priorities).toEqual(Priority);
  });

  it("the options table says the same words, numbers and range", () => {
    const option = native().options().find((o) => o.variable === "TAILGUARD_PRIORITY")!;
    expect(option.accepted).toBe(PRIORITY_ACCEPTED);
    expect(option.default).toBe("normal");
    // and the words mean what they say to the parser the shim, the CLI and the policy share
    for (const [word, value] of Object.entries(WORD)) expect(native().parsePriority(word), word).toBe(value);
    expect(native().parsePriority(String(Priority.MIN - 1))).toBeNull();
    expect(native().parsePriority(String(Priority.MAX + 1))).toBeNull();
  });

  it("every document, comment and message that restates a word's number or the range agrees", () => {
    const { words, ranges } = statements();
    // the places a reader looks for them (README's prose and table, scheduling, the policy example, the rules)
    const seen = new Set(words.map((w) => w.where.split(":")[0]));
    for (const file of ["README.md", "docs/scheduling.md", "docs/security.md", "dashboards/rules.yml", "native/include/tailguard/options.def"])
      expect(seen, file).toContain(file);
    expect(words.filter((w) => w.value !== WORD[w.word])).toEqual([]);
    expect(ranges.length).toBeGreaterThan(3);
    expect(ranges.filter((r) => r.min !== Priority.MIN || r.max !== Priority.MAX)).toEqual([]);
  });

  it("every priority the deployment examples set is one the shim accepts", () => {
    const set: string[] = [];
    const visit = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(visit);
      else if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (o.name === "TAILGUARD_PRIORITY") set.push(String(o.value));
        if (typeof o.TAILGUARD_PRIORITY !== "undefined") set.push(String(o.TAILGUARD_PRIORITY));
        Object.values(o).forEach(visit);
      }
    };
    for (const file of files("deploy").filter((f) => /\.ya?ml$/.test(f)))
      for (const doc of readFileSync(path.join(root, file), "utf8").split(/^---$/m)) visit(parse(doc));
    expect(set.length).toBeGreaterThan(1);
    for (const value of set) expect(native().parsePriority(value), value).not.toBeNull();
  });
});
