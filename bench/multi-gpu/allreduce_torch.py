#!/usr/bin/env python3
"""The PyTorch peer of bench/multi-gpu/allreduce.ts (issue #7): torch.distributed all_reduce (NCCL
backend, float32 sum, in place on a device tensor) for the same sizes, one process per visible GPU
started by torch.multiprocessing (no torchrun). Two ways, each labelled in its JSON line's "impl":
  torch-nccl       calls issued back to back, one CUDA event pair around each call (the peer of
                   synk-nccl-direct)
  torch-nccl-sync  one call then torch.cuda.synchronize(), wall clock (the peer of synk-communicator
                   and synk-runtime, which wait for every call)
Every figure is the median over the iterations of one rank, then the slowest rank. busBW = algBW *
2(n-1)/n (nccl-tests); with one GPU busBW is undefined (null). NCCL_NVLS_ENABLE=0 in every process.

Usage: python3 bench/multi-gpu/allreduce_torch.py [--sizes 1,4,16,64,256,1024] (MiB) [--gpus N] [--iters 20]
"""
import argparse
import json
import os
import socket
import sys
import time

MIB = 1 << 20
WARMUP = 3


def iters_for(nbytes: int, max_iters: int) -> int:
    """The schedule of allreduce.ts: max_iters up to 64 MiB, then fewer, never below 5."""
    return max(5, min(max_iters, round(max_iters * 64 * MIB / nbytes)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def rank_main(rank: int, world: int, port: int, sizes, max_iters: int) -> None:
    os.environ["NCCL_NVLS_ENABLE"] = "0"  # before NCCL initialises in this process
    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)
    dev = torch.device("cuda", rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    v = torch.cuda.nccl.version()  # a tuple (2, 21, 5) in recent releases, an int before
    nccl_version = ".".join(str(x) for x in v) if isinstance(v, tuple) else str(v)
    if rank == 0:
        print(f"PyTorch {torch.__version__}, NCCL {nccl_version}; rank 0 on {torch.cuda.get_device_name(dev)}; {world} rank(s)", file=sys.stderr, flush=True)

    def align() -> None:
        """Every rank leaves together (an all-reduce of one float, then a synchronize)."""
        dist.all_reduce(torch.zeros(1, device=dev))
        torch.cuda.synchronize(dev)

    for nbytes in sizes:
        count = nbytes // 4
        iters = iters_for(nbytes, max_iters)
        buf = torch.full((count,), float(rank + 1), dtype=torch.float32, device=dev)
        dist.all_reduce(buf)
        want = world * (world + 1) / 2
        checked = bool((buf[:256] == want).all().item() and (buf[-256:] == want).all().item())

        # Back to back, an event pair around each call (values grow; the time does not depend on them).
        for _ in range(WARMUP):
            dist.all_reduce(buf)
        align()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        for i in range(iters):
            starts[i].record()
            dist.all_reduce(buf)
            ends[i].record()
        torch.cuda.synchronize(dev)
        events_ms = median([a.elapsed_time(b) for a, b in zip(starts, ends)])

        # One call at a time, waiting for each.
        align()
        times = []
        for _ in range(WARMUP + iters):
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            torch.cuda.synchronize(dev)
            times.append((time.perf_counter() - t0) * 1e3)
        sync_ms = median(times[WARMUP:])

        slowest = torch.tensor([events_ms, sync_ms, 0.0 if checked else 1.0], device=dev, dtype=torch.float64)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        if rank == 0:
            all_checked = slowest[2].item() == 0.0
            for impl, ms in (("torch-nccl", slowest[0].item()), ("torch-nccl-sync", slowest[1].item())):
                algbw = nbytes / ms / 1e6
                busbw = algbw * 2 * (world - 1) / world if world > 1 else None
                print(json.dumps({"bench": "allreduce", "impl": impl, "gpus": world, "bytes": nbytes, "iters": iters, "ms": ms,
                                  "algbw_gbps": algbw, "busbw_gbps": busbw, "checked": all_checked,
                                  "torch": torch.__version__, "nccl": nccl_version}), flush=True)
                bw = f"busBW {busbw:.1f} GB/s" if busbw is not None else f"algBW {algbw:.1f} GB/s (1 GPU: busBW undefined)"
                print(f"  {impl:<16} {nbytes // MIB:>5} MiB: {ms:.3f} ms, {bw}", file=sys.stderr, flush=True)
        del buf
        torch.cuda.empty_cache()
    dist.destroy_process_group()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1,4,16,64,256,1024", help="buffer sizes in MiB, comma-separated")
    p.add_argument("--gpus", type=int, help="ranks (default: every visible GPU)")
    p.add_argument("--iters", type=int, default=20, help="timed iterations up to 64 MiB (fewer above, at least 5)")
    a = p.parse_args()
    os.environ["NCCL_NVLS_ENABLE"] = "0"
    try:
        import torch
        import torch.multiprocessing as mp
    except ImportError as e:
        print(f"allreduce_torch: PyTorch is not installed here, nothing measured ({e})", file=sys.stderr)
        sys.exit(1)
    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        print("allreduce_torch: no CUDA device is present here, nothing measured", file=sys.stderr)
        sys.exit(1)
    found = torch.cuda.device_count()
    world = a.gpus or found
    if world < 1 or world > found:
        print(f"allreduce_torch: --gpus must be in [1, {found}], got {world}", file=sys.stderr)
        sys.exit(1)
    sizes = [int(s) * MIB for s in a.sizes.split(",")]
    print(f"torch.distributed all_reduce, float32 sum, {world} GPU(s), sizes {a.sizes} MiB; NCCL_NVLS_ENABLE=0", file=sys.stderr, flush=True)
    mp.spawn(rank_main, args=(world, free_port(), sizes, a.iters), nprocs=world, join=True)


if __name__ == "__main__":
    main()
