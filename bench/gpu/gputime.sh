#!/usr/bin/env bash
# Issue 16 on the GPU machine (bench/gpu/gputime.py): the shim's per-request device times against the application's
# own CUDA events, with the scheduling off (attached) and on (priority), each under `tailguard run --record`; then the
# cost of TAILGUARD_GPU_TIME (on / off, interleaved). Results in OUTDIR: machine.txt, accuracy-MODE.json/.txt,
# requests-MODE.jsonl, windows-MODE.jsonl.gz (the request worker's lines of the recording but its launches; the
# recording itself is removed: tens of MB), cost.json/.txt, the workers' stderr.
# window-ab.jsonl (phase window: bench/gpu/window-ab.mjs, device timing's cost per window inside each process).
# Usage: bench/gpu/gputime.sh OUTDIR [accuracy] [cost] [window]   (ACCURACY_ARGS, COST_ARGS, WINDOW_ARGS: options;
#        needs python3 with torch and torchvision, node with agent/dist and build/Release and node_modules)
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: gputime.sh OUTDIR [accuracy] [cost] [window]" >&2; exit 2; }
mkdir -p "$1" && out=$(cd "$1" && pwd) || exit 1
shift
phases=("$@")
[ ${#phases[@]} -gt 0 ] || phases=(accuracy cost)
cd "$(dirname "$0")/../.."
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  grep -m1 "model name" /proc/cpuinfo; nproc
  python3 -c 'import torch, torchvision as tv; print("torch", torch.__version__, "torchvision", tv.__version__)'
  echo "commit: ${TG_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
  echo "command: bench/gpu/gputime.sh $out ${phases[*]} (ACCURACY_ARGS=${ACCURACY_ARGS:-} COST_ARGS=${COST_ARGS:-})"
} > "$out/machine.txt" 2>&1
make -C native build/libtailguard.so >/dev/null || { echo "gputime.sh: building the shim failed" >&2; exit 1; }
tg="node agent/dist/cli.js"
rc=0
for phase in "${phases[@]}"; do
  case "$phase" in
    accuracy)
      for mode in attached priority; do
        # shellcheck disable=SC2086 # the ARGS are split into options on purpose
        $tg run --record "$out/rec-$mode.jsonl" -- python3 bench/gpu/gputime.py accuracy --mode "$mode" --out "$out" \
          ${ACCURACY_ARGS:-} 2>&1 | tee "$out/accuracy-$mode.txt" || rc=1
        python3 bench/gpu/gputime.py analyze --mode "$mode" --recording "$out/rec-$mode.jsonl" --out "$out" 2>&1 |
          tee -a "$out/accuracy-$mode.txt"
        [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
        pid=$(head -1 "$out/requests-$mode.jsonl" | python3 -c 'import json,sys; print(json.load(sys.stdin)["request_pid"])')
        grep -E "\"kind\":\"recording\"|\"pid\":$pid," "$out/rec-$mode.jsonl" | grep -v '"kind":"launch"' |
          gzip > "$out/windows-$mode.jsonl.gz"
        rm -f "$out/rec-$mode.jsonl"
      done ;;
    cost)
      # shellcheck disable=SC2086
      $tg run -- python3 bench/gpu/gputime.py cost --out "$out" ${COST_ARGS:-} 2>&1 | tee "$out/cost.txt" || rc=1 ;;
    window)
      # device timing's own cost per window, on - off, each process against the real entry points in itself
      # shellcheck disable=SC2086
      node bench/gpu/window-ab.mjs ${WINDOW_ARGS:-} 2>&1 | tee "$out/window-ab.jsonl" || rc=1 ;;
    *) echo "gputime.sh: unknown phase '$phase' (accuracy, cost, window)" >&2; exit 2 ;;
  esac
done
exit "$rc"
