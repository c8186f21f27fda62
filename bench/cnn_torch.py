#!/usr/bin/env python3
"""The PyTorch side of bench/cnn.ts: examples/train-mnist-cnn.ts's network (conv5x5(16)-relu-maxpool2-
conv5x5(32)-relu-maxpool2-flatten-dense(1568 -> 128, relu)-dropout(0.25)-dense(10), cross-entropy)
with Adam lr 1e-3, in train mode (dropout on), on random (batch, 1, 28, 28) images. One training step
= forward + loss + backward + optimizer.step (+ zero_grad), timed as the median of several steps after
warm-up, at batch 128 and 1024; on CPU with each thread count asked, and on CUDA (eager) when a GPU is
there. Run it on the machine where bench/cnn.ts ran.

Usage: python3 bench/cnn_torch.py [--threads 1,2,4,8,16] [--batches 128,1024] [--steps 20]
                                  [--no-cuda] [--no-cpu] [--json out.json]
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_model(device: torch.device) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    ).to(device)


def time_steps(device: torch.device, batch: int, steps: int) -> float:
    model = make_model(device)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(5):
        step()
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def positive_list(v: str) -> list:
    out = [int(s) for s in v.split(",")]
    if any(n < 1 for n in out):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of positive integers, got {v!r}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=positive_list, default=[os.cpu_count() or 1], help="CPU thread counts, comma-separated")
    p.add_argument("--batches", type=positive_list, default=[128, 1024])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--no-cuda", action="store_true", help="skip the CUDA measurements")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU measurements")
    p.add_argument("--json", help="also write the results as JSON")
    a = p.parse_args()
    if a.steps < 1:
        p.error(f"--steps must be a positive integer, got {a.steps}")
    results = []
    model = "conv5x5(16)-pool-conv5x5(32)-pool-dense(128)-dropout(0.25)-10"
    print(f"PyTorch {torch.__version__}; CNN {model}, Adam lr 0.001, train mode; median of {a.steps} steps")
    if not a.no_cpu:
        for threads in a.threads:
            torch.set_num_threads(threads)
            for batch in a.batches:
                ms = time_steps(torch.device("cpu"), batch, a.steps)
                results.append({"device": "cpu", "threads": threads, "mode": "eager", "batch": batch, "msPerStep": ms, "samplesPerSecond": batch / ms * 1000})
                print(f"cpu, {threads} threads, batch {batch}: {ms:.2f} ms/step, {batch / ms * 1000:.0f} samples/s")
    if a.no_cuda:
        print("--no-cuda: GPU rows skipped")
    elif torch.cuda.is_available():
        dev = torch.device("cuda")
        name = torch.cuda.get_device_name(0)
        for batch in a.batches:
            ms = time_steps(dev, batch, a.steps)
            results.append({"device": f"cuda ({name})", "mode": "eager", "batch": batch, "msPerStep": ms, "samplesPerSecond": batch / ms * 1000})
            print(f"cuda ({name}) eager, batch {batch}: {ms:.2f} ms/step, {batch / ms * 1000:.0f} samples/s")
    else:
        print("no CUDA device: GPU rows skipped")
    print("\n| device | threads | mode | batch | ms/step | samples/s |\n|---|---:|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['device']} | {r.get('threads', '')} | {r['mode']} | {r['batch']} | {r['msPerStep']:.2f} | {r['samplesPerSecond']:.0f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "model": model, "optimizer": "adam", "learningRate": 1e-3, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
