// How long a gone process stays in the agent's metrics and live view is one constant, FORGET_AFTER_MS
// (agent/src/model.ts): `tailguard agent` uses it, and every doc that states the time states its value.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { agentOptions } from "../../agent/src/cli/agent.js";
import { FORGET_AFTER_MS } from "../../agent/src/model.js";
import { root } from "../support/native.js";

const docs = ["README.md", ...readdirSync(path.join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** A duration as the docs write it: "5 minutes", "1 minute", "90 s". */
function spoken(ms: number): string {
  if (ms % 60_000 === 0) return ms === 60_000 ? "1 minute" : `${ms / 60_000} minutes`;
  return `${ms / 1000} s`;
}

/** Each sentence of the docs about forgetting a gone process that states a duration: [file, sentence, durations]. */
function statements(): [string, string, string[]][] {
  const out: [string, string, string[]][] = [];
  for (const f of docs) {
    const text = readFileSync(path.join(root, f), "utf8").replace(/\s*\n\s*/g, " ");
    for (const sentence of text.split(/(?<=\.)\s+(?=[A-Z`])/)) {
      // about how long a gone process stays, not what else the sentence says of it
      if (!/forget|gone process/i.test(sentence) || !/\b(stays?|kept|listed|exported)\b/.test(sentence)) continue;
      const durations = [...sentence.matchAll(/\b\d[\d,.]*\s?(?:s|seconds?|minutes?|min)\b/g)].map((m) => m[0]);
      if (durations.length > 0) out.push([f, sentence, durations]);
    }
  }
  return out;
}

describe("the forget time of gone processes", () => {
  it("is FORGET_AFTER_MS in `tailguard agent`", () => {
    expect(agentOptions([], {}).forgetAfterMs).toBe(FORGET_AFTER_MS);
  });

  it("is stated as FORGET_AFTER_MS wherever the docs state it (docs/metrics.md, docs/agent.md)", () => {
    const found = statements();
    expect(found.map(([f]) => f)).toEqual(expect.arrayContaining(["docs/metrics.md", "docs/agent.md"]));
    for (const [f, sentence, durations] of found) expect(durations, `${f}: ${sentence}`).toEqual([spoken(FORGET_AFTER_MS)]);
  });
});
