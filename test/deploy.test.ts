// deploy/: the Kubernetes manifests and the image, checked structurally (no cluster or Docker here): the manifests
// parse, have the fields they need, and agree with each other and with the code — the shim's path in the image, the
// ring directory, the agent's port, the downward-API variables the agent reads for pod identity.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";

import { resourceFromEnvironment } from "../agent/src/agent.js";
import { agentOptions } from "../agent/src/agent-command.js";
import { root } from "./support/native.js";

const manifest = (name: string) =>
  parseAllDocuments(readFileSync(path.join(root, "deploy/kubernetes", name), "utf8")).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS();
  });
const env = (c: any) => Object.fromEntries((c.env ?? []).map((e: any) => [e.name, e.value ?? e.valueFrom]));

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
    expect(workPod.hostPID).toBe(true); // priorities across pods need one PID namespace (see the manifest)
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
});
