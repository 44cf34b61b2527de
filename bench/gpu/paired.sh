#!/usr/bin/env bash
# The paired measurement on the GPU machine (bench/gpu/paired.py, issue 18): builds the shim, records the machine, and
# runs the cases in turn (default: graph-b1024, eager-b8, attach), each into OUTDIR/CASE/ (paired.json, the workers'
# stderr) with its table and progress in OUTDIR/CASE.txt. Each case takes at most 8 minutes of wall time with these
# rounds (blocks of 10 s, 1 s settle; workers of a case warm up in parallel):
#   graph-b1024   8 rounds x 3 modes x ~11.5 s (a batch-1024 iteration, 0.3-0.5 s, may end after a block) ~ 4.6 min
#                 + warm-up ~1 min (model load and cuDNN autotune of 4 workers at once)           ~ 5.5 min
#   eager-b8     10 rounds x 3 modes x ~11.1 s ~ 5.6 min + warm-up ~0.5 min                        ~ 6 min
#   attach       16 rounds x 2 modes x ~11.1 s ~ 5.9 min + warm-up ~0.5 min                        ~ 6.5 min
# Usage: bench/gpu/paired.sh OUTDIR [graph-b1024|eager-b8|attach ...]
#        (needs gcc/make and python3 with torch + torchvision; node with the built agent/dist and build/Release for
#        draining the rings as the agent would). PAIRED_ARGS="..." adds options to every case, e.g. "--block 2
#        --rounds 2" for a smoke test of about 1.5 min per case.
set -uo pipefail
usage="usage: paired.sh OUTDIR [graph-b1024|eager-b8|attach ...]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
mkdir -p "$1" && out=$(cd "$1" && pwd) || exit 1
shift
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(graph-b1024 eager-b8 attach)
for c in "${cases[@]}"; do
  case "$c" in graph-b1024|eager-b8|attach) ;; *) echo "paired.sh: unknown case '$c'; $usage" >&2; exit 2 ;; esac
done
cd "$(dirname "$0")/../.."
commit=${TG_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
export TG_COMMIT=$commit
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
  grep -m1 "model name" /proc/cpuinfo; nproc; uname -r
  python3 -c 'import torch, torchvision as tv; print("torch", torch.__version__, "cuda", torch.version.cuda,
                                                   "torchvision", tv.__version__)'
  echo "node: $(node --version 2>/dev/null || echo "absent: the rings are not drained")"
  echo "commit: $commit"
  echo "command: bench/gpu/paired.sh $out ${cases[*]} (PAIRED_ARGS=${PAIRED_ARGS:-})"
} > "$out/machine.txt" 2>&1
make -C native build/libtailguard.so >/dev/null || { echo "paired.sh: building the shim failed" >&2; exit 1; }
rc=0
for c in "${cases[@]}"; do
  rounds=8
  [ "$c" = eager-b8 ] && rounds=10
  [ "$c" = attach ] && rounds=16
  echo "== $c ($(date +%T))"
  # shellcheck disable=SC2086 # PAIRED_ARGS is split into options on purpose
  if ! python3 bench/gpu/paired.py --case "$c" --rounds "$rounds" --out "$out/$c" ${PAIRED_ARGS:-} 2>&1 |
      tee "$out/$c.txt"; then
    echo "paired.sh: $c failed (see $out/$c.txt and $out/$c/)" >&2
    rc=1
  fi
done
exit $rc
