#!/usr/bin/env bash
# The real-GPU checks of the shim (issue 2), run on the GPU machine from the repository root:
#   1. `tailguard doctor` against the real driver;
#   2. the shim's cost per launch inside one process (launch_ab.c: bursts through the shim alternate with bursts
#      through libcuda's own cuLaunchKernel): no shim (the control), under `tailguard run --record`, and with the shim
#      but nobody reading; 5 processes each;
#   3. the same through the CUDA runtime across processes (launch_loop.cu, bursts of 1,000 launches), without the
#      shim, recording, and nobody reading, rotating, RUNS processes each (default 7) -- noisier: processes differ;
#   4. ResNet-18 inference under `tailguard run --record`: launches seen vs CUPTI's kernel count;
#   5. `node bench/shim.mjs` on this machine's CPU (simulated and null driver).
# Usage: bench/gpu/run.sh OUTDIR   (needs node on PATH, nvcc, python3 with torch + torchvision)
set -uo pipefail
out=${1:?usage: run.sh OUTDIR}
cd "$(dirname "$0")/../.."
tg="node agent/dist/cli.js"
mkdir -p "$out" /dev/shm/tg-bench

runs=${RUNS:-7}
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
  grep -m1 "model name" /proc/cpuinfo; cat /sys/devices/system/clocksource/clocksource0/current_clocksource
  nproc; uname -r; python3 -c 'import torch; print("torch", torch.__version__, torch.version.cuda)'
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo "${TG_COMMIT:-unknown (pass TG_COMMIT=...)}")"
} > "$out/machine.txt" 2>&1

make -C native >/dev/null || exit 1
$tg doctor > "$out/doctor.txt" 2>&1
TAILGUARD_LOG_LEVEL=debug $tg run -- native/build/tg-probe > "$out/probe_debug.txt" 2>&1
nvcc -O2 -arch=sm_90 -o /tmp/launch_loop bench/gpu/launch_loop.cu || exit 1
stub=$(find /usr/local/cuda*/ -name libcuda.so -path "*stubs*" 2>/dev/null | head -1)
gcc -O2 -Inative/include -o /tmp/launch_ab bench/gpu/launch_ab.c -L"$(dirname "$stub")" -lcuda -ldl || exit 1

# In-process A/B: the headline measurement.
ab="taskset -c 2 /tmp/launch_ab 1000 400"
: > "$out/ab.jsonl"
for i in 1 2 3 4 5; do
  echo "{\"mode\":\"control\",\"r\":$($ab)}" >> "$out/ab.jsonl"
  echo "{\"mode\":\"recording\",\"r\":$(taskset -c 8-15 $tg run --record /dev/shm/tg-bench/ab.jsonl -- $ab 2>> "$out/ab_shim.log")}" >> "$out/ab.jsonl"
  echo "{\"mode\":\"no_reader\",\"r\":$(LD_PRELOAD=$PWD/native/build/libtailguard.so $ab)}" >> "$out/ab.jsonl"
done

# Launch cost: the benchmark pinned to core 2, the recorder to cores 8-15; the three modes rotate their order.
: > "$out/launch_plain.jsonl"; : > "$out/launch_shim.jsonl"; : > "$out/launch_shim_noreader.jsonl"
plain() { taskset -c 2 /tmp/launch_loop 1000 400 >> "$out/launch_plain.jsonl"; }
recording() {
  taskset -c 8-15 $tg run --record /dev/shm/tg-bench/loop.jsonl -- taskset -c 2 /tmp/launch_loop 1000 400 \
    >> "$out/launch_shim.jsonl" 2>> "$out/launch_shim.log"
}
noreader() {
  LD_PRELOAD=$PWD/native/build/libtailguard.so taskset -c 2 /tmp/launch_loop 1000 400 >> "$out/launch_shim_noreader.jsonl"
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
taskset -c 8-15 $tg run --record /dev/shm/tg-bench/resnet.jsonl -- taskset -c 2 python3 bench/gpu/resnet_count.py 20 \
  > "$out/resnet_script.json" 2> "$out/resnet_run.log"
node bench/gpu/count_launches.mjs /dev/shm/tg-bench/resnet.jsonl "$out/resnet_script.json" > "$out/resnet_count.json"
node bench/shim.mjs --runs 11 --out "$out/bench_shim.json" > "$out/bench_shim.txt" 2>&1
node bench/gpu/summarize.mjs "$out" > "$out/summary.json"
cat "$out/bench_shim.txt" "$out/summary.json" "$out/resnet_count.json" "$out/doctor.txt"
