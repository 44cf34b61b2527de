#!/usr/bin/env bash
# Probe for docs/scheduling.md's open question (the eager batch-8 job slower under tailguard, also between the
# high-priority requests): the batch job alone, measured by lone-batch.py under six configurations in rotating order,
# with a higher-priority partner process that attaches and then stays idle where the configuration has one:
#   plain         no shim, no partner
#   plain+idle    no shim, an idle CUDA process beside it
#   shim          the shim, no priority, no partner (recording only)
#   tg            the shim at priority low, an idle partner at priority high: holds and the short timeslice in effect
#   tg-ts0        as tg with TAILGUARD_TIMESLICE_US=0 (holds only)
#   tg-holds0     as tg with TAILGUARD_HOLDS=0 (short timeslice only)
# Usage (repository root, on the GPU machine): bash bench/gpu/experiments/lone-batch.sh OUTDIR [seconds] [rounds]
# [deadline_s]. Writes OUTDIR/probe.jsonl (one line per run) and OUTDIR/slots.jsonl (the control block seen mid-run).
set -uo pipefail
cd "$(dirname "$0")/../../.."
out=$1 seconds=${2:-10} rounds=${3:-3} deadline=${4:-540}
mkdir -p "$out"
make -C native build/libtailguard.so >/dev/null || exit 1
shim=$PWD/native/build/libtailguard.so
export TAILGUARD_DIR=/tmp/tg-lone-batch PROBE_CPUS=4,5
rm -rf "$TAILGUARD_DIR" && mkdir -p "$TAILGUARD_DIR"
start=$SECONDS
partner_pid=
partner() {
  env "$@" python3 -c 'import os,time,torch; os.sched_setaffinity(0,{2,3}); x=torch.ones(1,device="cuda"); (x+1).sum().item(); print("ready",flush=True); time.sleep(3600)' > /tmp/partner.out 2>&1 &
  partner_pid=$!
  for _ in $(seq 600); do grep -q ready /tmp/partner.out && return 0; sleep 0.1; done
  echo "partner not ready: $(tail -3 /tmp/partner.out)" >&2
}
low() { # label, env...
  local label=$1; shift
  env "$@" python3 bench/gpu/experiments/lone-batch.py "$seconds" "$label" > /tmp/low.out 2>&1 &
  local pid=$!
  for _ in $(seq 600); do grep -q ready /tmp/low.out && break; sleep 0.1; done
  sleep 2
  node -e 'const a=require(process.cwd()+"/build/Release/tailguard.node");
    const slots=a.controlBlocks(process.env.TAILGUARD_DIR).flatMap((b)=>b.slots??[]);
    console.log(JSON.stringify({label:process.argv[1],slots:slots.map((s)=>({pid:s.pid,priority:s.priority,mechanisms:s.mechanisms,timesliceUs:s.timesliceUs}))}))' "$label" >> "$out/slots.jsonl" 2>&1
  wait $pid
  grep '^{' /tmp/low.out >> "$out/probe.jsonl" || { echo "$label failed: $(tail -5 /tmp/low.out)" | tee -a "$out/errors.log"; }
}
configs=(plain plain+idle shim tg tg-ts0 tg-holds0)
for r in $(seq "$rounds"); do
  k=$(( (r - 1) % ${#configs[@]} ))
  for c in "${configs[@]:k}" "${configs[@]:0:k}"; do
    if (( SECONDS - start + seconds + 25 > deadline )); then echo "deadline: stopped before round $r $c"; break 2; fi
    case $c in
      plain) low "$c" ;;
      plain+idle) partner; low "$c" ;;
      shim) low "$c" LD_PRELOAD="$shim" ;;
      tg) partner LD_PRELOAD="$shim" TAILGUARD_PRIORITY=high; low "$c" LD_PRELOAD="$shim" TAILGUARD_PRIORITY=low ;;
      tg-ts0) partner LD_PRELOAD="$shim" TAILGUARD_PRIORITY=high; low "$c" LD_PRELOAD="$shim" TAILGUARD_PRIORITY=low TAILGUARD_TIMESLICE_US=0 ;;
      tg-holds0) partner LD_PRELOAD="$shim" TAILGUARD_PRIORITY=high; low "$c" LD_PRELOAD="$shim" TAILGUARD_PRIORITY=low TAILGUARD_HOLDS=0 ;;
    esac
    [[ -n $partner_pid ]] && { kill "$partner_pid" 2>/dev/null; wait "$partner_pid" 2>/dev/null; partner_pid=; }
    echo "round $r $c done at $((SECONDS - start)) s"
  done
done
python3 - "$out/probe.jsonl" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows: by.setdefault(r["label"], []).append(r)
print("| configuration | runs | it/s | enqueue ms/it | wait ms/it | GPU ms/it | CPU ms/it |")
print("|---|---|---|---|---|---|---|")
for label, rs in by.items():
    f = lambda k: " / ".join(f"{r[k]:.2f}" for r in rs)
    print(f"| {label} | {len(rs)} | {f('iter_per_s')} | {f('enqueue_ms')} | {f('wait_ms')} | {f('gpu_ms')} | {f('cpu_ms')} |")
PY
