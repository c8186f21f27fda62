# PyTorch side of bench/cuda.ts, measured in the same run on the same GPU: the same workloads,
# timed the same way (CUDA events around the GPU work; wall clock around whole calls).
# Usage: python3 bench/cuda_torch.py OUT.json [--quick]
import json
import sys
import time

import torch


def events_ms(fn, reps, batch=10):
    """Median milliseconds per fn() between CUDA events (batch calls back to back), after warm-up."""
    fn()
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(batch):
            fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / batch)
    times.sort()
    return times[len(times) // 2]


def wall_ms(fn, reps):
    fn()
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    out_path = sys.argv[1]
    quick = '--quick' in sys.argv
    reps = 5 if quick else 20
    dev = torch.device('cuda')
    res = {'torch': torch.__version__, 'device': torch.cuda.get_device_name(0)}

    # W1: mean(tanh(X W1) W2, axis 0), float32 with TF32 allowed.
    torch.backends.cuda.matmul.allow_tf32 = True
    X = torch.rand(262144, 1024, device=dev) * 2 - 1
    W1 = (torch.rand(1024, 1024, device=dev) * 2 - 1) / 32
    W2 = (torch.rand(1024, 256, device=dev) * 2 - 1) / 32

    def w1():
        return torch.mean(torch.tanh(X @ W1) @ W2, dim=0)

    res['w1_ms'] = events_ms(w1, reps)
    res['w1_call_ms'] = wall_ms(lambda: w1().cpu(), reps)
    del X

    # Fused elementwise chain over 2^28 float32 (eager runs one kernel per op), and device copy bandwidth.
    n = 1 << (26 if quick else 28)
    a = torch.rand(n, device=dev) * 2 - 1
    b = torch.rand(n, device=dev) * 2 - 1
    res['chain_ms'] = events_ms(lambda: torch.sigmoid(a * b + a) - b * 0.5, reps)
    dst = torch.empty_like(a)
    res['copy_ms'] = events_ms(lambda: dst.copy_(a), reps)
    res['copy_gbps'] = 2 * 4 * n / res['copy_ms'] / 1e6
    try:
        compiled = torch.compile(lambda p, q: torch.sigmoid(p * q + p) - q * 0.5)
        res['chain_compiled_ms'] = events_ms(lambda: compiled(a, b), reps)
    except Exception as e:  # inductor needs a working compiler toolchain
        res['chain_compiled_error'] = str(e).split('\n')[0][:200]
    del a, b, dst

    # Matrix products, fp32 and tf32.
    m = 4096 if quick else 8192
    A = torch.rand(m, m, device=dev) - 0.5
    B = torch.rand(m, m, device=dev) - 0.5
    torch.backends.cuda.matmul.allow_tf32 = False
    res['gemm_fp32_ms'] = events_ms(lambda: A @ B, reps)
    torch.backends.cuda.matmul.allow_tf32 = True
    res['gemm_tf32_ms'] = events_ms(lambda: A @ B, reps)
    # bfloat16 tensors (float32 accumulation): our 'medium' precision keeps float32 tensors and
    # lets cuBLAS round the operands, so this is the upper bound it is compared with.
    Ab, Bb = A.bfloat16(), B.bfloat16()
    res['gemm_bf16_ms'] = events_ms(lambda: Ab @ Bb, reps)
    del Ab, Bb
    # autocast on float32 tensors (the peer of T.fn({ precision: 'bf16' })): each call casts both operands to bfloat16.
    torch.backends.cuda.matmul.allow_tf32 = False
    def autocast_mm():
        with torch.autocast('cuda', dtype=torch.bfloat16):
            return A @ B
    res['gemm_autocast_ms'] = events_ms(autocast_mm, reps)
    del A, B

    # conv2d 3x3 (cuDNN), forward and forward + gradients of both inputs, fp32 and TF32.
    n_img, ch, hw = (16, 64, 56) if quick else (64, 64, 56)
    xi = (torch.rand(n_img, ch, hw, hw, device=dev) * 2 - 1).requires_grad_(True)
    fi = ((torch.rand(ch, ch, 3, 3, device=dev) * 2 - 1) * 0.1).requires_grad_(True)
    conv = torch.nn.functional.conv2d
    def conv_both():
        y = conv(xi, fi, padding=1)
        torch.autograd.grad((y * y).sum(), [xi, fi])
    for label, tf32 in (('fp32', False), ('tf32', True)):
        torch.backends.cudnn.allow_tf32 = tf32
        with torch.no_grad():
            res[f'conv_fwd_{label}_ms'] = events_ms(lambda: conv(xi, fi, padding=1), reps, 5)
        res[f'conv_fwd_bwd_{label}_ms'] = events_ms(conv_both, reps, 5)
    # autocast(dtype=torch.bfloat16) on the float32 tensors: the peer of precision 'bf16' (loss and gradients float32).
    torch.backends.cudnn.allow_tf32 = False
    def conv_autocast():
        with torch.autocast('cuda', dtype=torch.bfloat16):
            return conv(xi, fi, padding=1)
    def conv_both_autocast():
        y = conv_autocast().float()
        torch.autograd.grad((y * y).sum(), [xi, fi])
    with torch.no_grad():
        res['conv_fwd_autocast_ms'] = events_ms(conv_autocast, reps, 5)
    res['conv_fwd_bwd_autocast_ms'] = events_ms(conv_both_autocast, reps, 5)
    del xi, fi

    # Host to device: pinned and pageable, 1 GiB.
    nb = 1 << (26 if quick else 28)
    pinned = torch.rand(nb).pin_memory()
    pageable = torch.rand(nb)
    target = torch.empty(nb, device=dev)
    res['h2d_pinned_gbps'] = 4 * nb / events_ms(lambda: target.copy_(pinned, non_blocking=True), 5, 1) / 1e6
    res['h2d_pageable_gbps'] = 4 * nb / wall_ms(lambda: (target.copy_(pageable), torch.cuda.synchronize()), 5) / 1e6
    del target, pinned, pageable

    # Per-call overhead of a small function: host values in, host values out.
    small = torch.rand(16)
    res['small_call_us'] = 1e3 * wall_ms(lambda: (small.to(dev) + 1).cpu(), 200)

    with open(out_path, 'w') as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res))


main()
