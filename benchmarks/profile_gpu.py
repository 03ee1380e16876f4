"""Where does smoothgrad's time above the floor go on a GPU? (diagnostic for issue 16)

Profiles (torch.profiler, CPU + CUDA) one smoothgrad call on a trivial model and on
ResNet-50 (n = 64, B = 32), the floor's passes, and times the parts of a chunk alone
with CUDA events: the noise, scaling and adding the image, the running sums.

    python benchmarks/profile_gpu.py
"""
from __future__ import annotations

import statistics
import time

import torch
import torchvision
from torch.profiler import ProfilerActivity, profile

from interp_helpers import _rng
import interp_helpers.attribution.noise as saliency
from interp_helpers.attribution.noise import smoothgrad

dev = torch.device("cuda")
N, B = 64, 32


class Trivial(torch.nn.Module):
    def forward(self, x):
        return x[:, 0, 0, :8]


def cuda_ms(fn, reps=20):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


def wall_ms(fn, reps=10):
    fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ts)


x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(dev)
keys = torch.tensor([_rng.stream_key(0, 0, j) for j in range(B)], device=dev)
buf = torch.empty(B, 3 * 224 * 224, device=dev)
scale = torch.full((B,), 0.5, device=dev)
noisy = torch.empty(B, 3, 224, 224, device=dev)
print(f"parts of one chunk of {B} (CUDA-event ms, median of 20):")
print(f"  normal_            {cuda_ms(lambda: _rng.normal_(buf, keys)):.3f}")
print(f"  torch.randn (ref)  {cuda_ms(lambda: torch.randn(B, 3 * 224 * 224, device=dev)):.3f}")
print(f"  _noise_into        {cuda_ms(lambda: saliency._noise_into(noisy, keys, scale)):.3f}")
print(f"  add image          {cuda_ms(lambda: noisy.add_(x[0])):.3f}")
sums = saliency._Sums(x.shape[0], "smoothgrad")
attr = torch.randn(B, 3, 224, 224, device=dev)
print(f"  _Sums.add          {cuda_ms(lambda: sums.add(0, attr)):.3f}")

resnet = torchvision.models.resnet50(weights=None).eval().to(dev)
chunks = [(x + 0.3 * torch.randn(B, 3, 224, 224, device=dev)) for _ in range(N // B)]
tgt = torch.full((B, 1), 1, device=dev)


def floor():
    for p in resnet.parameters():
        p.requires_grad_(False)
    for xb in chunks:
        xb.requires_grad_(True)
        (g,) = torch.autograd.grad(resnet(xb).gather(1, tgt).sum(), xb)
        xb.requires_grad_(False)
    for p in resnet.parameters():
        p.requires_grad_(True)


runs = {
    "trivial smoothgrad": lambda: smoothgrad(Trivial(), x, 1, n_samples=N, batch_size=B, seed=0),
    "resnet50 smoothgrad": lambda: smoothgrad(resnet, x, 1, n_samples=N, batch_size=B, seed=0),
    "resnet50 floor": floor,
}
for name, fn in runs.items():
    print(f"\n== {name}: wall {wall_ms(fn):.2f} ms, CUDA events {cuda_ms(fn, 10):.2f} ms")
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
    ka = prof.key_averages()
    gpu_total = sum(e.self_device_time_total for e in ka) / 3 / 1e3
    print(f"GPU kernel time per call {gpu_total:.2f} ms")
    print(ka.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=40))
    print(ka.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40))
