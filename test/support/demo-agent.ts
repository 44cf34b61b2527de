// `tailguard agent --demo` on a free port and a test's own ring directory (its high- and low-priority tg-workloads on
// the simulated GPU), for the tests of what the agent serves: the live view (web.test.ts) and `tailguard top`
// (top.test.ts).
import { spawn } from "node:child_process";
import path from "node:path";

import type { LiveProcess, LiveSnapshot } from "../../agent/src/serve/live.js";
import { testDir } from "./native.js";
import { cli } from "./tailguard.js";

export interface DemoAgent {
  /** the live view, http://127.0.0.1:PORT/ */
  liveUrl: string;
  /** the Prometheus endpoint, http://127.0.0.1:PORT/metrics */
  metricsUrl: string;
  /** its ring directory (--dir), for other processes to attach to it */
  ringDir: string;
  /** what the agent printed so far */
  output(): string;
  state(): Promise<LiveSnapshot>;
  /** polls /api/state until both demo processes are attached with request windows */
  demoProcesses(timeoutMs?: number): Promise<{ high: LiveProcess; low: LiveProcess; state: LiveSnapshot }>;
  /** SIGINT, and its exit */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `env`: added to the agent's environment (the OTEL_* variables of an exporter, say). */
export async function startDemoAgent(prefix: string, env: Record<string, string> = {}): Promise<DemoAgent> {
  const ringDir = path.join(testDir(prefix), "rings");
  const child = spawn(process.execPath, [cli, "agent", "--demo", "--port", "0", "--dir", ringDir], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
    await exited;
  };
  const end = Date.now() + 30_000;
  let m: RegExpMatchArray | null = null;
  while (!(m = out.match(/live view at (http:\/\/127\.0\.0\.1:\d+\/)/))) {
    if (child.exitCode !== null || Date.now() > end) {
      await stop();
      throw new Error(`the agent did not print its live view's URL:\n${out}`);
    }
    await sleep(25);
  }
  const liveUrl = m[1];
  const state = async () => {
    const res = await fetch(new URL("api/state", liveUrl));
    if (!res.ok) throw new Error(`GET /api/state: ${res.status}`);
    return (await res.json()) as LiveSnapshot;
  };
  return {
    liveUrl,
    metricsUrl: new URL("metrics", liveUrl).toString(),
    ringDir,
    output: () => out,
    state,
    async demoProcesses(timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const s = await state();
        const high = s.processes.find((p) => p.service === "demo-inference" && p.windows > 0);
        const low = s.processes.find((p) => p.service === "demo-batch" && p.windows > 0);
        if (high && low) return { high, low, state: s };
        if (Date.now() > until) throw new Error(`the demo's processes did not show up in /api/state: ${JSON.stringify(s.processes)}`);
        await sleep(200);
      }
    },
    stop,
  };
}
