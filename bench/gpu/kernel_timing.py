"""Issue 16 item 2 on the GPU machine: per-kernel device time through CUPTI (TAILGUARD_KERNEL_TIMING, docs/gpu-time.md
"Per-kernel device time (CUPTI)") against CUPTI's own totals as PyTorch's profiler (Kineto) reads them.

PyTorch ResNet-18, batch 1, eager, cudnn deterministic (both phases run the same kernels), REQUESTS requests back to
back, each one forward and a synchronize. Per repetition, each phase in a process of its own:

- tailguard: `tailguard run --record` of this script's `serve` under the shim with TAILGUARD_KERNEL_TIMING=all; each
  request's CLOCK_MONOTONIC start and end go to a file, and each request's kernel device time is the sum of the
  recording's kernel_time lines whose launch falls inside it;
- profiler: this script's `profile`, no shim, under torch.profiler (CUDA activities), each request inside a
  record_function; each request's kernel device time is the sum of the trace's kernels inside it;
- cost: `serve` under the shim with TAILGUARD_KERNEL_TIMING=off, sampled and all (recorded, like the tailguard phase):
  request latency P50/P99 of each, against off.

Acceptance (issue 16): per-request kernel device time, tailguard / profiler, within 5 % (median over requests, then
median over repetitions); also per kernel position (the same sequence of kernels in both phases) the ratio of the
medians, summarised. Results: OUTDIR/kernel_timing.json (and each phase's raw files).

    python3 bench/gpu/kernel_timing.py --out DIR [--reps 3] [--requests 300] [--node node]

Runs from the repository root's build (native/build/libtailguard.so, agent/dist, build/Release); needs python3 with
torch and torchvision, and a node binary (--node, default `node` on PATH) with the production node_modules."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SHIM = os.path.join(ROOT, "native", "build", "libtailguard.so")
CLI = os.path.join(ROOT, "agent", "dist", "cli.js")
WARMUP = 50


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def make_model():
    import torch
    import torchvision.models as models

    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.set_grad_enabled(False)
    net = models.resnet18(weights=None).cuda().eval()
    x = torch.randn(1, 3, 224, 224, device="cuda")
    for _ in range(WARMUP):
        net(x)
    torch.cuda.synchronize()
    return torch, net, x


def serve(args):
    """Requests under the shim: each one's CLOCK_MONOTONIC start and end, and its latency."""
    torch, net, x = make_model()
    spans = []
    for _ in range(args.requests):
        t0 = mono_ns()
        net(x)
        torch.cuda.synchronize()
        spans.append([t0, mono_ns()])
    with open(args.spans, "w") as f:
        json.dump({"requests": spans}, f)


def profile(args):
    """The same requests under torch.profiler: its Chrome trace, each request a record_function."""
    torch, net, x = make_model()
    from torch.profiler import ProfilerActivity, profile as tprofile, record_function

    with tprofile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(args.requests):
            with record_function(f"tg_request_{i}"):
                net(x)
                torch.cuda.synchronize()
    prof.export_chrome_trace(args.trace)


def percentile(xs, p):
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, int(round(p / 100 * len(s))) - 1))] if s else None


def recorded_requests(recording, spans_file):
    """Per request of a `serve` run: the device times (ns) of its kernels, in launch order."""
    with open(spans_file) as f:
        spans = json.load(f)["requests"]
    origin, kernels = None, []
    with open(recording) as f:
        for line in f:
            o = json.loads(line)
            if o.get("kind") == "recording":
                origin = int(o["origin_monotonic_ns"])
            elif o.get("kind") == "kernel_time" and o.get("op") == "kernel":
                # keyed by its launch, or (launched through the CUDA runtime) by the call that made it
                at = o["launch"] if "launch" in o else o["call_end"]
                kernels.append((at, o["gpu_end"] - o["gpu_start"], o.get("kernel", "")))
    if origin is None:
        raise SystemExit(f"{recording}: no recording line (not a tailguard run --record file?)")
    kernels.sort()
    out, k = [], 0
    for t0, t1 in spans:
        a, b = t0 - origin, t1 - origin
        while k < len(kernels) and kernels[k][0] < a:
            k += 1
        mine = []
        while k < len(kernels) and kernels[k][0] <= b:
            mine.append(kernels[k][1])
            k += 1
        out.append(mine)
    return out


def profiled_requests(trace):
    """Per request of a `profile` run: the device times (ns) of its kernels, in start order."""
    with open(trace) as f:
        events = json.load(f)["traceEvents"]
    reqs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("ph") == "X" and str(e.get("name", "")).startswith("tg_request_")
                  and e.get("cat") in ("user_annotation", "cpu_op", None) and "dur" in e)
    # a record_function appears on the CPU timeline and (gpu_user_annotation) on the GPU's: the CPU one bounds the
    # request (it ends after the synchronize), and they are told apart by their category
    kernels = sorted((e["ts"], e["dur"]) for e in events if e.get("ph") == "X" and e.get("cat") == "kernel")
    out, k = [], 0
    for a, b in reqs:
        while k < len(kernels) and kernels[k][0] < a:
            k += 1
        mine = []
        while k < len(kernels) and kernels[k][0] <= b:
            mine.append(kernels[k][1] * 1000.0)  # µs → ns
            k += 1
        out.append(mine)
    return out


def run(cmd, env=None, log=None):
    r = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log:
        with open(log, "w") as f:
            f.write(r.stdout)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}")
    return r.stdout


def tailguard_phase(args, out, tag, timing):
    rec, spans = os.path.join(out, f"{tag}.jsonl"), os.path.join(out, f"{tag}-requests.json")
    env = dict(os.environ, TAILGUARD_KERNEL_TIMING=timing)
    env.pop("LD_PRELOAD", None)
    run([args.node, CLI, "run", "--record", rec, "--", sys.executable, os.path.abspath(__file__), "serve",
         "--requests", str(args.requests), "--spans", spans], env=env, log=os.path.join(out, f"{tag}.log"))
    with open(spans) as f:
        lat = [(b - a) / 1e6 for a, b in json.load(f)["requests"]]
    return rec, spans, {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "requests": len(lat)}


def compare(tg, prof):
    """Per-request sums and per-position medians of two phases' kernels."""
    n = min(len(tg), len(prof))
    sums_tg = [sum(r) for r in tg[:n]]
    sums_prof = [sum(r) for r in prof[:n]]
    counts = sorted({len(r) for r in tg[:n]}), sorted({len(r) for r in prof[:n]})
    result = {
        "requests": n,
        "kernels_per_request": {"tailguard": counts[0], "profiler": counts[1]},
        "request_device_ns_median": {"tailguard": statistics.median(sums_tg), "profiler": statistics.median(sums_prof)},
        "ratio_request_median": statistics.median(sums_tg) / statistics.median(sums_prof),
        "ratio_request_total": sum(sums_tg) / sum(sums_prof),
    }
    # the same kernel sequence in both: compare each position's median duration
    if len(counts[0]) == 1 and counts[0] == counts[1]:
        per = []
        for j in range(counts[0][0]):
            a = statistics.median(r[j] for r in tg[:n])
            b = statistics.median(r[j] for r in prof[:n])
            if b > 0:
                per.append(a / b)
        result["per_kernel_ratio"] = {"median": statistics.median(per), "p5": percentile(per, 5),
                                      "p95": percentile(per, 95), "kernels": len(per),
                                      "within_5pct": sum(1 for r in per if abs(r - 1) <= 0.05)}
    return result


def main_run(args):
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    for need in (SHIM, CLI):
        if not os.path.exists(need):
            raise SystemExit(f"{need} is missing: build first (make -C native; npm run build, or carry agent/dist)")
    import torch  # noqa: F401 (fail early, before the first phase)

    reps = []
    for r in range(args.reps):
        rep = {"rep": r + 1}
        tag = f"rep{r + 1}"
        rec, spans, rep["tailguard_latency"] = tailguard_phase(args, out, f"{tag}-all", "all")
        trace = os.path.join(out, f"{tag}-profiler.json")
        run([sys.executable, os.path.abspath(__file__), "profile", "--requests", str(args.requests), "--trace", trace],
            env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}, log=os.path.join(out, f"{tag}-profiler.log"))
        rep["agreement"] = compare(recorded_requests(rec, spans), profiled_requests(trace))
        cost = {"all": rep["tailguard_latency"]}
        for timing in ("off", "sampled"):
            _, _, cost[timing] = tailguard_phase(args, out, f"{tag}-{timing}", timing)
        rep["cost"] = {m: dict(cost[m], p50_vs_off=cost[m]["p50_ms"] / cost["off"]["p50_ms"],
                               p99_vs_off=cost[m]["p99_ms"] / cost["off"]["p99_ms"]) for m in ("off", "sampled", "all")}
        reps.append(rep)
        print(json.dumps(rep), flush=True)
    med = lambda f: statistics.median(f(x) for x in reps)  # noqa: E731
    summary = {
        "ratio_request_median": med(lambda x: x["agreement"]["ratio_request_median"]),
        "ratio_request_total": med(lambda x: x["agreement"]["ratio_request_total"]),
        "cost_p50_vs_off": {m: med(lambda x, m=m: x["cost"][m]["p50_vs_off"]) for m in ("sampled", "all")},
        "cost_p99_vs_off": {m: med(lambda x, m=m: x["cost"][m]["p99_vs_off"]) for m in ("sampled", "all")},
    }
    if all("per_kernel_ratio" in x["agreement"] for x in reps):
        summary["per_kernel_ratio_median"] = med(lambda x: x["agreement"]["per_kernel_ratio"]["median"])
    summary["acceptance_within_5pct"] = abs(summary["ratio_request_median"] - 1) <= 0.05
    import torch
    report = {
        "benchmark": "per-kernel device time (CUPTI) against torch.profiler",
        "command": f"python3 bench/gpu/kernel_timing.py --out {args.out} --reps {args.reps} --requests {args.requests}",
        "commit": os.environ.get("TG_COMMIT") or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                                              capture_output=True, text=True).stdout.strip() or "unknown",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "requests_per_phase": args.requests,
        "summary": summary,
        "repetitions": reps,
    }
    with open(os.path.join(out, "kernel_timing.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(summary, indent=2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="everything (the default)")
    for p in (ap, r):
        p.add_argument("--out", default=None)
        p.add_argument("--reps", type=int, default=3)
        p.add_argument("--requests", type=int, default=300)
        p.add_argument("--node", default=os.environ.get("NODE", "node"))
    s = sub.add_parser("serve")
    s.add_argument("--requests", type=int, required=True)
    s.add_argument("--spans", required=True)
    p = sub.add_parser("profile")
    p.add_argument("--requests", type=int, required=True)
    p.add_argument("--trace", required=True)
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args)
    elif args.cmd == "profile":
        profile(args)
    else:
        if not args.out:
            ap.error("--out DIR is required")
        if args.reps < 3:
            ap.error("--reps must be at least 3 (the result is a median over repetitions)")
        main_run(args)


if __name__ == "__main__":
    main()
