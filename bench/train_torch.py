#!/usr/bin/env python3
"""The PyTorch side of bench/train.ts: the MLP 784-H-H-10 (ReLU, cross-entropy) with Adam, one
training step = forward + loss + backward + optimizer.step (+ zero_grad), timed as the median of
several steps after warm-up, at batch 512 and 8192; on CPU with each thread count asked, and on
CUDA (eager and torch.compile) when a GPU is there. Run it on the machine where bench/train.ts ran.

Usage: python3 bench/train_torch.py [--threads 1,2,4,8,16] [--batches 512,8192] [--steps 20]
                                    [--hidden 2048] [--no-compile] [--tf32] [--bf16] [--json out.json]
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_model(hidden: int, device: torch.device) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)).to(device)


def time_steps(device: torch.device, hidden: int, batch: int, steps: int, compile_model: bool, bf16: bool = False) -> float:
    model = make_model(hidden, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(batch, 784, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    forward = torch.compile(model) if compile_model else model

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        # bf16: autocast, as synkhronos's precision 'bf16' (bf16 matmul operands, float32 master weights and loss)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(5 if not compile_model else 10):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", default=str(os.cpu_count() or 1), help="CPU thread counts, comma-separated")
    p.add_argument("--batches", default="512,8192")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile on CUDA")
    p.add_argument("--tf32", action="store_true", help="also measure CUDA with TF32 matrix products allowed")
    p.add_argument("--bf16", action="store_true", help="also measure CUDA under torch.autocast(dtype=torch.bfloat16) (peer of train.ts --precision bf16)")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU measurements")
    p.add_argument("--json", help="also write the results as JSON")
    a = p.parse_args()
    batches = [int(b) for b in a.batches.split(",")]
    results = []
    print(f"PyTorch {torch.__version__}; MLP 784-{a.hidden}-{a.hidden}-10, Adam; median of {a.steps} steps")
    if not a.no_cpu:
        for threads in [int(t) for t in a.threads.split(",")]:
            torch.set_num_threads(threads)
            for batch in batches:
                ms = time_steps(torch.device("cpu"), a.hidden, batch, a.steps, False)
                results.append({"device": "cpu", "threads": threads, "mode": "eager", "batch": batch, "msPerStep": ms, "samplesPerSecond": batch / ms * 1000})
                print(f"cpu, {threads} threads, batch {batch}: {ms:.2f} ms/step, {batch / ms * 1000:.0f} samples/s")
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        name = torch.cuda.get_device_name(0)
        for precision in ["highest"] + (["high"] if a.tf32 else []) + (["bf16"] if a.bf16 else []):
            torch.backends.cuda.matmul.allow_tf32 = precision == "high"
            torch.backends.cudnn.allow_tf32 = precision == "high"
            for mode in ["eager"] + ([] if a.no_compile else ["compile"]):
                for batch in batches:
                    try:
                        ms = time_steps(dev, a.hidden, batch, a.steps, mode == "compile", precision == "bf16")
                    except Exception as e:  # torch.compile may be unavailable (no triton, no compiler)
                        print(f"cuda {mode}, batch {batch}: skipped ({type(e).__name__}: {e})")
                        continue
                    label = mode if precision == "highest" else f"{mode} {'tf32' if precision == 'high' else 'bf16 autocast'}"
                    results.append({"device": f"cuda ({name})", "mode": label, "batch": batch, "msPerStep": ms, "samplesPerSecond": batch / ms * 1000})
                    print(f"cuda ({name}) {label}, batch {batch}: {ms:.2f} ms/step, {batch / ms * 1000:.0f} samples/s")
    else:
        print("no CUDA device: GPU rows skipped")
    print("\n| device | threads | mode | batch | ms/step | samples/s |\n|---|---:|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['device']} | {r.get('threads', '')} | {r['mode']} | {r['batch']} | {r['msPerStep']:.2f} | {r['samplesPerSecond']:.0f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "hidden": a.hidden, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
