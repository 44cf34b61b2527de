// Talking to a real Prometheus from a test (test/e2e/prometheus.test.ts, two-nodes.test.ts): a port to give it, its
// HTTP query API, and waiting for what it has not scraped yet.
import { createServer } from "node:net";
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
