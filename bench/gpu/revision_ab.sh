#!/usr/bin/env bash
# The shim's cost per launch on a real GPU, this checkout against a base revision's, in one session: launch_ab.c
# (bursts through the shim alternate with bursts through libcuda's own cuLaunchKernel, in one process) with nobody
# reading and with a recording session's collector draining (each revision's own addon: ring layouts may differ),
# the revisions and modes alternating, RUNS processes each (default 7). The simulated-GPU twin is
# bench/shim/revision_ab.mjs.
# Usage (repository root, node on PATH): bench/gpu/revision_ab.sh OUTDIR BASE.tgz BASE_ADDON.node
#   BASE.tgz: `git archive BASE native bench/gpu/launch_ab.c bench/timing.h | gzip`; BASE_ADDON.node: that
#   revision's build/Release/tailguard.node (built where node-gyp is)
set -uo pipefail
out=${1:?usage: revision_ab.sh OUTDIR BASE.tgz BASE_ADDON.node}
base_tgz=$(realpath "${2:?}") base_addon=$(realpath "${3:?}")
cd "$(dirname "$0")/../.."
runs=${RUNS:-7}
mkdir -p "$out" /tmp/tg-base && tar -xzf "$base_tgz" -C /tmp/tg-base || exit 1
make -C native >/dev/null && make -C /tmp/tg-base/native build/libtailguard.so >/dev/null || exit 1
stub=$(find /usr/local/cuda*/ -name libcuda.so -path "*stubs*" 2>/dev/null | head -1)
gcc -O2 -Inative/include -o /tmp/launch_ab bench/gpu/launch_ab.c -L"$(dirname "$stub")" -lcuda -ldl || exit 1
declare -A shim=([base]=/tmp/tg-base/native/build/libtailguard.so [head]=$PWD/native/build/libtailguard.so)
declare -A addon=([base]=$base_addon [head]=$PWD/build/Release/tailguard.node)
loop="taskset -c 2 /tmp/launch_ab 1000 400"
record() { # $1: base|head; a recording session's collector (the revision's addon) drains while the loop runs
  ADDON=${addon[$1]} SHIM=${shim[$1]} node --input-type=module -e '
    import { createRequire } from "node:module";
    import { spawnSync } from "node:child_process";
    const dir = `/dev/shm/tg-rev-${process.pid}`, session = `${process.pid}-ab`;
    const c = new (createRequire(import.meta.url)(process.env.ADDON).Collector)(dir, { session });
    const r = spawnSync("taskset", ["-c", "2", "/tmp/launch_ab", "1000", "400"], { encoding: "utf8",
      env: { ...process.env, LD_PRELOAD: process.env.SHIM, TAILGUARD_DIR: dir, TAILGUARD_SESSION: session } });
    let n = 0;
    for (let idle = 0; idle < 20; ) { const k = c.take(1 << 24).records; n += k; if (k) idle = 0; else { idle++; Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); } }
    c.close();
    process.stdout.write(JSON.stringify({ ...JSON.parse(r.stdout), drained: n }));'
}
: > "$out/revision_ab.jsonl"
order=(base head)
for i in $(seq "$runs"); do
  echo "{\"rev\":\"none\",\"mode\":\"control\",\"r\":$($loop)}" >> "$out/revision_ab.jsonl"
  for rev in "${order[@]}"; do
    echo "{\"rev\":\"$rev\",\"mode\":\"no_reader\",\"r\":$(LD_PRELOAD=${shim[$rev]} TAILGUARD_DIR=/dev/shm/tg-rev-nr $loop)}" >> "$out/revision_ab.jsonl"
    echo "{\"rev\":\"$rev\",\"mode\":\"recording\",\"r\":$(record "$rev")}" >> "$out/revision_ab.jsonl"
  done
  order=("${order[1]}" "${order[0]}")
done
