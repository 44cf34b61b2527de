"""ResNet-18 inference (batch 1, eager) with an independent count of the kernels it ran: CUPTI through
torch.profiler, over a window marked with CLOCK_MONOTONIC timestamps that tailguard's records can be matched against.
Prints one JSON line."""
import json, sys, time
from collections import Counter

import torch
import torchvision.models as models
from torch.profiler import ProfilerActivity, profile

iters = int(sys.argv[1]) if len(sys.argv) > 1 else 20
torch.backends.cudnn.benchmark = False  # no autotuning: the same kernels every iteration
model = models.resnet18(weights=None).cuda().eval()
x = torch.randn(1, 3, 224, 224, device="cuda")
with torch.no_grad():
    for _ in range(5):
        model(x)
torch.cuda.synchronize()

with profile(activities=[ProfilerActivity.CUDA]) as prof:
    with torch.no_grad():
        t0 = time.monotonic_ns()
        for _ in range(iters):
            model(x)
        torch.cuda.synchronize()
        t1 = time.monotonic_ns()

kernels = Counter()
for e in prof.events():
    if e.device_type == torch.autograd.DeviceType.CUDA and not e.name.startswith(("Memcpy", "Memset")):
        kernels[e.name] += 1
print(json.dumps({"iters": iters, "window_start_ns": t0, "window_end_ns": t1, "cupti_kernels": sum(kernels.values()),
                  "cupti_by_kernel": kernels, "torch": torch.__version__,
                  "gpu": torch.cuda.get_device_name(0)}), flush=True)
