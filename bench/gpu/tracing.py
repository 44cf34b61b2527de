"""Issue 15 on the GPU machine: PyTorch ResNet-18 requests (batch 1, eager) inside `torch.cuda.nvtx` ranges and the
Python helper's `tailguard.request(traceparent=...)`, against the same requests without either, in one process under
the shim, with the agent writing spans to a file.

- Cost: rounds of two short blocks, plain and traced, in A B / B A order; each block runs requests back to back
  (closed loop) and gives request P50, P99 (service time: launch to sync) and throughput; per round the traced block
  is divided by the plain one, and bench/gpu/paired_stats.py gives the geometric mean and 95 % interval of the ratios.
- Joining: every traced request's traceparent is written to traceparents.jsonl; bench/gpu/tracing-check.mjs then
  reads the agent's spans file and counts the requests whose trace has a tailguard span under the app's span, and the
  NVTX range spans.

    LD_PRELOAD=native/build/libtailguard.so TAILGUARD_DIR=... python3 bench/gpu/tracing.py --out DIR [--block 2]
        [--rounds 6] [--fake]

`--fake` runs CPU-only stand-ins (no torch, no GPU) so that the script itself is tested without a GPU."""
import argparse
import json
import os
import secrets
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import paired_stats as stats  # noqa: E402
import tailguard  # noqa: E402


def model(fake):
    """request() -> None: one ResNet-18 b1 request to completion; nvtx: (push, pop)."""
    if fake:
        return (lambda: time.sleep(0.002)), (lambda msg: None, lambda: None)
    import torch
    import torchvision.models as models

    torch.backends.cudnn.benchmark = True
    torch.set_grad_enabled(False)
    net = models.resnet18(weights=None).cuda().eval()
    x = torch.randn(1, 3, 224, 224, device="cuda")
    for _ in range(50):
        net(x)
    torch.cuda.synchronize()

    def run():
        net(x)
        torch.cuda.synchronize()

    return run, (torch.cuda.nvtx.range_push, torch.cuda.nvtx.range_pop)


def block(mode, seconds, run, nvtx, log):
    push, pop = nvtx
    lat, end = [], time.perf_counter() + seconds
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        if t0 >= end:
            break
        if mode == "traced":
            tp = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
            with tailguard.request(traceparent=tp, name="infer"):
                push("resnet18")
                run()
                pop()
            log.write(tp + "\n")
        else:
            run()
        lat.append((time.perf_counter() - t0) * 1e3)
    took = time.perf_counter() - start
    return {"mode": mode, "requests": len(lat), "per_s": len(lat) / took,
            "p50_ms": stats.percentile(lat, 50), "p99_ms": stats.percentile(lat, 99)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--block", type=float, default=2.0, help="seconds per block (default 2)")
    ap.add_argument("--rounds", type=int, default=6, help="rounds of plain + traced (default 6)")
    ap.add_argument("--fake", action="store_true", help="CPU-only stand-in requests, no torch or GPU")
    a = ap.parse_args()
    if a.rounds < 3:
        ap.error(f"--rounds {a.rounds}: at least 3 (issue 15 asks for 3 repetitions)")
    os.makedirs(a.out, exist_ok=True)
    run, nvtx = model(a.fake)
    blocks = []
    with open(os.path.join(a.out, "traceparents.jsonl"), "w") as log:
        block("traced", 0.5, run, nvtx, open(os.devnull, "w"))  # warm the helper's path too
        for r, order in enumerate(stats.block_order(["plain", "traced"], a.rounds)):
            for mode in order:
                b = block(mode, a.block, run, nvtx, log)
                b["round"] = r
                blocks.append(b)
                print(f"  round {r} {mode}: {b['requests']} requests, {b['per_s']:.1f}/s, "
                      f"P50 {b['p50_ms']:.3f} P99 {b['p99_ms']:.3f} ms", flush=True)
    by = {(b["round"], b["mode"]): b for b in blocks}
    ratios = {}
    for metric in ("p50_ms", "p99_ms", "per_s"):
        per_round = [by[(r, "traced")][metric] / by[(r, "plain")][metric] for r in range(a.rounds)]
        iv = stats.paired_interval(per_round)
        bound = {"op": ">=", "value": 0.99} if metric == "per_s" else {"op": "<=", "value": 1.01}
        ratios[metric] = {**iv, "per_round": per_round, "bound": bound, "verdict": stats.verdict(iv["ci"], bound)}
    result = {"attached": tailguard.attached(), "fake": a.fake, "block_s": a.block, "rounds": a.rounds,
              "blocks": blocks, "ratios": ratios}
    with open(os.path.join(a.out, "tracing.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"tracing cost, traced / plain over {a.rounds} rounds of {a.block:g} s blocks "
          f"(shim {'attached' if result['attached'] else 'absent'}):")
    for metric, x in ratios.items():
        ci = f"{x['ci'][0]:.3f}-{x['ci'][1]:.3f}" if x["ci"] else "-"
        print(f"  {metric:7} {x['geomean']:.3f}  {ci}  {x['bound']['op']} {x['bound']['value']}  {x['verdict']}")


if __name__ == "__main__":
    main()
