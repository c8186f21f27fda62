#!/usr/bin/env python3
"""The PyTorch peer of bench/multi-gpu/scaling.ts (issue #7), at 1, 2, 4, 8 GPUs (counts above the
machine's are skipped): one process per GPU started by torch.multiprocessing for each count (no
torchrun), NCCL backend, TF32 allowed, NCCL_NVLS_ENABLE=0 in every process.
  w1          mean(tanh(X W1) W2, dim 0), X 262144x1024 split by rows (each GPU keeps its rows
              resident), all_reduce of the per-GPU means, / n, result copied to the host
  mlp-weak    DistributedDataParallel training step of the MLP 784-2048-2048-10 (ReLU,
              cross-entropy, Adam 1e-4), 8192 rows per GPU
  mlp-strong  the same step with 8192 rows over all GPUs
Training steps run two ways, labelled by "impl": torch-ddp copies each GPU's batch from pinned host
memory every step (as synkhronos uploads its rows every step); torch-ddp-resident keeps the batch
on the GPU. Times are rank 0's wall-clock medians around a whole step (or W1 call) followed by
torch.cuda.synchronize(). One JSON line per configuration ({"bench":"scaling",...}).

Usage: python3 bench/multi-gpu/ddp_torch.py [--gpus 1,2,4,8] [--calls 10] [--steps 10]
         [--per-gpu-batch 8192] [--strong-batch 8192] [--rows 262144] [--hidden 2048] [--no-w1] [--no-mlp] [--no-tf32]
"""
import argparse
import json
import os
import socket
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def rank_main(rank: int, world: int, port: int, cfg: dict) -> None:
    os.environ["NCCL_NVLS_ENABLE"] = "0"  # before NCCL initialises in this process
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.cuda.set_device(rank)
    dev = torch.device("cuda", rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.backends.cuda.matmul.allow_tf32 = cfg["tf32"]
    torch.backends.cudnn.allow_tf32 = cfg["tf32"]

    def align() -> None:
        dist.all_reduce(torch.zeros(1, device=dev))
        torch.cuda.synchronize(dev)

    def timed(fn, warmup: int, n: int) -> float:
        for _ in range(warmup):
            fn()
        align()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize(dev)
            times.append((time.perf_counter() - t0) * 1e3)
        return median(times)

    def emit(impl: str, workload: str, global_batch: int, iters: int, ms: float, **extra) -> None:
        if rank != 0:
            return
        sps = global_batch / ms * 1e3
        print(json.dumps({"bench": "scaling", "impl": impl, "workload": workload, "gpus": world, "global_batch": global_batch,
                          "per_gpu_batch": global_batch // world, "iters": iters, "ms": ms, "samples_per_s": sps,
                          "tf32": cfg["tf32"], "torch": torch.__version__, **extra}), flush=True)
        print(f"  {impl:<18} {workload:<10} {world} GPU(s), batch {global_batch}: {ms:.2f} ms, {sps:.0f} samples/s", file=sys.stderr, flush=True)

    if cfg["w1"]:
        rows = cfg["rows"] // world
        gen = torch.Generator(device=dev)
        gen.manual_seed(1 + rank)
        X = torch.rand(rows, 1024, device=dev, generator=gen) * 2 - 1
        torch.manual_seed(2)  # the same weights on every rank
        W1 = (torch.rand(1024, 1024, device=dev) * 2 - 1) / 32
        W2 = (torch.rand(1024, 256, device=dev) * 2 - 1) / 32

        def w1():
            out = torch.mean(torch.tanh(X @ W1) @ W2, dim=0)
            dist.all_reduce(out)
            return out.div_(world).cpu()

        emit("torch-ddp", "w1", rows * world, cfg["calls"], timed(w1, 2, cfg["calls"]))
        del X, W1, W2
        torch.cuda.empty_cache()

    if cfg["mlp"]:
        h = cfg["hidden"]
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 10)).to(dev)
        ddp = DDP(model, device_ids=[rank])
        opt = torch.optim.Adam(ddp.parameters(), lr=1e-4)
        for workload, global_batch in (("mlp-weak", cfg["per_gpu_batch"] * world), ("mlp-strong", cfg["strong_batch"])):
            per_gpu = global_batch // world
            if per_gpu < 1:
                continue
            gen = torch.Generator()
            gen.manual_seed(10 + rank)
            x_host = torch.rand(per_gpu, 784, generator=gen).pin_memory()
            y_host = torch.randint(0, 10, (per_gpu,), generator=gen).pin_memory()
            x_dev, y_dev = x_host.to(dev), y_host.to(dev)
            for impl, resident in (("torch-ddp", False), ("torch-ddp-resident", True)):
                def step(resident=resident):
                    x = x_dev if resident else x_host.to(dev, non_blocking=True)
                    y = y_dev if resident else y_host.to(dev, non_blocking=True)
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(ddp(x), y)
                    loss.backward()
                    opt.step()

                emit(impl, workload, per_gpu * world, cfg["steps"], timed(step, 5, cfg["steps"]))
    dist.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", default="1,2,4,8", help="GPU counts (those above the machine's count are skipped)")
    p.add_argument("--calls", type=int, default=10, help="timed W1 calls per count (after 2 warm-up calls)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per configuration (after 5 warm-up steps)")
    p.add_argument("--per-gpu-batch", type=int, default=8192)
    p.add_argument("--strong-batch", type=int, default=8192)
    p.add_argument("--rows", type=int, default=262144, help="rows of X in W1")
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--no-w1", action="store_true")
    p.add_argument("--no-mlp", action="store_true")
    p.add_argument("--no-tf32", action="store_true")
    a = p.parse_args()
    os.environ["NCCL_NVLS_ENABLE"] = "0"
    try:
        import torch
        import torch.multiprocessing as mp
    except ImportError as e:
        print(f"ddp_torch: PyTorch is not installed here, nothing measured ({e})", file=sys.stderr)
        sys.exit(1)
    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        print("ddp_torch: no CUDA device is present here, nothing measured", file=sys.stderr)
        sys.exit(1)
    found = torch.cuda.device_count()
    asked = [int(k) for k in a.gpus.split(",")]
    counts = [k for k in asked if 1 <= k <= found]
    skipped = [k for k in asked if k > found]
    print(f"PyTorch {torch.__version__} DDP on {found} GPU(s): counts {counts}" + (f" (skipped, too few GPUs: {skipped})" if skipped else "")
          + f"; TF32 {'off' if a.no_tf32 else 'on'}; NCCL_NVLS_ENABLE=0", file=sys.stderr, flush=True)
    cfg = {"calls": a.calls, "steps": a.steps, "per_gpu_batch": a.per_gpu_batch, "strong_batch": a.strong_batch, "rows": a.rows,
           "hidden": a.hidden, "w1": not a.no_w1, "mlp": not a.no_mlp, "tf32": not a.no_tf32}
    for k in counts:
        try:
            mp.spawn(rank_main, args=(k, free_port(), cfg), nprocs=k, join=True)
        except Exception as e:  # one count failing (e.g. NCCL init) leaves the others measured
            print(f"ddp_torch: {k} GPU(s) failed: {type(e).__name__}: {str(e).splitlines()[-1] if str(e) else ''}", file=sys.stderr, flush=True)
            print(json.dumps({"bench": "scaling", "impl": "torch-ddp", "gpus": k, "error": f"{type(e).__name__}: {e}"[:500]}), flush=True)


if __name__ == "__main__":
    main()
