# PyTorch side of bench/gemm-gpu.ts: torch.matmul on the MLP step's products (the same shapes and transposes,
# read from gemm-gpu.json), in float32 (allow_tf32 False), TF32 (allow_tf32 True) and on bfloat16 tensors, timed
# as a CUDA graph of PER_GRAPH back-to-back products replayed (as ours) and eagerly (back-to-back calls, events
# around them). Prints the one table: ours (cuBLAS / cuBLASLt, workspace on / off, through the device) beside
# torch, and ours' best over torch's graph time. torch's bf16 products write bfloat16 results (ours float32).
# Usage: python3 bench/gemm_torch.py [OURS.json]   (default $OUT/gemm-gpu.json, else ./gemm-gpu.json)
import json
import os
import sys

import torch

PRECISION = {'fp32': (torch.float32, False), 'tf32': (torch.float32, True), 'bf16': (torch.bfloat16, False)}


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def events_ms(fn, reps, batch):
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
    return median(times)


def graph_ms(fn, reps, per_graph):
    """Per-product ms of fn recorded per_graph times into one CUDA graph and replayed."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the capture stream, as torch.cuda.graphs asks
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(per_graph):
            fn()
    return events_ms(g.replay, reps, 1) / per_graph


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get('OUT', '.'), 'gemm-gpu.json')
    with open(path) as f:
        ours = json.load(f)
    reps, per_graph = ours['reps'], ours['perGraph']
    dev = torch.device('cuda')
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}; ours on {ours['device']} "
          f"(workspace {ours['workspaceBytes']} bytes); us per product")
    header = (f"{'batch':>5} {'product':<11} prec {'m x n x k':<15}{'cuBLAS/no-ws':>13}{'cuBLAS':>9}{'Lt/no-ws':>9}{'Lt':>9}"
              f"{'device':>9}{'torch graph':>12}{'torch eager':>12}{'best/torch':>11}")
    print(header)
    totals = {}
    gen = torch.Generator(device=dev).manual_seed(0)
    for r in ours['rows']:
        dtype, tf32 = PRECISION[r['precision']]
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a_shape = [r['k'], r['m']] if r['transA'] else [r['m'], r['k']]
        b_shape = [r['n'], r['k']] if r['transB'] else [r['k'], r['n']]
        a = (torch.rand(a_shape, device=dev, generator=gen) * 2 - 1).to(dtype)
        b = (torch.rand(b_shape, device=dev, generator=gen) * 2 - 1).to(dtype)
        a_op = a.t() if r['transA'] else a
        b_op = b.t() if r['transB'] else b

        def product():
            return torch.matmul(a_op, b_op)

        t_graph = graph_ms(product, reps, per_graph)
        t_eager = events_ms(product, reps, per_graph)
        ms = r['ms']
        best = min(ms['cublas'], ms['cublaslt'])
        key = (r['batch'], r['precision'])
        acc = totals.setdefault(key, {'cublas_nows': 0, 'cublas': 0, 'cublaslt_nows': 0, 'cublaslt': 0, 'device': 0, 'graph': 0, 'eager': 0})
        for k in ('cublas_nows', 'cublas', 'cublaslt_nows', 'cublaslt', 'device'):
            acc[k] += ms[k]
        acc['graph'] += t_graph
        acc['eager'] += t_eager
        r['torch'] = {'graph_ms': t_graph, 'eager_ms': t_eager}
        us = lambda x: f"{x * 1000:9.1f}"
        print(f"{r['batch']:>5} {r['name']:<11} {r['precision']} {str(r['m']) + 'x' + str(r['n']) + 'x' + str(r['k']):<15}"
              f"{ms['cublas_nows'] * 1000:13.1f}{us(ms['cublas'])}{us(ms['cublaslt_nows'])}{us(ms['cublaslt'])}{us(ms['device'])}"
              f"{t_graph * 1000:12.1f}{t_eager * 1000:12.1f}{best / t_graph:11.3f}")
        del a, b, a_op, b_op
    print('step totals (the 8 products), ms:')
    for (batch, prec), t in totals.items():
        best = min(t['cublas'], t['cublaslt'])
        print(f"  batch {batch} {prec}: cuBLAS/no-ws {t['cublas_nows']:.3f}, cuBLAS {t['cublas']:.3f}, cuBLASLt/no-ws {t['cublaslt_nows']:.3f}, "
              f"cuBLASLt {t['cublaslt']:.3f}, device {t['device']:.3f} | torch graph {t['graph']:.3f}, eager {t['eager']:.3f} "
              f"| best ours / torch graph {best / t['graph']:.3f}")
    out = os.path.join(os.environ.get('OUT', '.'), 'gemm-gpu-with-torch.json')
    with open(out, 'w') as f:
        json.dump(ours, f, indent=1)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
