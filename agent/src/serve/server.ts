// The agent's one HTTP server: Prometheus scrapes /metrics (telemetry/metrics.ts renders it), people and
// `tailguard top` read the live view (web.ts), all under the connection limits and timeouts of http-limits.ts.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

import { DEFAULT_HTTP_LIMITS, LISTEN_BACKLOG, limitedServer, type HttpLimits, type HttpLimitStats } from "./http-limits.js";

export type Route = (req: IncomingMessage, res: ServerResponse) => void;

/** Where the server listens, and its limits (DEFAULT_HTTP_LIMITS where not given). */
export interface ServerEndpoint extends Partial<HttpLimits> {
  /** default 127.0.0.1 */
  host?: string;
  /** 0 picks a free port */
  port: number;
}

/** Drops the keys whose value is undefined (so that they do not override the defaults when spread). */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export class AgentServer {
  /** resolves when it listens (rejects if it cannot bind) */
  readonly ready: Promise<void>;
  private readonly server;
  private readonly stats: () => HttpLimitStats;
  private closing: Promise<void> | null = null;

  /** routes: path → handler; any other path is a 404. */
  constructor(endpoint: ServerEndpoint, routes: Record<string, Route>) {
    const table = new Map(Object.entries(routes));
    const { host = "127.0.0.1", port, ...limits } = endpoint;
    const { server, stats } = limitedServer((req, res) => {
      const route = table.get((req.url ?? "").split("?")[0]);
      if (route) route(req, res);
      else res.writeHead(404).end();
    }, { ...DEFAULT_HTTP_LIMITS, ...defined(limits) });
    this.server = server;
    this.stats = stats;
    this.ready = new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve());
    });
    this.ready.catch(() => {}); // an owner that never awaits `ready` must not die of an unhandled rejection
  }

  /** What the connection limit did so far (http-limits.ts). */
  connections(): HttpLimitStats {
    return this.stats();
  }

  /** The URL of a path it serves, once `ready` (null before). */
  url(pathname = "/metrics"): string | null {
    const addr = this.server.address() as AddressInfo | null;
    if (!addr) return null;
    const host = addr.address.includes(":") ? `[${addr.address}]` : addr.address;
    return `http://${host}:${addr.port}${pathname}`;
  }

  /** Stops listening and closes its connections (at most once: later calls wait for the first). */
  close(): Promise<void> {
    this.closing ??= this.server.listening
      ? new Promise<void>((resolve) => this.server.close(() => resolve()))
      : Promise.resolve();
    return this.closing;
  }
}
