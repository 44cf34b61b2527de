// What the agent follows while a process runs (docs/agent.md, "What follows live"): a `tailguard priority` change of a
// running process reaches /metrics (its series under the new label, the old one gone), /api/state and the spans of
// later windows within 2 s, with the real agent, the real CLI and a workload on the simulated GPU.
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

import { startAgent } from "../support/agent-process.js";
import { nativeBuild, runProgram, shimLib, simEnv, testDir } from "../support/native.js";
import { resourceSpansOf } from "../support/spans-file.js";
import { cli } from "../support/tailguard.js";

const workload = path.join(nativeBuild, "tg-workload");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `what` until it gives a value, until `ms` after `t0` (epoch ms; default now); returns it and when, after t0. */
async function within<T>(ms: number, what: () => Promise<T | undefined> | T | undefined, t0 = Date.now()): Promise<{ value: T | undefined; ms: number }> {
  for (;;) {
    const value = await what();
    if (value !== undefined || Date.now() - t0 > ms) return { value, ms: Date.now() - t0 };
    await sleep(25);
  }
}

/** The request spans of a process in an OTLP/JSON-lines spans file: their start (epoch ns) and tailguard.priority. */
function requestSpans(file: string, pid: number): { start: bigint; priority: number }[] {
  const out: { start: bigint; priority: number }[] = [];
  for (const rs of resourceSpansOf(file)) {
    const attr = (key: string) => rs.resource.attributes.find((a: any) => a.key === key)?.value;
    if (Number(attr("process.pid")?.intValue) !== pid) continue;
    const priority = Number(attr("tailguard.priority")?.intValue);
    for (const ss of rs.scopeSpans) for (const s of ss.spans) if (s.name === "request") out.push({ start: BigInt(s.startTimeUnixNano), priority });
  }
  return out;
}

describe("the agent follows a running process's priority", () => {
  it("tailguard priority PID high: /metrics, /api/state and later spans carry it within 2 s; the old series is gone", async () => {
    const dir = testDir("follow");
    const spansFile = path.join(dir, "spans.jsonl");
    // every window a span (--spans all): the low-priority windows before the change are what the spans are checked on
    const agent = await startAgent(path.join(dir, "rings"), ["--spans-file", spansFile, "--pid-label", "--spans", "all"]);
    const env = simEnv(dir, { LD_PRELOAD: shimLib, TAILGUARD_PRIORITY: "low" });
    const child = spawn(workload, ["requests", "--rate", "50", "--count", "1000", "--kernels", "2", "--kernel-us", "500"],
      { env, stdio: "ignore" });
    const pid = child.pid!;
    const series = async () => {
      const text = await (await fetch(agent.url)).text();
      return text.split("\n").filter((l) => l.startsWith("tailguard_launches_total{") && l.includes(`pid="${pid}"`));
    };
    try {
      const before = await within(20_000, async () => ((await series()).length > 0 ? await series() : undefined));
      expect(before.value, "the process's series under its first priority").toEqual([expect.stringContaining('priority="-10"')]);
      await within(10_000, () => (requestSpans(spansFile, pid).length > 0 ? true : undefined));
      expect(requestSpans(spansFile, pid).every((s) => s.priority === -10)).toBe(true);

      const asked = BigInt(Date.now()) * 1_000_000n;
      const changed = await runProgram(process.execPath, [cli, "priority", String(pid), "high"], { env: { ...env, LD_PRELOAD: "" } });
      const done = Date.now();
      expect(changed.code, changed.stderr).toBe(0);
      // above the user's ceiling (the default policy: normal for users other than root) it takes the ceiling
      const now = process.getuid?.() === 0 ? 10 : 0;
      expect(changed.stdout).toContain(`priority -10 -> ${now}`);

      const metrics = await within(2000, async () => {
        const lines = await series();
        return lines.length === 1 && lines[0].includes(`priority="${now}"`) ? lines : undefined;
      }, done);
      expect(metrics.value, `/metrics after ${metrics.ms} ms: ${(await series()).join("\n")}`).toBeDefined();
      // the old label set is no longer exported anywhere: Prometheus sees it go stale, not two live series
      const text = await (await fetch(agent.url)).text();
      expect(text.split("\n").filter((l) => l.includes(`pid="${pid}"`) && l.includes('priority="-10"'))).toEqual([]);

      const state = await within(2000, async () => {
        const s = await (await fetch(agent.url.replace(/\/metrics$/, "/api/state"))).json();
        return s.processes.find((p: any) => p.pid === pid && p.priority === now);
      }, done);
      expect(state.value, `/api/state after ${state.ms} ms`).toBeDefined();
      expect(state.value.windows).toBeGreaterThan(0); // the same process, its counts kept

      const spans = await within(2000, () => (requestSpans(spansFile, pid).some((s) => s.priority === now) ? true : undefined), done);
      expect(spans.value, `spans after ${spans.ms} ms`).toBe(true);
      // a window's span has the priority in force when it began: none that began before the change was asked has the new one
      const all = requestSpans(spansFile, pid);
      expect(all.filter((s) => s.priority === now && s.start < asked)).toEqual([]);
      expect(all.filter((s) => s.priority === -10).length).toBeGreaterThan(0);
    } finally {
      child.kill("SIGKILL");
      await agent.stop();
    }
  });
});
