// `tailguard run --record` and `tailguard doctor` next to a running agent, the normal deployment: both consumers get
// every record of every process (the ring's two consumer positions, tailguard/record.h), so a recording never says NOT
// ATTACHED for a shim that loaded, and the agent still sees and counts the process.
import path from "node:path";
import { describe, expect, it } from "vitest";

import { nativeBuild, simEnv, testDir } from "../support/native.js";
import { startAgent } from "../support/agent-process.js";
import { cli, recordRun } from "../support/tailguard.js";
import { runProgram } from "../support/native.js";

const workload = path.join(nativeBuild, "tg-workload");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("tailguard run --record beside a running agent", () => {
  it("20 of 20 runs attach, record every launch and exit 0; the agent counts the same launches", async () => {
    const work = testDir("run-agent");
    const agent = await startAgent(path.join(work, "rings"), ["--pid-label"]);
    const pids: number[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const rec = await recordRun(work, [workload, "requests", "--rate", "200", "--count", "10", "--kernels", "3", "--kernel-us", "100"]);
        expect(rec.run.code, `run ${i}: ${rec.run.stderr}`).toBe(0);
        expect(rec.run.stderr, `run ${i}`).not.toMatch(/NOT ATTACHED/);
        const launches = rec.of("launch");
        expect(launches, `run ${i}`).toHaveLength(30);
        pids.push(launches[0].pid);
      }
      // the agent drains the same rings: each process's 30 launches, in its metrics
      await sleep(500);
      const text = await (await fetch(agent.url)).text();
      for (const pid of pids) {
        const line = text.split("\n").find((l) => l.startsWith("tailguard_launches_total{") && l.includes(`pid="${pid}"`));
        expect(line, `the agent's launches of pid ${pid}`).toBeDefined();
        expect(Number(line!.split(" ").pop()), text.split("\n").filter((l) => l.includes(`pid="${pid}"`)).join("\n")).toBe(30);
      }
      // and doctor, which records its probes the same way, passes beside it
      for (let i = 0; i < 3; i++) {
        const d = await runProgram(process.execPath, [cli, "doctor", "--sim"], { env: simEnv(work) });
        expect(d.code, d.stdout + d.stderr).toBe(0);
      }
    } finally {
      await agent.stop();
    }
  });
});
