#!/usr/bin/env bash
# The original test on the GPU machine (bench/gpu/mission.py): 3 repetitions of standalone, native and tailguard
# with ResNet-50 batch 1024 and batch 8 as the low-priority load. Results are appended, one JSON object per run, to
# OUTDIR/mission.jsonl as they complete; summarize with `node bench/gpu/summarize-mission.mjs OUTDIR/mission.jsonl`.
# Usage: bench/gpu/mission.sh OUTDIR [REPS]   (from the repository root; needs gcc/make, python3 with torch)
set -uo pipefail
out=${1:?usage: mission.sh OUTDIR [REPS]}
reps=${2:-3}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  grep -m1 "model name" /proc/cpuinfo; nproc; uname -r
  python3 -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "torchvision", torchvision.__version__)'
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo "${TG_COMMIT:-unknown}")"
  echo "command: bench/gpu/mission.sh $out $reps (n20=${N20:-60}, n10=${N10:-40})"
} > "$out/machine.txt" 2>&1
make -C native build/libtailguard.so >/dev/null || exit 1
one() { # setting batch rep
  local f; f=$(mktemp)
  if TAILGUARD_LOG_LEVEL=debug python3 bench/gpu/mission.py --setting "$1" --low-batch "$2" --n20 "${N20:-60}" \
       --n10 "${N10:-40}" --out "$f" >> "$out/mission.log" 2>&1; then
    python3 -c "import json,sys; d=json.load(open('$f')); d['rep']=$3; print(json.dumps(d))" >> "$out/mission.jsonl"
  else
    echo "FAILED: $1 $2 rep $3" >> "$out/mission.log"
  fi
  rm -f "$f"
}
for rep in $(seq 1 "$reps"); do
  one standalone 0 "$rep"
  one native 1024 "$rep"; one tailguard 1024 "$rep"
  one native 8 "$rep"; one tailguard 8 "$rep"
done
echo "finished" >> "$out/mission.log"
