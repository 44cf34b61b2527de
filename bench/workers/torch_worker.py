"""One worker of `tailguard bench` on a real GPU: PyTorch inference in one role per process, driven by the
orchestrator (agent/src/bench) through the same protocol as the simulated GPU's tg-workload (native/workload):

  argv     requests   --model resnet18 --batch 1 --flavour eager|graph --rate R --count N --arrivals fixed|poisson
                      --seed S --gpu-time 1 --warmup W --samples FILE --sync stdio [--cpus LIST]
           continuous --model resnet50 --batch B --warmup W --samples FILE --sync stdio [--cpus LIST]
  stdout   "ready" after the warm-up (cuDNN autotuning, CUDA-graph capture); at the end one JSON line (its summary)
  stdin    "start <CLOCK_MONOTONIC ns>": the first scheduled arrival / first iteration; "stop" ends `continuous`
  samples  requests: "<scheduled ns> <first launch ns> <completion ns> <GPU ns>" per request (GPU ns between CUDA
           events around the request); continuous: "<iteration start ns> <iteration end ns>" per iteration

Latency is completion minus the scheduled arrival (a late start counts against the request); Python's garbage
collector is off in the timed loops; the process is pinned to the CPUs given. The Poisson schedule is drawn exactly as
tg-workload draws it (splitmix64, the same logarithm), so one seed gives one schedule on both backends.
Ideas from bench/gpu/mission.py (the original harness of this test)."""
import argparse
import gc
import json
import os
import select
import struct
import sys
import time

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def ln(x):
    """Natural logarithm by exponent split and the atanh series: the arithmetic of tg-workload's ln()."""
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    e = ((bits >> 52) & 0x7FF) - 1023
    m = struct.unpack("<d", struct.pack("<Q", (bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000))[0]
    s = (m - 1) / (m + 1)
    s2, term, total = s * s, s, 0.0
    for k in range(1, 60, 2):
        total += term / k
        term *= s2
    return 2 * total + e * 0.69314718055994530942


def arrivals(count, rate, poisson, seed):
    """Offsets (ns) of the scheduled arrivals from the start."""
    if not poisson:
        return [int(i * (1e9 / rate)) for i in range(count)]
    rng, t, out = SplitMix64(seed), 0.0, []
    for i in range(count):
        if i > 0:
            u = (rng.next() >> 11) * (2.0 ** -53)
            t += -ln(1.0 - u) * (1e9 / rate)
        out.append(int(t))
    return out


def parse_cpus(text):
    cpus = set()
    for part in text.split(","):
        a, _, b = part.partition("-")
        cpus.update(range(int(a), int(b or a) + 1))
    return cpus


def wait_for_start():
    print("ready", flush=True)
    line = sys.stdin.readline().split()
    if len(line) != 2 or line[0] != "start":
        sys.exit(f"torch_worker: expected \"start <ns>\" on stdin, got {line!r}")
    return int(line[1])


def stop_requested():
    ready, _, _ = select.select([sys.stdin], [], [], 0)
    if not ready:
        return False
    line = sys.stdin.readline()
    return line == "" or line.strip() == "stop"


def sleep_until(t_ns):
    while True:
        left = t_ns - time.monotonic_ns()
        if left <= 0:
            return
        time.sleep(left / 1e9)


def build(model_name, batch):
    import torch
    import torchvision.models as models

    torch.backends.cudnn.benchmark = True
    model = getattr(models, model_name)(weights=None).cuda().eval()
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    return torch, model, x


def versions(torch):
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("role", choices=["requests", "continuous"])
    ap.add_argument("--model", required=True, choices=["resnet18", "resnet50"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--flavour", choices=["eager", "graph"], default="eager")
    ap.add_argument("--rate", type=float, default=10)
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--arrivals", choices=["fixed", "poisson"], default="fixed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gpu-time", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--samples", required=True)
    ap.add_argument("--sync", choices=["stdio"], required=True)
    ap.add_argument("--cpus")
    a = ap.parse_args()
    if a.rate <= 0 or a.count <= 0 or a.batch <= 0 or a.warmup < 0:
        sys.exit("torch_worker: --rate, --count and --batch must be positive, --warmup not negative")
    if a.cpus:
        os.sched_setaffinity(0, parse_cpus(a.cpus))
    if a.role == "requests":
        run_requests(a)
    else:
        run_continuous(a)


def run_requests(a):
    torch, model, x = build(a.model, a.batch)
    with torch.no_grad():
        for _ in range(max(a.warmup, 1)):
            model(x)
        torch.cuda.synchronize()
        step = lambda: model(x)  # noqa: E731
        if a.flavour == "graph":
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    model(x)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                model(x)
            for _ in range(max(a.warmup, 1)):
                graph.replay()
            torch.cuda.synchronize()
            step = graph.replay
        # one event pair per request, created before the timed loop and read after it
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(a.count)]
        at = arrivals(a.count, a.rate, a.arrivals == "poisson", a.seed)
        start = wait_for_start()
        rows = []
        gc.collect()
        gc.disable()
        for i, off in enumerate(at):
            due = start + off
            sleep_until(due)
            launched = time.monotonic_ns()
            if a.gpu_time:
                events[i][0].record()
            step()
            if a.gpu_time:
                events[i][1].record()
            torch.cuda.synchronize()
            rows.append((due, launched, time.monotonic_ns()))
        gc.enable()
    with open(a.samples, "w") as f:
        for (due, launched, done), (b, e) in zip(rows, events):
            gpu_ns = int(b.elapsed_time(e) * 1e6) if a.gpu_time else -1
            f.write(f"{due} {launched} {done} {gpu_ns}\n")
    lat = sorted((done - due) / 1e6 for due, _, done in rows)
    pct = lambda p: lat[min(len(lat) - 1, max(0, -(-len(lat) * p // 100) - 1))]  # noqa: E731 (nearest rank)
    print(json.dumps({"mode": "requests", "count": len(rows), "model": a.model, "batch": a.batch, "graph": a.flavour == "graph",
                      "arrivals": a.arrivals, "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": lat[-1], **versions(torch)}),
          flush=True)


def run_continuous(a):
    torch, model, x = build(a.model, a.batch)
    with torch.no_grad():
        for _ in range(max(a.warmup, 1)):
            model(x)
        torch.cuda.synchronize()
        start = wait_for_start()
        sleep_until(start)
        rows = []
        gc.collect()
        gc.disable()
        t = time.monotonic_ns()
        t0 = t
        while not stop_requested():
            begin = t
            model(x)
            torch.cuda.synchronize()
            t = time.monotonic_ns()
            rows.append((begin, t))
        gc.enable()
    with open(a.samples, "w") as f:
        for begin, end in rows:
            f.write(f"{begin} {end}\n")
    elapsed = (t - t0) / 1e9
    print(json.dumps({"mode": "continuous", "iterations": len(rows), "model": a.model, "batch": a.batch,
                      "seconds": elapsed, "iter_per_s": len(rows) / elapsed if elapsed > 0 else 0, **versions(torch)}),
          flush=True)


if __name__ == "__main__":
    main()
