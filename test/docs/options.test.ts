// Every TAILGUARD_* variable is defined once (native/include/tailguard/options.def); README.md's table must agree.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { native } from "../../agent/src/ingest/native.js";
import { root, runProgram, shimLib, simEnv, testDir } from "../support/native.js";

/** Rows of the README table under "## Options": | `VAR` | default | accepted | read by | meaning | */
function readmeOptions() {
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  const section = readme.split(/^## Options$/m)[1]?.split(/^## /m)[0] ?? "";
  return section
    .split("\n")
    .filter((l) => /^\| `TAILGUARD_/.test(l))
    .map((l) => l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()))
    .map(([v, d, a, r, m]) => ({ variable: v.replace(/`/g, ""), default: d.replace(/`/g, ""), accepted: a, readBy: r, meaning: m }));
}

describe("options table", () => {
  it("README.md lists exactly the options of options.def, with the same defaults and accepted values", () => {
    const code = native().options();
    const readme = readmeOptions();
    expect(readme.map((o) => o.variable)).toEqual(code.map((o) => o.variable));
    for (const o of code) {
      const row = readme.find((r) => r.variable === o.variable)!;
      expect(row.default, o.variable).toBe(o.default || "(unset)");
      expect(row.accepted, o.variable).toBe(o.accepted.replace(/\|/g, "\\|"));
      expect(row.readBy, o.variable).toBe(o.readBy);
      expect(row.meaning, o.variable).toBe(o.meaning.replace(/\|/g, "\\|"));
    }
  });

  it("README.md names every renamed variable's old name beside its new one", () => {
    const readme = readFileSync(path.join(root, "README.md"), "utf8").split(/^## Options$/m)[1]?.split(/^## /m)[0] ?? "";
    const renamed = native().options().filter((o) => o.formerly);
    expect(renamed.map((o) => [o.formerly, o.variable])).toContainEqual(["TAILGUARD_WINDOW_US", "TAILGUARD_BUDGET_US"]);
    for (const o of renamed) expect(readme.replace(/\s+/g, " "), o.formerly).toContain(`\`${o.formerly}\` is now \`${o.variable}\``);
  });

  it("TAILGUARD_PRIORITY and `tailguard run --priority` mean the same numbers: each reaches the shim's ring as such", async () => {
    const p = native().parsePriority; // the CLI's check of --priority, and the shim's own parser
    expect([p("101"), p("-101"), p("urgent"), p(""), p("1.5"), p("10x")]).toEqual([null, null, null, null, null, null]);
    const dir = testDir("priorities");
    const env = simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_SESSION: `${process.pid}-prio` });
    for (const [text, want] of [["high", 10], ["normal", 0], ["low", -10], ["LOW", -10], ["-100", -100], ["100", 100], ["7", 7]] as const) {
      expect(p(text), text).toBe(want);
      const r = await runProgram("/bin/true", [], { env: { ...env, TAILGUARD_PRIORITY: text } });
      expect(r.code).toBe(0);
      const ring = native().scanRings(env.TAILGUARD_DIR!).find((x) => x.pid === r.pid);
      expect(ring?.priority, `TAILGUARD_PRIORITY=${text} in the shim's ring`).toBe(want);
    }
  });
});
