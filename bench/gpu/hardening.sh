#!/usr/bin/env bash
# Issue 13's hardened shim on the real driver, from the repository root on the GPU machine, as root:
#   1. the shim's cost per launch inside one process (launch_ab.c: bursts through the shim alternate with bursts
#      through libcuda's own cuLaunchKernel), with nobody reading and with a collector draining (the addon's, in a
#      recording session), against the control (no shim); 5 processes each, rotating;
#   2. bench/gpu/two_users.py: root's ResNet-18 requests at high priority beside an unprivileged user's ResNet-50
#      batch asking for 100: her priority clamped, root never held for her, and her truncating her own files mid-run.
# Usage: bench/gpu/hardening.sh OUTDIR   (node on PATH: the addon in build/ is all it uses of the agent)
set -uo pipefail
out=${1:?usage: hardening.sh OUTDIR}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  grep -m1 "model name" /proc/cpuinfo; nproc; uname -r
  python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'
  echo "commit: ${TG_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
} > "$out/machine.txt" 2>&1
make -C native >/dev/null || exit 1
stub=$(find /usr/local/cuda*/ -name libcuda.so -path "*stubs*" 2>/dev/null | head -1)
gcc -O2 -Inative/include -o /tmp/launch_ab bench/gpu/launch_ab.c -L"$(dirname "$stub")" -lcuda -ldl || exit 1
TAILGUARD_LOG_LEVEL=debug LD_PRELOAD=$PWD/native/build/libtailguard.so TAILGUARD_DIR=/dev/shm/tg-hard native/build/tg-probe \
  > "$out/probe.txt" 2>&1
# a recording session's collector drains while the loop runs (the addon alone: no node_modules needed)
record() {
  node --input-type=module -e '
    import { createRequire } from "node:module";
    import { spawnSync } from "node:child_process";
    const addon = createRequire(process.cwd() + "/x.js")(process.cwd() + "/build/Release/tailguard.node");
    const session = `${process.pid}-ab`;
    const c = new addon.Collector("/dev/shm/tg-hard", { session });
    const r = spawnSync("taskset", ["-c", "2", "/tmp/launch_ab", "1000", "400"], { encoding: "utf8",
      env: { ...process.env, LD_PRELOAD: process.cwd() + "/native/build/libtailguard.so", TAILGUARD_DIR: "/dev/shm/tg-hard", TAILGUARD_SESSION: session } });
    let n = 0;
    for (let idle = 0; idle < 20; ) { const k = c.take(1 << 24).records; n += k; if (k) idle = 0; else { idle++; Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); } }
    c.close();
    process.stdout.write(JSON.stringify({ ...JSON.parse(r.stdout), drained: n }));
  '
}
: > "$out/ab.jsonl"
for i in 1 2 3 4 5; do
  echo "{\"mode\":\"control\",\"r\":$(taskset -c 2 /tmp/launch_ab 1000 400)}" >> "$out/ab.jsonl"
  echo "{\"mode\":\"no_reader\",\"r\":$(LD_PRELOAD=$PWD/native/build/libtailguard.so TAILGUARD_DIR=/dev/shm/tg-hard taskset -c 2 /tmp/launch_ab 1000 400)}" >> "$out/ab.jsonl"
  echo "{\"mode\":\"recording\",\"r\":$(record)}" >> "$out/ab.jsonl"
done
python3 bench/gpu/two_users.py --out "$out/two_users.json" > "$out/two_users.txt" 2>&1
echo "two_users exit $?" >> "$out/two_users.txt"
