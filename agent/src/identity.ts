// Who a process is, for telemetry: its descriptor from its ring, and the names its environment gives it
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, the Kubernetes downward API) and its cgroup (a pod's UID, a container's
// id), read from the process the ring names -- never from an unrelated process that has its pid (docs/agent.md).
import { readFileSync } from "node:fs";
import { hostname } from "node:os";

import type { RingInfo } from "./ingest/native.js";
import { hostPidOf, readStat, readStatFields, startTicks, statComm, statFields } from "./ingest/proc.js";
import type { ProcessMeta } from "./model.js";
import { otelIdentity } from "./telemetry/otel-env.js";

/** Reads the variables of a process that name it for telemetry (OTEL_SERVICE_NAME, Kubernetes downward API). With
 *  `ticks` (its ring's start time), from the process the ring names: /proc/PID if that is it, else the process of a
 *  nested PID namespace (a container) whose pid there is PID (hostPidOf); never a stranger's. */
export function processEnvironment(pid: number, ticks?: string): Record<string, string> {
  const here = ownPid(pid, ticks);
  return here === null ? {} : readEnvironment(here);
}

/** The pid in this PID namespace of the process a ring names (processEnvironment); null when it cannot be seen. */
function ownPid(pid: number, ticks?: string): number | null {
  if (ticks && ticks !== "0" && startTicks(readStatFields(pid)) !== ticks) return hostPidOf(pid, ticks);
  return pid;
}

function readEnvironment(pid: number): Record<string, string> {
  try {
    const env: Record<string, string> = {};
    for (const entry of readFileSync(`/proc/${pid}/environ`, "latin1").split("\0")) {
      const eq = entry.indexOf("=");
      if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    return env;
  } catch {
    return {}; // another user's process, or gone: it is described by its ring alone
  }
}

/** The resource attributes a process's environment gives: OTEL_RESOURCE_ATTRIBUTES and Kubernetes identity. A
 *  malformed entry of OTEL_RESOURCE_ATTRIBUTES is skipped, the others kept: the process's own SDK may have read them. */
export function resourceFromEnvironment(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = { ...otelIdentity(env).attributes };
  const first = (...names: string[]) => names.map((n) => env[n]).find((v) => v);
  const pod = first("K8S_POD_NAME", "POD_NAME") ?? (env.KUBERNETES_SERVICE_HOST ? env.HOSTNAME : undefined);
  const namespace = first("K8S_NAMESPACE_NAME", "K8S_NAMESPACE", "POD_NAMESPACE");
  const node = first("K8S_NODE_NAME", "NODE_NAME");
  const container = first("K8S_CONTAINER_NAME", "CONTAINER_NAME");
  if (pod) out["k8s.pod.name"] = pod;
  if (namespace) out["k8s.namespace.name"] = namespace;
  if (node) out["k8s.node.name"] = node;
  if (container) out["k8s.container.name"] = container;
  return out;
}

/** A pod UID as the kubelet names its cgroup: `pod<uid>` (cgroupfs driver) or `-pod<uid with _ for ->.slice`
 *  (systemd driver), in a `kubepods` cgroup (or slice), or its QoS class's (besteffort, burstable; Guaranteed pods
 *  have none). */
const POD_CGROUP = /(?:^|[/-])kubepods(?:[-/](?:besteffort|burstable))?[-/]pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?(?:\/|$)/;
/** A container's cgroup, the one below its pod's: its 64-hex id, bare (cgroupfs) or in a runtime's systemd scope
 *  (`cri-containerd-`, `docker-`, `crio-`). */
const CONTAINER_CGROUP = /^(?:(?:cri-containerd|containerd|docker|crio|cri-o)-)?([0-9a-f]{64})(?:\.scope)?$/;

/**
 * The pod UID and container id in /proc/PID/cgroup's text, cgroup v1 (a line per hierarchy) or v2 (`0::PATH`), the
 * kubelet's cgroupfs or systemd driver: `k8s.pod.uid` and `container.id`, for a process whose environment does not
 * name its pod. Nothing for a process outside a pod, or in a cgroup namespace that hides the path (`0::/`).
 */
export function kubernetesCgroup(text: string): Record<string, string> {
  for (const line of text.split("\n")) {
    const path = line.split(":").slice(2).join(":");
    const pod = POD_CGROUP.exec(path);
    if (!pod) continue;
    const out: Record<string, string> = { "k8s.pod.uid": pod[1].replace(/_/g, "-") };
    const below = path.slice(pod.index + pod[0].length).split("/").filter(Boolean);
    const container = below.length > 0 ? CONTAINER_CGROUP.exec(below[below.length - 1]) : null;
    if (container) out["container.id"] = container[1];
    return out;
  }
  return {};
}

/** kubernetesCgroup of a process (its pid in this namespace); nothing when its cgroup file cannot be read. */
function cgroupResource(pid: number): Record<string, string> {
  try {
    return kubernetesCgroup(readFileSync(`/proc/${pid}/cgroup`, "utf8"));
  } catch {
    return {};
  }
}

/** The process a ring names. `machine`: the attributes of the machine it runs on, which the process's own environment
 *  may override (the agent's `host.name` and `k8s.node.name`, so that a process's spans name the node the agent
 *  detected even when the process's environment does not). */
export function processMeta(info: RingInfo, machine: Record<string, string> = { "host.name": hostname() }): ProcessMeta {
  const here = ownPid(info.pid, info.startTicks);
  const env = here === null ? {} : readEnvironment(here);
  // the cgroup's pod UID and container id where the environment does not say them
  const cgroup = here === null ? {} : cgroupResource(here);
  return {
    pid: info.pid,
    ppid: info.ppid,
    cmdline: info.cmdline,
    priority: info.priority,
    gpu: info.gpu,
    anchorMonotonic: info.anchorMonotonic,
    anchorRealtime: info.anchorRealtime,
    serviceName: otelIdentity(env).serviceName,
    resource: { ...machine, ...cgroup, ...resourceFromEnvironment(env) },
  };
}

/** The command name of the process a ring names (field 2 of /proc/PID/stat), when /proc/PID is that process (its start
 *  time): it changes when the process execs another program, which may change its identity too. Null when it cannot
 *  be told (gone, or a process of another PID namespace). */
export function commandName(info: Pick<RingInfo, "pid" | "startTicks">): string | null {
  const stat = readStat(info.pid);
  return stat !== null && startTicks(statFields(stat)) === info.startTicks ? statComm(stat) : null;
}

/** The identity of the process a ring names as /proc says now: its command line and what its environment names it
 *  (processMeta), read again after it exec'd. The ring's command line when /proc/PID/cmdline cannot be read. */
export function currentIdentity(info: RingInfo, machine?: Record<string, string>): Pick<ProcessMeta, "cmdline" | "serviceName" | "resource"> {
  let cmdline = info.cmdline;
  try {
    const args = readFileSync(`/proc/${info.pid}/cmdline`, "utf8").split("\0");
    if (args.at(-1) === "") args.pop();
    if (args.length > 0) cmdline = args;
  } catch {
    /* gone: the ring's */
  }
  const { serviceName, resource } = processMeta(info, machine);
  return { cmdline, serviceName, resource };
}
