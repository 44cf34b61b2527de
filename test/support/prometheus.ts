// Talking to a real Prometheus from a test (test/e2e/prometheus.test.ts, two-nodes.test.ts, exemplars.test.ts,
// collector-path.test.ts): starting one, its HTTP query API, and waiting for what it has not scraped yet.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** A TCP port free on 127.0.0.1 now, for a server that cannot be told to take port 0 (Prometheus). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One instant query through Prometheus's HTTP API: the vector's samples as [labels, value]. */
export async function query(base: string, promql: string): Promise<[Record<string, string>, number][]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== "success") throw new Error(`${promql}: ${body.error}`);
  return body.data.result.map((r) => [r.metric, Number(r.value[1])]);
}

/** `fn`'s first answer other than undefined (a throw counts as none), polled every 100 ms for `ms`; then an error
 *  naming `what`, with the end of `log()` (what the server said, or what was last seen). */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, ms: number, log: () => string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last seen:\n${log().slice(-3000)}`);
    await sleep(100);
  }
}

export interface RunningPrometheus {
  /** http://127.0.0.1:PORT */
  base: string;
  /** what it printed so far */
  log(): string;
  /** SIGTERM, SIGKILL after 5 s; resolves when it has exited */
  stop(): Promise<void>;
}

/**
 * A real Prometheus (`binary`, from requireComponent("prometheus")) on a free port with its data in `dir`, ready to
 * answer: scraping `targets` (host:port) as job "tailguard" every second, evaluating every second, with `extraConfig`
 * (top-level YAML, e.g. rule_files) and `args` (e.g. --enable-feature=exemplar-storage) added.
 */
export async function startPrometheus(
  binary: string,
  dir: string,
  { targets = [], extraConfig = "", args = [], name = "prometheus" }: { targets?: string[]; extraConfig?: string; args?: string[]; name?: string } = {},
): Promise<RunningPrometheus> {
  const config = path.join(dir, `${name}.yml`);
  const scrape = targets.length
    ? `scrape_configs:\n  - job_name: tailguard\n    static_configs:\n      - targets: [${targets.map((t) => `"${t}"`).join(", ")}]\n`
    : "";
  writeFileSync(config, `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n${extraConfig}${scrape}`);
  const listen = `127.0.0.1:${await freePort()}`;
  let log = "";
  const proc = spawn(binary, [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, `${name}-data`)}`, `--web.listen-address=${listen}`, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout!.on("data", (d: Buffer) => (log += d));
  proc.stderr!.on("data", (d: Buffer) => (log += d));
  const exited = once(proc, "exit");
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    if (!(await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]))) {
      proc.kill("SIGKILL");
      await exited;
    }
  };
  const base = `http://${listen}`;
  try {
    await until("Prometheus to be ready", async () => ((await fetch(`${base}/-/ready`)).ok ? true : undefined), 10_000, () => log);
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, log: () => log, stop };
}
