#!/usr/bin/env bash
# Lever experiments on the GPU machine (bench/gpu/mission.py, one run per line of a plan), stopping before a
# deadline so that a bounded device session still returns what it measured. Each plan line is
#   LABEL SETTING LOW_BATCH [VAR=VALUE ...]
# where SETTING is standalone | native | tailguard and the VAR=VALUE pairs (e.g. TAILGUARD_PREEMPT=1) are set for
# both processes. Results go to OUTDIR/variants.jsonl (one JSON object per run, "variant" = LABEL, "rep" = the
# how-many-th run of that label); summarize with `node bench/gpu/summarize-mission.mjs OUTDIR/variants.jsonl`.
# Usage: bench/gpu/variants.sh OUTDIR PLAN_FILE [SECONDS]   (from the repository root; needs gcc/make, python3+torch)
set -uo pipefail
out=${1:?usage: variants.sh OUTDIR PLAN_FILE [SECONDS]}
plan=${2:?usage: variants.sh OUTDIR PLAN_FILE [SECONDS]}
budget=${3:-540}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
start=$(date +%s)
{
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader
  grep -m1 "model name" /proc/cpuinfo; nproc; uname -r
  python3 -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.version.cuda, "torchvision", torchvision.__version__)'
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo "${TG_COMMIT:-unknown}")"
  echo "command: bench/gpu/variants.sh $out $plan $budget (n20=${N20:-60}, n10=${N10:-40})"
  echo "plan:"; cat "$plan"
} > "$out/machine.txt" 2>&1
make -C native build/libtailguard.so >/dev/null || exit 1
declare -A reps
last=60 # seconds the previous run took (a first guess)
while read -r label setting batch vars; do
  [[ -z "$label" || "$label" == \#* ]] && continue
  now=$(date +%s)
  if (( now - start + last + 10 > budget )); then echo "deadline: skipped $label and after" >> "$out/variants.log"; break; fi
  reps[$label]=$(( ${reps[$label]:-0} + 1 ))
  f=$(mktemp)
  t0=$(date +%s)
  if env TG_VARIANT="$label" $vars python3 bench/gpu/mission.py --setting "$setting" --low-batch "$batch" \
       --n20 "${N20:-60}" --n10 "${N10:-40}" --out "$f" >> "$out/variants.log" 2>&1; then
    python3 -c "import json; d=json.load(open('$f')); d['rep']=${reps[$label]}; d['env']='$vars'; print(json.dumps(d))" \
      >> "$out/variants.jsonl"
  else
    echo "FAILED: $label" >> "$out/variants.log"
  fi
  last=$(( $(date +%s) - t0 ))
  echo "$label took ${last}s" >> "$out/variants.log"
  rm -f "$f"
done < "$plan"
echo "finished after $(( $(date +%s) - start ))s" >> "$out/variants.log"
