// `tailguard agent` as its own process on a free port, for the tests that need the real daemon beside other
// processes. Every agent a test starts is killed after it (afterEach), even when the test failed before stopping it,
// so none outlives its test and slows the ones after.
import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach } from "vitest";

import { cli } from "./tailguard.js";

const started: ChildProcess[] = [];
afterEach(() => {
  for (const a of started.splice(0)) if (a.exitCode === null && a.signalCode === null) a.kill("SIGKILL");
});

export interface AgentProcess {
  /** its Prometheus endpoint */
  url: string;
  stdout(): string;
  stderr(): string;
  /** the sum of a metric's samples in a scrape now */
  metric(name: string): Promise<number>;
  /** SIGINT and its exit: whether it was still alive, its exit status and what it printed */
  stop(): Promise<{ alive: boolean; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export async function startAgent(dir: string, extra: string[] = []): Promise<AgentProcess> {
  const child = spawn(process.execPath, [cli, "agent", "--port", "0", "--dir", dir, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  started.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })));
  const end = Date.now() + 20_000;
  let m: RegExpExecArray | null;
  while (!(m = /Prometheus at (http:\S+\/metrics)/.exec(stdout))) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`the agent did not start: ${stdout}${stderr}`);
    await sleep(20);
  }
  const url = m[1];
  return {
    url,
    stdout: () => stdout,
    stderr: () => stderr,
    async metric(name) {
      const text = await (await fetch(url)).text();
      return text.split("\n").filter((l) => l.startsWith(name)).reduce((n, l) => n + Number(l.split(" ").pop()), 0);
    },
    async stop() {
      const alive = child.exitCode === null && child.signalCode === null;
      if (alive) child.kill("SIGINT");
      return { alive, ...(await done), stdout, stderr };
    },
  };
}
