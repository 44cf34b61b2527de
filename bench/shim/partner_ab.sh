#!/usr/bin/env bash
# The shim's launch cost in a low-priority process outside another process's requests, with that process above it
# (priorities in effect) against beside it (equal priority), on the simulated GPU. A check for docs/scheduling.md's
# eager batch-8 question: were the batch job's iterations away from the requests slower because the shim's launch
# path costs more when a higher-priority process is attached and active? The partner sends requests (20 kernels of
# 200 us, 10 a second); the loop times launches in rounds (bench/shim/launch_loop.c), whose median leaves out the
# few rounds held behind a request. Prints the loop's median ns per launch for each run, alternating the two cases.
# Usage (repository root, after `npm run build`): bash bench/shim/partner_ab.sh [pairs] [runs per case]
set -euo pipefail
cd "$(dirname "$0")/../.."
pairs=${1:-2} runs=${2:-5}
work=$(mktemp -d /tmp/tg-partner-ab.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
gcc -std=gnu11 -O2 -Inative/include -Ibench -o "$work/launch_loop" bench/shim/launch_loop.c -Lnative/build/sim -lcuda
export LD_LIBRARY_PATH=$PWD/native/build/sim TAILGUARD_SIM_DEVICE=$work/gpu TAILGUARD_DIR=$work/rings
shim=$PWD/native/build/libtailguard.so
for _ in $(seq "$pairs"); do
  for partner in high low; do
    rm -rf "$work/gpu" "$work/rings" && mkdir -p "$work/rings"
    LD_PRELOAD=$shim TAILGUARD_PRIORITY=$partner native/build/tg-workload requests --rate 10 --count 600 --kernels 20 \
      --kernel-us 200 > /dev/null 2>&1 &
    pid=$!
    sleep 1
    medians=()
    for _ in $(seq "$runs"); do
      medians+=("$(LD_PRELOAD=$shim TAILGUARD_PRIORITY=low "$work/launch_loop" 1000 2000 | sed 's/.*"median_ns":\([0-9.]*\).*/\1/')")
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    echo "partner at priority $partner (the loop at low): median ns per launch ${medians[*]}"
  done
done
