"""Issue 15 on the GPU machine: PyTorch ResNet-18 requests (batch 1, eager) inside `torch.cuda.nvtx` ranges and the
Python helper's `tailguard.request(traceparent=...)`, against the same requests without either, in one process under
the shim, with the agent writing spans to a file.

- Cost: requests back to back (closed loop), each timed from its first call to its sync (service time). Interleaved
  design (the default): every round is one block in which plain and traced requests alternate in pairs, the order
  inside each pair drawn at random (seeded), so both modes see the same seconds of a host that moves a job's speed by
  tens of percent between seconds; the blocks design runs one mode per block, A B / B A. Per round: traced / plain of
  P50, P99 (pooled over the rounds, with a round bootstrap, when a round has under 100 requests of a mode) and
  throughput (1 / mean service time); bench/gpu/paired_stats.py gives the geometric mean and 95 % interval.
- Joining: every traced request's traceparent is written to traceparents.jsonl; bench/gpu/tracing-check.mjs then
  reads the agent's spans file and counts the requests whose trace has a tailguard span under the app's span, and the
  NVTX range spans.

    LD_PRELOAD=native/build/libtailguard.so TAILGUARD_DIR=... python3 bench/gpu/tracing.py --out DIR [--block 2]
        [--rounds 6] [--design interleaved|blocks] [--seed N] [--fake]

`--fake` runs CPU-only stand-ins (no torch, no GPU) so that the script itself is tested without a GPU."""
import argparse
import json
import os
import random
import secrets
import statistics
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


# what each mode wraps a request in: the helper's request (with a traceparent), an NVTX range, both, or neither
PARTS = {"plain": (False, False), "traced": (True, True), "request": (True, False), "nvtx": (False, True),
         "range": (True, True)}  # range: one NVTX range "resnet18 <traceparent>", both at once (range_message)


def one(mode, run, nvtx, log):
    """One request of `mode`, to completion; its service time in ms. The traceparent is drawn and logged outside the
    timed part: an instrumented server has its ids already, and the log is this script's. Only "traced" requests are
    logged (tracing-check.mjs expects each with its NVTX range)."""
    push, pop = nvtx
    request, ranged = PARTS[mode]
    tp = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01" if request else None
    t0 = time.perf_counter()
    if mode == "range":
        push(tailguard.range_message("resnet18", tp))
        run()
        pop()
    elif tp and ranged:
        with tailguard.request(traceparent=tp, name="infer"):
            push("resnet18")
            run()
            pop()
    elif tp:
        with tailguard.request(traceparent=tp, name="infer"):
            run()
    elif ranged:
        push("resnet18")
        run()
        pop()
    else:
        run()
    ms = (time.perf_counter() - t0) * 1e3
    if mode == "traced":
        log.write(tp + "\n")
    return ms


def block(modes, seconds, run, nvtx, log, rng):
    """Requests back to back for `seconds`: with one mode, all of it; with two (the interleaved design), in pairs, one
    of each, in an order drawn per pair, so both modes see the same seconds of the host. -> {mode: [ms, ...]}."""
    lat = {m: [] for m in modes}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pair = list(modes)
        rng.shuffle(pair)
        for m in pair:
            lat[m].append(one(m, run, nvtx, log))
    return lat


def summary(mode, lat, seconds):
    return {"mode": mode, "requests": len(lat), "per_s": 1e3 / statistics.fmean(lat) if lat else None,
            "p50_ms": stats.percentile(lat, 50), "p99_ms": stats.percentile(lat, 99), "seconds": seconds}


def ratio(metric, num, den, pooled_p=None):
    """traced / plain of `metric` per round, with its interval; P99 of rounds under 100 requests a mode is pooled."""
    bound = {"op": ">=", "value": 0.99} if metric == "per_s" else {"op": "<=", "value": 1.01}
    if pooled_p is not None and min(min(len(x) for x in num), min(len(x) for x in den)) < 100:
        iv = stats.pooled_interval(num, den, pooled_p)
        return {**iv, "geomean": iv["ratio"], "bound": bound, "verdict": stats.verdict(iv["ci"], bound)}
    per_round = [summary("", a, 0)[metric] / summary("", b, 0)[metric] for a, b in zip(num, den)]
    iv = stats.paired_interval(per_round)
    return {**iv, "per_round": per_round, "bound": bound, "verdict": stats.verdict(iv["ci"], bound)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--block", type=float, default=2.0, help="seconds per block (default 2)")
    ap.add_argument("--rounds", type=int, default=6, help="rounds of plain + traced (default 6)")
    ap.add_argument("--design", choices=["interleaved", "blocks"], default="interleaved",
                    help="interleaved (default): both modes in every block, request by request; blocks: one mode a "
                         "block, A B / B A")
    ap.add_argument("--seed", type=int, default=15, help="seed of the interleaved order (default 15)")
    ap.add_argument("--parts", action="store_true",
                    help="also time the helper's request alone, the NVTX range alone, and one range that is both "
                         "(\"resnet18 <traceparent>\", tailguard.range_message) (interleaved design)")
    ap.add_argument("--fake", action="store_true", help="CPU-only stand-in requests, no torch or GPU")
    a = ap.parse_args()
    if a.rounds < 3:
        ap.error(f"--rounds {a.rounds}: at least 3 (issue 15 asks for 3 repetitions)")
    os.makedirs(a.out, exist_ok=True)
    run, nvtx = model(a.fake)
    rng = random.Random(a.seed)
    modes = ["plain", "traced"] + (["request", "nvtx", "range"] if a.parts else [])
    if a.parts and a.design != "interleaved":
        ap.error("--parts needs --design interleaved")
    blocks, rounds = [], []  # rounds: {mode: [ms, ...]} per round
    with open(os.path.join(a.out, "traceparents.jsonl"), "w") as log:
        block(["traced"], 0.5, run, nvtx, open(os.devnull, "w"), rng)  # warm the helper's path too
        for r, order in enumerate(stats.block_order(modes, a.rounds)):
            lat = {}
            for group in ([modes] if a.design == "interleaved" else [[m] for m in order]):
                lat.update(block(group, a.block, run, nvtx, log, rng))
            rounds.append(lat)
            for m in modes:
                b = {**summary(m, lat[m], a.block), "round": r}
                blocks.append(b)
                print(f"  round {r} {m}: {b['requests']} requests, {b['per_s']:.1f}/s, "
                      f"P50 {b['p50_ms']:.3f} P99 {b['p99_ms']:.3f} ms", flush=True)
    den = [x["plain"] for x in rounds]
    num = [x["traced"] for x in rounds]
    ratios = {"p50_ms": ratio("p50_ms", num, den), "p99_ms": ratio("p99_ms", num, den, 99),
              "per_s": ratio("per_s", num, den)}
    for m in modes[2:]:  # the parts: what each costs alone, on the median request
        ratios[f"p50_ms {m} alone"] = ratio("p50_ms", [x[m] for x in rounds], den)
        ratios[f"p50_ms {m} alone"]["bound"] = None
        ratios[f"p50_ms {m} alone"]["verdict"] = None
    result = {"attached": tailguard.attached(), "fake": a.fake, "design": a.design, "block_s": a.block,
              "rounds": a.rounds, "seed": a.seed, "blocks": blocks, "ratios": ratios}
    with open(os.path.join(a.out, "tracing.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"tracing cost, traced / plain over {a.rounds} rounds of {a.block:g} s blocks, {a.design} "
          f"(shim {'attached' if result['attached'] else 'absent'}):")
    for metric, x in ratios.items():
        ci = f"{x['ci'][0]:.3f}-{x['ci'][1]:.3f}" if x["ci"] else "-"
        bound = f"{x['bound']['op']} {x['bound']['value']}  {x['verdict']}" if x["bound"] else ""
        print(f"  {metric:7} {x['geomean']:.3f}  {ci}  {bound}")


if __name__ == "__main__":
    main()
