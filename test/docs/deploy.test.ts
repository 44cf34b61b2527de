// deploy/: the Kubernetes manifests (DaemonSet and sidecar variants), the compose try-out and the image, checked
// structurally (no cluster or Docker here): the files parse, have the fields they need, and agree with each other and
// with the code — the shim's path in the image, the ring directory, the agent's options and port, the downward-API
// variables the agent reads for pod identity, the Collector's endpoints, the Prometheus job the rules watch, the
// datasource the dashboard picks. promtool (installed by .ci/run) checks the compose Prometheus configuration.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { parse, parseAllDocuments, parseDocument } from "yaml";
import { describe, expect, it } from "vitest";

import { resourceFromEnvironment } from "../../agent/src/identity.js";
import { AGENT_NODE_OPTIONS, AGENT_USAGE, agentOptions } from "../../agent/src/cli/agent.js";
import { requireComponent } from "../support/components.js";
import { root, testDir } from "../support/native.js";

const manifest = (name: string) =>
  parseAllDocuments(readFileSync(path.join(root, "deploy/kubernetes", name), "utf8")).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS();
  });
/** A container's environment; a downward-API variable as `<fieldPath>`, where the kubelet puts the field's value. */
const env = (c: any) =>
  Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value ?? (e.valueFrom?.fieldRef ? `<${e.valueFrom.fieldRef.fieldPath}>` : e.valueFrom)]));

describe("Kubernetes manifests", () => {
  const [daemonset] = manifest("agent-daemonset.yaml");
  const [workload] = manifest("workload-example.yaml");
  const agentPod = daemonset.spec.template.spec;
  const workPod = workload.spec.template.spec;

  it("run the agent on GPU nodes with the host's ring directory and PIDs, serving metrics on the agent's port", () => {
    expect(daemonset).toMatchObject({ apiVersion: "apps/v1", kind: "DaemonSet" });
    expect(daemonset.spec.selector.matchLabels).toEqual(daemonset.spec.template.metadata.labels);
    expect(agentPod.hostPID).toBe(true);
    const agent = agentPod.containers[0];
    const opts = agentOptions(agent.args.slice(1), env(agent));
    expect(agent.ports[0].containerPort).toBe(opts.prometheus!.port);
    expect(opts.prometheus!.host).toBe("0.0.0.0"); // scraped from outside the pod
    expect(opts.dir).toBe("/dev/shm/tailguard");
    // the agent's own resource names its node: agents of several nodes are told apart on every signal
    expect(opts.otel.resource["k8s.node.name"]).toBe("<spec.nodeName>");
    const rings = agentPod.volumes.find((v: any) => v.hostPath)!;
    expect(rings.hostPath.path).toBe(opts.dir);
    expect(agent.volumeMounts.find((m: any) => m.name === rings.name).mountPath).toBe(opts.dir);
  });

  it("preload the shim the init container copies from the image, and write rings where the agent reads them", () => {
    expect(workload).toMatchObject({ apiVersion: "apps/v1", kind: "Deployment" });
    expect(workload.spec.selector.matchLabels).toEqual(workload.spec.template.metadata.labels);
    const init = workPod.initContainers[0];
    const [, from, to] = init.command;
    expect(from).toBe("/opt/tailguard/native/build/libtailguard.so"); // where deploy/Dockerfile puts the build
    const server = workPod.containers[0];
    const vars = env(server);
    expect(vars.LD_PRELOAD).toBe(to);
    const shimVolume = init.volumeMounts[0].name;
    expect(server.volumeMounts.find((m: any) => m.name === shimVolume).mountPath).toBe(path.dirname(to));
    expect(vars.TAILGUARD_DIR).toBe("/dev/shm/tailguard");
    expect(workPod.volumes.find((v: any) => v.hostPath).hostPath.path).toBe(vars.TAILGUARD_DIR);
    expect(workPod.hostPID).toBeUndefined(); // its own PID namespace: arbitration and telemetry work across them
  });

  it("name the pod with the variables the agent reads for its Kubernetes resource attributes", () => {
    const vars = env(workPod.containers[0]);
    const named = Object.fromEntries(Object.keys(vars).filter((k) => k.startsWith("K8S_")).map((k) => [k, `value-of-${k}`]));
    expect(Object.keys(resourceFromEnvironment(named)).sort()).toEqual(["k8s.namespace.name", "k8s.node.name", "k8s.pod.name"]);
  });
});

describe("the image", () => {
  it("copies what the build makes, from the paths the build makes it", () => {
    const dockerfile = readFileSync(path.join(root, "deploy/Dockerfile"), "utf8");
    const copies = [...dockerfile.matchAll(/^COPY --from=build \/opt\/tailguard\/(\S+)/gm)].map((m) => m[1]);
    expect(copies).toEqual(expect.arrayContaining(["agent/dist", "build/Release/tailguard.node", "native/build", "node_modules"]));
    for (const p of copies) expect(existsSync(path.join(root, p)), p).toBe(true);
  });

  it("runs the agent with its heap settings, as npm start does", () => {
    const dockerfile = readFileSync(path.join(root, "deploy/Dockerfile"), "utf8");
    expect(/^ENV NODE_OPTIONS="([^"]*)"$/m.exec(dockerfile)?.[1]).toBe(AGENT_NODE_OPTIONS);
  });
});

/** The image's ENTRYPOINT (exec form) and the agent's subcommand, as the Dockerfile and the CLI's usage define them. */
const entrypoint: string[] = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(path.join(root, "deploy/Dockerfile"), "utf8"))![1]);
const agentSubcommand = AGENT_USAGE.trim().split(/\s+/)[0];

describe("the sidecar variant", () => {
  const [daemonset] = manifest("agent-daemonset.yaml");
  const [example] = manifest("workload-example.yaml");
  const [sidecar] = manifest("workload-sidecar.yaml");
  const pod = sidecar.spec.template.spec;
  const dsAgent = daemonset.spec.template.spec.containers[0];
  const agent = pod.containers.find((c: any) => c.image === dsAgent.image);
  const server = pod.containers.find((c: any) => c !== agent);

  it("is a workload whose server preloads the shim the same init container copies as in workload-example.yaml, and gets the GPU", () => {
    expect(sidecar).toMatchObject({ apiVersion: "apps/v1", kind: "Deployment" });
    expect(sidecar.spec.selector.matchLabels).toEqual(sidecar.spec.template.metadata.labels);
    expect(pod.containers).toHaveLength(2);
    expect(agent, "a container of the tailguard image").toBeDefined();
    const init = pod.initContainers[0];
    expect(init).toEqual(example.spec.template.spec.initContainers[0]);
    const to = init.command.at(-1);
    expect(env(server).LD_PRELOAD).toBe(to);
    const shim = server.volumeMounts.find((m: any) => m.name === init.volumeMounts[0].name);
    expect(shim).toMatchObject({ mountPath: path.dirname(to), readOnly: true });
    expect(pod.volumes.find((v: any) => v.name === shim.name).emptyDir).toBeDefined();
    expect(Number(server.resources.limits["nvidia.com/gpu"])).toBeGreaterThanOrEqual(1);
    expect(agent.resources?.limits?.["nvidia.com/gpu"]).toBeUndefined();
  });

  it("shares the rings through a memory-backed emptyDir at TAILGUARD_DIR in both containers, and one PID namespace, with no host access", () => {
    const opts = agentOptions(agent.args.slice(1), env(agent));
    expect(env(server).TAILGUARD_DIR).toBe(opts.dir);
    const memory = pod.volumes.filter((v: any) => v.emptyDir?.medium === "Memory");
    expect(memory).toHaveLength(1);
    for (const c of [server, agent]) expect(c.volumeMounts.find((m: any) => m.name === memory[0].name)?.mountPath, c.name).toBe(opts.dir);
    expect(pod.shareProcessNamespace).toBe(true); // the agent names rings, and checks liveness, by pid
    expect(pod.hostPID).toBeUndefined();
    expect(pod.volumes.filter((v: any) => v.hostPath)).toEqual([]);
  });

  it("runs a real `tailguard agent` serving metrics on the port the pod names and annotates for scraping", () => {
    expect(agent.command ?? entrypoint).toEqual(entrypoint);
    expect(agent.args[0]).toBe(agentSubcommand);
    const opts = agentOptions(agent.args.slice(1), env(agent)); // throws on an option the agent does not take
    expect(opts.prometheus!.host).toBe("0.0.0.0"); // scraped from outside the pod
    const metrics = agent.ports.find((p: any) => p.containerPort === opts.prometheus!.port);
    expect(metrics).toBeDefined();
    expect(agent.readinessProbe.httpGet.port).toBe(metrics.name);
    const annotations = sidecar.spec.template.metadata.annotations;
    expect(annotations["prometheus.io/scrape"]).toBe("true");
    expect(annotations["prometheus.io/port"]).toBe(String(opts.prometheus!.port));
    expect(agent.readinessProbe.httpGet.path).toBe(annotations["prometheus.io/path"] ?? "/metrics");
    expect(opts.otel.traces).not.toBeNull();
    expect(env(agent).OTEL_EXPORTER_OTLP_ENDPOINT).toBe(env(dsAgent).OTEL_EXPORTER_OTLP_ENDPOINT);
    expect(agent.resources.limits).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
    expect(agent.resources.requests).toMatchObject({ cpu: expect.anything(), memory: expect.anything() });
  });
});

describe("the compose try-out", () => {
  const deploy = path.join(root, "deploy");
  const doc = parseDocument(readFileSync(path.join(deploy, "compose.yaml"), "utf8"));
  const services: Record<string, any> = doc.toJS().services;
  const collectorConfig = parse(readFileSync(path.join(root, "collectors/otel-collector.yaml"), "utf8"));
  const rules = parse(readFileSync(path.join(root, "dashboards/rules.yml"), "utf8"));
  const dashboard = JSON.parse(readFileSync(path.join(root, "dashboards/tailguard.json"), "utf8"));
  const [daemonset] = manifest("agent-daemonset.yaml");

  /** A service's bind mounts: host path (absolute) and container path. */
  const mounts = (service: any): { source: string; target: string }[] =>
    (service.volumes ?? [])
      .map((v: any) => (typeof v === "string" ? { source: v.split(":")[0], target: v.split(":")[1] } : v))
      .filter((m: any) => /^[./~]/.test(m.source))
      .map((m: any) => ({ source: path.resolve(deploy, m.source), target: m.target }));
  /** The host file behind a container path of a service (a mount of it or of a folder holding it). */
  const hostFile = (service: any, containerPath: string): string | undefined => {
    for (const m of mounts(service)) {
      if (m.target === containerPath) return m.source;
      if (containerPath.startsWith(`${m.target}/`)) return path.join(m.source, containerPath.slice(m.target.length + 1));
    }
    return undefined;
  };
  /** Published ports: "IP:HOST:CONTAINER". */
  const ports = (service: any) =>
    (service.ports ?? []).map((p: string) => {
      const [ip, published, container] = String(p).split(":");
      return { ip, published: Number(published), container: Number(container) };
    });
  const flag = (service: any, name: string) => (service.command as string[]).find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  const url = (endpoint: string) => new URL(endpoint.includes("://") ? endpoint : `grpc://${endpoint}`);
  const agentOpts = () => agentOptions(services.agent.command.slice(1), services.agent.environment);

  it("parses; every service runs a pinned image or the tailguard image built from deploy/Dockerfile; local mounts exist; ports are local", () => {
    expect(doc.errors).toEqual([]);
    expect(Object.keys(services).sort()).toEqual(expect.arrayContaining(["agent", "collector", "grafana", "jaeger", "prometheus"]));
    for (const [name, s] of Object.entries(services)) {
      expect(s.image, `${name} names its image`).toEqual(expect.any(String));
      const tag = /^[^@]+:([^:/@]+)$/.exec(s.image)?.[1];
      expect(tag, `${name}: ${s.image} has no tag`).toBeDefined();
      expect(tag, name).not.toBe("latest");
      if (s.build) {
        expect(path.resolve(deploy, s.build.context, s.build.dockerfile)).toBe(path.join(deploy, "Dockerfile"));
        expect(path.resolve(deploy, s.build.context)).toBe(root);
        expect(s.image).toBe(daemonset.spec.template.spec.containers[0].image); // the Kubernetes manifests' image
      }
      for (const m of mounts(s)) expect(existsSync(m.source), `${name} mounts ${m.source}`).toBe(true);
      for (const p of ports(s)) {
        expect(p.ip, `${name} publishes ${p.published} beyond this machine`).toBe("127.0.0.1");
        expect(p.container, name).toBeGreaterThan(0);
      }
      for (const d of s.depends_on ?? []) expect(services, `${name} depends on ${d}`).toHaveProperty(d);
    }
  });

  it("runs the agent's demo, publishing its metrics port, spans to the Collector's OTLP/HTTP receiver, metrics once (by scrape)", () => {
    const agent = services.agent;
    expect(agent.command[0]).toBe(agentSubcommand); // after the image's ENTRYPOINT
    expect(agent.entrypoint ?? entrypoint).toEqual(entrypoint);
    const opts = agentOpts();
    expect(opts.demo).toBe(true);
    expect(opts.prometheus!.host).toBe("0.0.0.0");
    expect(ports(agent).map((p: any) => p.container)).toContain(opts.prometheus!.port);
    expect(opts.otel.traces?.url).toBe(new URL("v1/traces", `${agent.environment.OTEL_EXPORTER_OTLP_ENDPOINT}/`).href);
    const otlp = url(agent.environment.OTEL_EXPORTER_OTLP_ENDPOINT);
    expect(services).toHaveProperty(otlp.hostname);
    const collector = services[otlp.hostname];
    const configPath = collector.command ? flag(collector, "--config") : "/etc/otelcol-contrib/config.yaml";
    expect(hostFile(collector, configPath!)).toBe(path.join(root, "collectors/otel-collector.yaml"));
    expect(otlp.port).toBe(url(collectorConfig.receivers.otlp.protocols.http.endpoint).port);
    expect(opts.otel.metrics).toBeNull(); // OTEL_METRICS_EXPORTER=none: Prometheus scrapes them, once
  });

  it("has a service for every endpoint the Collector's exporters name, accepting what they send", () => {
    const exporters = Object.entries(collectorConfig.exporters) as [string, { endpoint: string }][];
    expect(exporters.length).toBeGreaterThan(0);
    for (const [id, e] of exporters) {
      const to = url(e.endpoint);
      expect(services, `${id} sends to ${to.hostname}`).toHaveProperty(to.hostname);
      const s = services[to.hostname];
      if (to.hostname === "jaeger") expect(s.environment.COLLECTOR_OTLP_ENABLED).toBe("true");
      if (to.hostname === "tempo") {
        const config = parse(readFileSync(hostFile(s, flag(s, "-config.file")!)!, "utf8"));
        expect(url(config.distributor.receivers.otlp.protocols.grpc.endpoint).port).toBe(to.port);
      }
      if (id.split("/")[0] === "prometheusremotewrite") {
        expect(s.image).toMatch(/^prom\/prometheus:/);
        expect(s.command).toContain("--web.enable-remote-write-receiver");
        expect(to.pathname).toBe("/api/v1/write");
      }
    }
    for (const p of Object.values(collectorConfig.receivers.otlp.protocols) as { endpoint: string }[])
      expect(ports(services.collector).map((x: any) => String(x.container))).toContain(url(p.endpoint).port);
  });

  describe("Prometheus", () => {
    const prometheus = services.prometheus;
    const configPath = flag(prometheus, "--config.file")!;
    const hostConfig = hostFile(prometheus, configPath)!;

    it("scrapes the agent on its port as the job the rules watch, and loads dashboards/rules.yml", () => {
      expect(hostConfig).toBe(path.join(deploy, "compose/prometheus.yml"));
      const config = parse(readFileSync(hostConfig, "utf8"));
      const exprs = rules.groups.flatMap((g: any) => g.rules).map((r: any) => r.expr).join("\n");
      const job = /up\{job="([^"]+)"\}/.exec(exprs)![1]; // the agent-down alert's job
      const scrape = config.scrape_configs.find((c: any) => c.job_name === job);
      expect(scrape, `a scrape job "${job}"`).toBeDefined();
      const targets = scrape.static_configs.flatMap((c: any) => c.targets);
      expect(targets).toEqual([`agent:${agentOpts().prometheus!.port}`]);
      expect(scrape.metrics_path ?? "/metrics").toBe("/metrics");
      expect(config.rule_files.length).toBeGreaterThan(0);
      for (const f of config.rule_files)
        expect(hostFile(prometheus, path.posix.resolve(path.posix.dirname(configPath), f))).toBe(path.join(root, "dashboards/rules.yml"));
    });

    it("passes promtool check config, laid out as the container sees it", () => {
      const promtool = requireComponent("promtool");
      const dir = testDir("deploy-prometheus");
      const inside = path.posix.dirname(configPath);
      for (const m of mounts(prometheus).filter((x) => x.target.startsWith(`${inside}/`))) {
        const to = path.join(dir, m.target.slice(inside.length + 1));
        mkdirSync(path.dirname(to), { recursive: true });
        copyFileSync(m.source, to);
      }
      let out: string;
      try {
        out = execFileSync(promtool, ["check", "config", path.join(dir, path.posix.basename(configPath))], { encoding: "utf8", stdio: "pipe" });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect(out).toMatch(/SUCCESS: \d+ rule files found/);
      expect(out).toMatch(/is valid prometheus config file syntax/);
      expect(out).toMatch(/SUCCESS: \d+ rules found/);
    });
  });

  describe("Grafana", () => {
    const grafana = services.grafana;
    const provisioned = (kind: string) => {
      const files = mounts(grafana).filter((m) => m.target.startsWith(`/etc/grafana/provisioning/${kind}/`));
      expect(files.length, kind).toBeGreaterThan(0);
      return files.map((m) => parse(readFileSync(m.source, "utf8")));
    };

    it("provisions a default Prometheus datasource, the one the dashboard's datasource variable starts on, and backends of this file", () => {
      const datasources = provisioned("datasources").flatMap((f) => f.datasources);
      const variable = dashboard.templating.list.find((v: any) => v.type === "datasource");
      const candidates = datasources.filter((d: any) => d.type === variable.query);
      expect(candidates.filter((d: any) => d.isDefault)).toHaveLength(1);
      expect(datasources.filter((d: any) => d.isDefault)).toHaveLength(1);
      // every datasource uid the dashboard names is its variable or a provisioned datasource
      const uids = new Set<string>();
      const walk = (x: any): void => {
        if (Array.isArray(x)) x.forEach(walk);
        else if (x && typeof x === "object")
          for (const [k, v] of Object.entries(x)) (k === "datasource" && (v as any)?.uid ? uids.add((v as any).uid) : walk(v));
      };
      walk(dashboard);
      expect(uids.size).toBeGreaterThan(0);
      for (const uid of uids) if (uid !== `\${${variable.name}}`) expect(datasources.map((d: any) => d.uid)).toContain(uid);
      const uidsOf = datasources.map((d: any) => d.uid);
      expect(new Set(uidsOf).size).toBe(uidsOf.length);
      for (const d of datasources) {
        const to = new URL(d.url);
        expect(services, `${d.name} at ${d.url}`).toHaveProperty(to.hostname);
        const s = services[to.hostname];
        const listens = ports(s).map((p: any) => String(p.container));
        if (d.type === "tempo") listens.push(String(parse(readFileSync(hostFile(s, flag(s, "-config.file")!)!, "utf8")).server.http_listen_port));
        expect(listens, d.name).toContain(to.port);
      }
      const prometheusDs = candidates.find((d: any) => d.isDefault);
      expect(new URL(prometheusDs.url).origin).toBe(new URL(collectorConfig.exporters.prometheusremotewrite.endpoint).origin);
    });

    it("links the Prometheus datasource's exemplars (their trace_id) to the trace backends, and Prometheus stores them", () => {
      const datasources = provisioned("datasources").flatMap((f) => f.datasources);
      const prometheusDs = datasources.find((d: any) => d.type === "prometheus" && d.isDefault);
      const destinations = prometheusDs.jsonData?.exemplarTraceIdDestinations ?? [];
      const traceBackends = datasources.filter((d: any) => d.type === "tempo" || d.type === "jaeger").map((d: any) => d.uid);
      expect(destinations.map((d: any) => d.datasourceUid).sort()).toEqual(traceBackends.sort());
      // the exemplar label the agent writes (agent/src/telemetry/openmetrics.ts)
      const openmetrics = readFileSync(path.join(root, "agent/src/telemetry/openmetrics.ts"), "utf8");
      for (const d of destinations) {
        expect(d.name).toBe("trace_id");
        expect(openmetrics).toContain(`{${d.name}="`);
      }
      expect(services.prometheus.command).toContain("--enable-feature=exemplar-storage");
    });

    it("loads dashboards/tailguard.json (also as the home dashboard) and lets anonymous viewers in", () => {
      const providers = provisioned("dashboards").flatMap((f) => f.providers);
      const folders = providers.filter((p: any) => p.type === "file").map((p: any) => p.options.path);
      const dashboardFile = path.join(root, "dashboards/tailguard.json");
      const loaded = mounts(grafana).filter((m) => folders.some((f: string) => m.target.startsWith(`${f}/`)));
      expect(loaded.map((m) => m.source)).toContain(dashboardFile);
      for (const m of loaded) expect(m.target).toMatch(/\.json$/);
      expect(hostFile(grafana, grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH)).toBe(dashboardFile);
      expect(grafana.environment).toMatchObject({ GF_AUTH_ANONYMOUS_ENABLED: "true", GF_AUTH_ANONYMOUS_ORG_ROLE: "Viewer" });
    });
  });
});
