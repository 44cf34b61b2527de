// AgentMetrics behind the agent's own server, as the agent composes them (agent.ts): /metrics is its scrape(), and
// any other routes given. For the tests of what a scrape shows and of the server itself.
import { AgentMetrics, type AgentMetricsOptions } from "../../agent/src/telemetry/metrics.js";
import { AgentServer, type Route, type ServerEndpoint } from "../../agent/src/serve/server.js";

export class ServedMetrics extends AgentMetrics {
  readonly server: AgentServer;

  constructor(opts: Omit<AgentMetricsOptions, "prometheus"> & { endpoint?: Partial<ServerEndpoint>; routes?: Record<string, Route> } = {}) {
    super({ ...opts, prometheus: true });
    this.server = new AgentServer({ port: 0, ...opts.endpoint }, { "/metrics": (req, res) => this.scrape(req, res), ...opts.routes });
  }

  get ready(): Promise<void> {
    return this.server.ready;
  }

  url(pathname = "/metrics"): string | null {
    return this.server.url(pathname);
  }

  connections() {
    return this.server.connections();
  }

  async shutdown(): Promise<void> {
    await this.server.close();
    await super.shutdown();
  }
}
