#!/usr/bin/env bash
# The real-GPU checks of the shim (issue 2), run on the GPU machine from the repository root:
#   1. `tailguard doctor` against the real driver;
#   2. empty-kernel launch cost, without the shim, under `tailguard run --record`, and with the shim but nobody
#      reading, in rotating order, RUNS runs each (default 15), each run the median of 7 rounds of 200,000 launches;
#   3. ResNet-18 inference under `tailguard run --record`: launches seen vs CUPTI's kernel count;
#   4. `npm run bench:shim` on this machine's CPU (the shim's own cost per launch, simulated and null driver).
# Usage: bench/h100/run.sh OUTDIR   (needs node on PATH, nvcc, python3 with torch + torchvision)
set -uo pipefail
out=${1:?usage: run.sh OUTDIR}
cd "$(dirname "$0")/../.."
tg="node agent/dist/cli.js"
mkdir -p "$out" /dev/shm/tg-bench

runs=${RUNS:-15}
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
  grep -m1 "model name" /proc/cpuinfo; cat /sys/devices/system/clocksource/clocksource0/current_clocksource
  nproc; uname -r; python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'
  git rev-parse HEAD 2>/dev/null || echo "commit: (not a git checkout)"
} > "$out/machine.txt" 2>&1

make -C native >/dev/null || exit 1
$tg doctor > "$out/doctor.txt" 2>&1
TAILGUARD_LOG_LEVEL=debug $tg run -- native/build/tg-probe > "$out/probe_debug.txt" 2>&1
nvcc -O2 -arch=sm_90 -o /tmp/launch_loop bench/h100/launch_loop.cu || exit 1

# Launch cost: the benchmark pinned to core 2, the recorder to cores 8-15; the three modes rotate their order.
: > "$out/launch_plain.jsonl"; : > "$out/launch_shim.jsonl"; : > "$out/launch_shim_noreader.jsonl"
plain() { taskset -c 2 /tmp/launch_loop 200000 7 >> "$out/launch_plain.jsonl"; }
recording() {
  taskset -c 8-15 $tg run --record /dev/shm/tg-bench/loop.jsonl -- taskset -c 2 /tmp/launch_loop 200000 7 \
    >> "$out/launch_shim.jsonl" 2>> "$out/launch_shim.log"
}
noreader() {
  LD_PRELOAD=$PWD/native/build/libtailguard.so taskset -c 2 /tmp/launch_loop 200000 7 >> "$out/launch_shim_noreader.jsonl"
}
for i in $(seq 1 "$runs"); do
  case $((i % 3)) in
    0) plain; recording; noreader ;;
    1) recording; noreader; plain ;;
    2) noreader; plain; recording ;;
  esac
done
tail -8 "$out/launch_shim.log" > "$out/launch_shim_summary.txt"

# ResNet-18: every launch seen?
taskset -c 8-15 $tg run --record /dev/shm/tg-bench/resnet.jsonl -- taskset -c 2 python3 bench/h100/resnet_count.py 20 \
  > "$out/resnet_script.json" 2> "$out/resnet_run.log"
node bench/h100/count_launches.mjs /dev/shm/tg-bench/resnet.jsonl "$out/resnet_script.json" > "$out/resnet_count.json"
node bench/shim.mjs --runs 11 --out "$out/bench_shim.json" > "$out/bench_shim.txt" 2>&1
node bench/h100/summarize.mjs "$out" > "$out/summary.json"
cat "$out/bench_shim.txt" "$out/summary.json" "$out/resnet_count.json" "$out/doctor.txt"
