"""W1 = mean(tanh(X @ W1) @ W2, axis 0) in NumPy, the peer of bench/w1.ts (same sizes, float32).

  --mode threads   --n N : one process, NumPy's BLAS with N threads
  --mode processes --n N : N persistent single-threaded processes, X in shared memory, each
                           computing its rows' sum; the parent combines (one "call" = all N done)
Prints the median seconds per call. Usage:
  python3 bench/peers/w1_numpy.py --mode threads --n 1 [--rows 32768 --d 1024 --h 1024 --out 256 --calls 7]
"""
import argparse
import os
import sys

p = argparse.ArgumentParser()
p.add_argument("--mode", choices=["threads", "processes"], default="threads")
p.add_argument("--n", type=int, default=1)
p.add_argument("--rows", type=int, default=32768)
p.add_argument("--d", type=int, default=1024)
p.add_argument("--h", type=int, default=1024)
p.add_argument("--out", type=int, default=256)
p.add_argument("--calls", type=int, default=7)
args = p.parse_args()

threads = args.n if args.mode == "threads" else 1
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(threads)

import time  # noqa: E402
import multiprocessing as mp  # noqa: E402
from multiprocessing import shared_memory  # noqa: E402
import numpy as np  # noqa: E402


def make_inputs():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (args.rows, args.d)).astype(np.float32)
    W1 = (rng.uniform(-1, 1, (args.d, args.h)) / np.sqrt(args.d)).astype(np.float32)
    W2 = (rng.uniform(-1, 1, (args.h, args.out)) / np.sqrt(args.h)).astype(np.float32)
    return X, W1, W2


def median_time(call, calls):
    call()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def worker(shm_name, shape, lo, hi, W1, W2, conn):
    shm = shared_memory.SharedMemory(name=shm_name)
    X = np.ndarray(shape, dtype=np.float32, buffer=shm.buf)
    while conn.recv() == "go":
        conn.send((np.tanh(X[lo:hi] @ W1) @ W2).sum(axis=0))
    shm.close()


def main():
    X, W1, W2 = make_inputs()
    if args.mode == "threads":
        t = median_time(lambda: (np.tanh(X @ W1) @ W2).mean(axis=0), args.calls)
    else:
        shm = shared_memory.SharedMemory(create=True, size=X.nbytes)
        Xs = np.ndarray(X.shape, dtype=np.float32, buffer=shm.buf)
        Xs[:] = X
        bounds = [round(i * args.rows / args.n) for i in range(args.n + 1)]
        ctx = mp.get_context("spawn")
        pipes, procs = [], []
        for r in range(args.n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(shm.name, X.shape, bounds[r], bounds[r + 1], W1, W2, child))
            proc.start()
            pipes.append(parent)
            procs.append(proc)

        def call():
            for c in pipes:
                c.send("go")
            return sum(c.recv() for c in pipes) / args.rows

        t = median_time(call, args.calls)
        for c in pipes:
            c.send("stop")
        for proc in procs:
            proc.join()
        shm.close()
        shm.unlink()
    print(f"numpy {np.__version__} {args.mode} n={args.n}: median {t:.3f} s")


if __name__ == "__main__":
    sys.exit(main())
