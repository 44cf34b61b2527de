// Who a followed process is (identity.ts): its Kubernetes pod and container from the cgroup path the kubelet gives it,
// in every form a node has (cgroup v1 and v2, the cgroupfs and systemd drivers, the runtimes' scopes), and its names
// from the downward-API variables.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";

import { kubernetesCgroup, processMeta, resourceFromEnvironment } from "../../agent/src/identity.js";
import type { RingInfo } from "../../agent/src/ingest/native.js";

const UID = "2f4e5f8a-1c4b-4e3b-9b0a-6f0c9b7c2d11";
const SYSTEMD_UID = UID.replace(/-/g, "_");
const ID = "8e3c5a9d0f1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d";
const both = { "k8s.pod.uid": UID, "container.id": ID };

describe("kubernetesCgroup: a pod's UID and a container's id from /proc/PID/cgroup", () => {
  it.each([
    ["v2, systemd driver, containerd, Burstable",
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${SYSTEMD_UID}.slice/cri-containerd-${ID}.scope\n`],
    ["v2, systemd driver, CRI-O, Guaranteed (no QoS slice)", `0::/kubepods.slice/kubepods-pod${SYSTEMD_UID}.slice/crio-${ID}.scope\n`],
    ["v2, systemd driver, Docker (cri-dockerd), BestEffort",
      `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${SYSTEMD_UID}.slice/docker-${ID}.scope\n`],
    ["v2, cgroupfs driver, BestEffort", `0::/kubepods/besteffort/pod${UID}/${ID}\n`],
    ["v2, cgroupfs driver, Guaranteed", `0::/kubepods/pod${UID}/${ID}\n`],
    ["v2, kind (the kubelet's slice under its own)",
      `0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${SYSTEMD_UID}.slice/cri-containerd-${ID}.scope\n`],
    ["v1, cgroupfs driver (a line per hierarchy)",
      [`12:pids:/kubepods/burstable/pod${UID}/${ID}`, `11:memory:/kubepods/burstable/pod${UID}/${ID}`,
        `1:name=systemd:/kubepods/burstable/pod${UID}/${ID}`, ""].join("\n")],
    ["v1, systemd driver, with the unified line of hybrid mode",
      [`12:cpu,cpuacct:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${SYSTEMD_UID}.slice/cri-containerd-${ID}.scope`,
        `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${SYSTEMD_UID}.slice/cri-containerd-${ID}.scope`, ""].join("\n")],
  ])("%s", (_, text) => {
    expect(kubernetesCgroup(text)).toEqual(both);
  });

  it("a pod's own cgroup (no container below it): the pod UID alone", () => {
    expect(kubernetesCgroup(`0::/kubepods.slice/kubepods-pod${SYSTEMD_UID}.slice\n`)).toEqual({ "k8s.pod.uid": UID });
    expect(kubernetesCgroup(`0::/kubepods/burstable/pod${UID}/not-a-container\n`)).toEqual({ "k8s.pod.uid": UID });
  });

  it("nothing outside a pod, or where a cgroup namespace hides the path", () => {
    expect(kubernetesCgroup("0::/\n")).toEqual({});
    expect(kubernetesCgroup("0::/user.slice/user-1000.slice/session-2.scope\n")).toEqual({});
    expect(kubernetesCgroup(`0::/system.slice/docker-${ID}.scope\n`)).toEqual({}); // Docker without Kubernetes
    expect(kubernetesCgroup(`0::/system.slice/kubepods-like.service/pod${UID}\n`)).toEqual({});
    expect(kubernetesCgroup("")).toEqual({});
  });
});

describe("resourceFromEnvironment: the downward-API variables", () => {
  it("names the container from K8S_CONTAINER_NAME (or CONTAINER_NAME)", () => {
    expect(resourceFromEnvironment({ K8S_CONTAINER_NAME: "server", K8S_POD_NAME: "p", K8S_NAMESPACE_NAME: "ml" }))
      .toEqual({ "k8s.container.name": "server", "k8s.pod.name": "p", "k8s.namespace.name": "ml" });
    expect(resourceFromEnvironment({ CONTAINER_NAME: "worker" })).toEqual({ "k8s.container.name": "worker" });
  });
});

describe("a followed process's resource", () => {
  /** The ring of a real process started with `env`: only what processMeta reads of it. */
  async function withProcess(env: Record<string, string>, test: (info: RingInfo) => void) {
    const child = spawn("sleep", ["30"], { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env } });
    await once(child, "spawn");
    try {
      const info = { pid: child.pid!, ppid: process.pid, startTicks: "0", cmdline: ["sleep", "30"], priority: 0, gpu: null,
        anchorMonotonic: 0n, anchorRealtime: 0n } as Partial<RingInfo> as RingInfo;
      test(info);
    } finally {
      child.kill();
    }
  }

  it("names the node and host the agent detected, unless the process's own environment says otherwise", async () => {
    const machine = { "host.name": "agent-host", "k8s.node.name": "node-a" };
    await withProcess({}, (info) => {
      expect(processMeta(info, machine).resource).toMatchObject(machine);
    });
    await withProcess({ K8S_NODE_NAME: "node-b", OTEL_RESOURCE_ATTRIBUTES: "host.name=app-host" }, (info) => {
      expect(processMeta(info, machine).resource).toMatchObject({ "k8s.node.name": "node-b", "host.name": "app-host" });
    });
  });
});
