#!/usr/bin/env python3
"""The PyTorch side of bench/resnet.ts: torchvision's resnet50 / resnet18 (weights=None, train mode,
cross-entropy) with SGD momentum 0.9 lr 0.1 (or Adam lr 1e-3), on generated (batch, 3, 224, 224)
float32 images resident on the device and uniform labels over 1000 classes. One training step =
zero_grad + forward + loss + backward + optimizer.step, timed as the median of several steps after
warm-up (each step synchronised, as bench/resnet.ts awaits each step), at batch 64, 128 and 256.

Settings on CUDA (cudnn.benchmark on unless --no-cudnn-benchmark):
  fp32  float32 everywhere, TF32 off for matmul and cuDNN   (synkhronos --precision highest)
  tf32  TF32 tensor cores allowed for matmul and cuDNN      (synkhronos --precision high)
  bf16  torch.autocast(bfloat16) + channels_last model and input (synkhronos --precision medium)
  bf16-nchw  torch.autocast(bfloat16) with the model and input left NCHW (what channels_last is worth)
each in eager mode and under torch.compile (one fresh model and compilation per configuration; the
compile time is reported apart). Memory: torch.cuda.max_memory_allocated and max_memory_reserved of
the timed steps, and the device memory in use after them (total - free from cudaMemGetInfo: this
process's context and cached pool, as bench/resnet.ts's nvidia-smi peak counts it).
On CPU (--devices cpu): eager float32 with each --threads count.

Usage: python3 bench/resnet_torch.py [--model resnet50|resnet18] [--batches 64,128,256] [--size 224]
         [--steps 20] [--devices cuda|cpu] [--settings fp32,tf32,bf16] [--modes eager,compile]
         [--threads 16] [--optimizer momentum|adam] [--classes 1000] [--json out.json]
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
import torchvision

SETTINGS = ("fp32", "tf32", "bf16", "bf16-nchw")
MODES = ("eager", "compile")


def positive_list(v: str) -> list:
    try:
        out = [int(s) for s in v.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of positive integers, got {v!r}")
    if any(n < 1 for n in out):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of positive integers, got {v!r}")
    return out


def choice_list(allowed: tuple):
    def parse(v: str) -> list:
        out = v.split(",")
        bad = [s for s in out if s not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(allowed)}, got {v!r}")
        return out
    return parse


def make_model(name: str, classes: int, device: torch.device, channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(2)
    model = getattr(torchvision.models, name)(weights=None, num_classes=classes).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    return model


def make_optimizer(rule: str, params):
    if rule == "momentum":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)
    return torch.optim.Adam(params, lr=1e-3)


def measure(a, device: torch.device, setting: str, mode: str, batch: int) -> dict:
    cuda = device.type == "cuda"
    channels_last = setting == "bf16"
    bf16 = setting in ("bf16", "bf16-nchw")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = setting == "tf32"
        torch.backends.cudnn.allow_tf32 = setting == "tf32"
        torch.cuda.empty_cache()
    model = make_model(a.model, a.classes, device, channels_last)
    opt = make_optimizer(a.optimizer, model.parameters())
    gen = torch.Generator(device="cpu").manual_seed(1)
    x = torch.rand(batch, 3, a.size, a.size, generator=gen).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, a.classes, (batch,), generator=gen).to(device)
    forward = torch.compile(model) if mode == "compile" else model
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t0 = time.perf_counter()
    step()
    sync()
    first_s = time.perf_counter() - t0
    for _ in range(4):
        step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times)
    row = {"device": "cuda" if cuda else "cpu", "setting": setting, "mode": mode, "batch": batch, "msPerStep": ms, "imagesPerSecond": batch / ms * 1000,
           "firstStepSeconds": first_s}
    if cuda:
        free, total = torch.cuda.mem_get_info()
        row.update({"maxAllocatedGiB": torch.cuda.max_memory_allocated() / 2**30, "maxReservedGiB": torch.cuda.max_memory_reserved() / 2**30,
                    "deviceUsedGiB": (total - free) / 2**30})
    else:
        row["threads"] = torch.get_num_threads()
    del model, opt, forward, x, y
    if mode == "compile":
        torch._dynamo.reset()
    return row


def line(r: dict) -> str:
    where = f"cpu, {r['threads']} threads" if r["device"] == "cpu" else f"cuda {r['setting']} {r['mode']}"
    mem = "" if r["device"] == "cpu" else (f"; max allocated {r['maxAllocatedGiB']:.1f} GiB, reserved {r['maxReservedGiB']:.1f} GiB, "
                                           f"device in use {r['deviceUsedGiB']:.1f} GiB")
    return f"{where}, batch {r['batch']}: {r['msPerStep']:.1f} ms/step, {r['imagesPerSecond']:.1f} images/s (first step {r['firstStepSeconds']:.1f} s){mem}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["resnet50", "resnet18"], default="resnet50")
    p.add_argument("--batches", type=positive_list, default=[64, 128, 256])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--devices", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--settings", type=choice_list(SETTINGS), default=list(SETTINGS), help="CUDA settings, comma-separated: fp32, tf32, bf16")
    p.add_argument("--modes", type=choice_list(MODES), default=list(MODES), help="eager and/or compile (CUDA)")
    p.add_argument("--threads", type=positive_list, default=[os.cpu_count() or 1], help="CPU thread counts, comma-separated")
    p.add_argument("--optimizer", choices=["momentum", "adam"], default="momentum")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cudnn.benchmark off")
    p.add_argument("--json", help="also write the results as JSON")
    a = p.parse_args()
    if a.steps < 1 or a.size < 32 or a.classes < 1:
        p.error(f"--steps and --classes must be positive and --size at least 32, got {a.steps}, {a.classes}, {a.size}")
    torch.backends.cudnn.benchmark = not a.no_cudnn_benchmark
    opt_name = "SGD momentum 0.9 lr 0.1" if a.optimizer == "momentum" else "Adam lr 1e-3"
    print(f"PyTorch {torch.__version__}, torchvision {torchvision.__version__}; {a.model}, {opt_name}, train mode; "
          f"{a.size}x{a.size} images on the device; median of {a.steps} steps after 5")
    results = []
    if a.devices == "cpu":
        for threads in a.threads:
            torch.set_num_threads(threads)
            for batch in a.batches:
                results.append(measure(a, torch.device("cpu"), "fp32", "eager", batch))
                print(line(results[-1]), flush=True)
    elif not torch.cuda.is_available():
        raise SystemExit("resnet_torch.py: no CUDA device here (pass --devices cpu for the CPU rows)")
    else:
        print(f"cuda: {torch.cuda.get_device_name(0)}, cudnn {torch.backends.cudnn.version()}, cudnn.benchmark {torch.backends.cudnn.benchmark}")
        for setting in a.settings:
            for mode in a.modes:
                for batch in a.batches:
                    try:
                        results.append(measure(a, torch.device("cuda"), setting, mode, batch))
                    except Exception as e:  # inductor needs a working compiler toolchain; report and go on
                        print(f"cuda {setting} {mode}, batch {batch}: failed: {str(e).splitlines()[0][:200]}", flush=True)
                        continue
                    print(line(results[-1]), flush=True)
    print("\n| model | device | setting | mode | threads | batch | ms/step | images/s | max allocated GiB | device in use GiB |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        alloc = f"{r['maxAllocatedGiB']:.1f}" if "maxAllocatedGiB" in r else ""
        used = f"{r['deviceUsedGiB']:.1f}" if "deviceUsedGiB" in r else ""
        print(f"| {a.model} | {r['device']} | {r['setting']} | {r['mode']} | {r.get('threads', '')} | {r['batch']} | {r['msPerStep']:.1f} | "
              f"{r['imagesPerSecond']:.1f} | {alloc} | {used} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"framework": "torch", "torch": torch.__version__, "torchvision": torchvision.__version__, "model": a.model, "size": a.size,
                       "classes": a.classes, "optimizer": a.optimizer, "devices": a.devices, "cores": os.cpu_count(), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
