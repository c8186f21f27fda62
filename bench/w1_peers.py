"""Peers for the W1 benchmark: mean(tanh(X @ W1) @ W2, axis 0), X 32768x1024, W1 1024x1024,
W2 1024x256 float32. Measured: NumPy with T threads, T single-threaded NumPy processes over
shared memory, PyTorch with T threads, NumPy on 1 thread. Prints one JSON line."""
import json, os, sys, time

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else os.cpu_count()
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 32768
REPEATS = int(sys.argv[3]) if len(sys.argv) > 3 else 7


def set_threads(n):
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(n)


def median_time(f, repeats):
    f()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


_G = {}


def init_worker(names, rows):
    # Each single-threaded process maps X, W1, W2 from shared memory once.
    set_threads(1)
    import numpy as np
    from multiprocessing import shared_memory
    shapes = [(rows, 1024), (1024, 1024), (1024, 256)]
    _G["shm"] = [shared_memory.SharedMemory(name=n) for n in names]
    _G["arrays"] = [np.ndarray(sh, dtype=np.float32, buffer=m.buf) for sh, m in zip(shapes, _G["shm"])]


def worker(bounds):
    import numpy as np
    X, W1, W2 = _G["arrays"]
    lo, hi = bounds
    return (np.tanh(X[lo:hi] @ W1) @ W2).sum(0)


def main():
    results = {"threads": THREADS, "rows": ROWS}
    set_threads(THREADS)
    import numpy as np
    rng = np.random.default_rng(0)
    X = rng.standard_normal((ROWS, 1024), dtype=np.float32)
    r1 = np.random.default_rng(1)
    W1 = r1.standard_normal((1024, 1024), dtype=np.float32) * 0.03
    W2 = r1.standard_normal((1024, 256), dtype=np.float32) * 0.03
    results["numpy_threads_s"] = median_time(lambda: (np.tanh(X @ W1) @ W2).mean(0), REPEATS)
    try:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(1):
            results["numpy_1thread_s"] = median_time(lambda: (np.tanh(X @ W1) @ W2).mean(0), max(3, REPEATS // 2))
    except Exception as e:  # noqa: BLE001
        results["numpy_1thread_error"] = str(e)
    try:
        import torch
        torch.set_num_threads(THREADS)
        tX, tW1, tW2 = torch.from_numpy(X), torch.from_numpy(W1), torch.from_numpy(W2)
        with torch.no_grad():
            results["torch_threads_s"] = median_time(lambda: torch.tanh(tX @ tW1).matmul(tW2).mean(0), REPEATS)
    except Exception as e:  # noqa: BLE001
        results["torch_error"] = str(e)
    from multiprocessing import shared_memory, get_context
    shms = []
    for a in (X, W1, W2):
        m = shared_memory.SharedMemory(create=True, size=a.nbytes)
        np.ndarray(a.shape, dtype=a.dtype, buffer=m.buf)[:] = a
        shms.append(m)
    bounds = [round(i * ROWS / THREADS) for i in range(THREADS + 1)]
    tasks = [(bounds[i], bounds[i + 1]) for i in range(THREADS)]
    with get_context("spawn").Pool(THREADS, initializer=init_worker, initargs=([m.name for m in shms], ROWS)) as pool:
        pool.map(worker, tasks)  # warm-up
        results["numpy_processes_s"] = median_time(lambda: sum(pool.map(worker, tasks, chunksize=1)) / ROWS, REPEATS)
    for m in shms:
        m.close(); m.unlink()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
