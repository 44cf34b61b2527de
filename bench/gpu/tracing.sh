#!/usr/bin/env bash
# Issue 15 on the GPU machine: bench/gpu/tracing.py under the shim, with the agent writing every span to a file, then
# bench/gpu/tracing-check.mjs on what it wrote. Results in OUTDIR: machine.txt, tracing.txt (the cost table),
# tracing.json, traceparents.jsonl, spans.jsonl*, check.json, agent.log.
# Usage: bench/gpu/tracing.sh OUTDIR   (TRACING_ARGS="--block 2 --rounds 6" by default; needs python3 with torch and
#        torchvision, node with agent/dist, build/Release and node_modules)
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: tracing.sh OUTDIR" >&2; exit 2; }
mkdir -p "$1" && out=$(cd "$1" && pwd) || exit 1
cd "$(dirname "$0")/../.."
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  python3 -c 'import torch, torchvision as tv; print("torch", torch.__version__, "torchvision", tv.__version__)'
  echo "commit: ${TG_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  echo "command: bench/gpu/tracing.sh $out (TRACING_ARGS=${TRACING_ARGS:-})"
} > "$out/machine.txt" 2>&1
make -C native build/libtailguard.so >/dev/null || { echo "tracing.sh: building the shim failed" >&2; exit 1; }
rings=$(mktemp -d /dev/shm/tg-tracing-XXXXXX)
# the agent and the requests on CPUs of their own, when there are enough (taskset, from util-linux)
pin_agent=() pin_app=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 12 ]; then pin_agent=(taskset -c 8-11) pin_app=(taskset -c 2,3); fi
"${pin_agent[@]}" node agent/dist/cli.js agent --dir "$rings" --port 0 --no-prometheus --spans all --spans-file "$out/spans.jsonl" \
  > "$out/agent.log" 2>&1 &
agent=$!
sleep 2
# shellcheck disable=SC2086 # TRACING_ARGS is split into options on purpose
LD_PRELOAD=$PWD/native/build/libtailguard.so TAILGUARD_DIR=$rings "${pin_app[@]}" python3 bench/gpu/tracing.py --out "$out" \
  ${TRACING_ARGS:-} 2>&1 | tee "$out/tracing.txt"
rc=${PIPESTATUS[0]}
sleep 3 # the agent's last spans
kill -INT "$agent"; wait "$agent"
node bench/gpu/tracing-check.mjs "$out/traceparents.jsonl" "$out"/spans.jsonl* | tee "$out/check.json" || rc=1
rm -rf "$rings"
exit "$rc"
