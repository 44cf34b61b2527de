"""Probe: where does the eager batch job (ResNet-50 batch 8) spend each iteration? Runs for S seconds after a warm-up
and prints one JSON line: iterations/s, and per iteration the host time to enqueue the forward pass, the time waiting in
the sync after it, the GPU time between CUDA events around it, and the process's CPU time (all threads). Run by
lone-batch.sh under each configuration (no shim, shim, tailguard's mechanisms with an idle higher-priority process
attached, ...), to tell a host cost of the shim from a GPU-side cost of a lever. Not part of the product."""
import gc
import json
import os
import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
label = sys.argv[2] if len(sys.argv) > 2 else ""
if os.environ.get("PROBE_CPUS"):
    os.sched_setaffinity(0, {int(c) for c in os.environ["PROBE_CPUS"].split(",")})

import torch  # noqa: E402
import torchvision.models as models  # noqa: E402

torch.backends.cudnn.benchmark = True
model = models.resnet50(weights=None).cuda().eval()
x = torch.randn(8, 3, 224, 224, device="cuda")
with torch.no_grad():
    for _ in range(30):
        model(x)
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(64)]
    print("ready", flush=True)
    gc.collect()
    gc.disable()
    n = 0
    enqueue = wait = 0
    gpu_ms = 0.0
    cpu0 = time.process_time()
    t0 = time.monotonic_ns()
    end = t0 + int(seconds * 1e9)
    t = t0
    while t < end:
        a, b = events[n % 64]
        a.record()
        model(x)
        b.record()
        tm = time.monotonic_ns()
        torch.cuda.synchronize()
        te = time.monotonic_ns()
        gpu_ms += a.elapsed_time(b)
        enqueue += tm - t
        wait += te - tm
        t = te
        n += 1
    cpu = time.process_time() - cpu0
    gc.enable()
wall = (t - t0) / 1e9
print(json.dumps({"label": label, "iterations": n, "iter_per_s": n / wall, "enqueue_ms": enqueue / n / 1e6,
                  "wait_ms": wait / n / 1e6, "gpu_ms": gpu_ms / n, "cpu_ms": cpu * 1e3 / n, "cores": cpu / wall,
                  "env": {k: v for k, v in os.environ.items() if k.startswith("TAILGUARD_") or k == "LD_PRELOAD"}}),
      flush=True)
