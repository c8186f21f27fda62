// The MLP step's GEMMs (784-2048-2048-10) on one GPU, ours: cuBLAS against cuBLASLt, each with the context's
// workspace and without it (cuBLAS's own pool, which is what a CUDA graph capture had before the workspace), in
// float32, TF32 and with bfloat16 operands (float32 results), at batch 512 and 8192:
//   forward  x·W       [B,784]·[784,2048], [B,2048]·[2048,2048], [B,2048]·[2048,10]          (NN)
//   dW = xᵀ·g          [B,784]ᵀ·[B,2048], [B,2048]ᵀ·[B,2048], [B,2048]ᵀ·[B,10]               (TN)
//   dX = g·Wᵀ          [B,2048]·[2048,2048]ᵀ, [B,10]·[2048,10]ᵀ  (the first layer's dX is not part of a step)
// Each library configuration is timed as a CUDA graph of `--per-graph` back-to-back products (what a captured
// step replays: no host time), by CUDA events around replays; "device" is our matmul through a CudaDevice (graphs
// off, back-to-back calls, so host dispatch shows for small shapes; 'medium' includes rounding the operands).
// Every configuration's result is compared with cuBLAS float32's. Writes $OUT/gemm-gpu.json (or ./gemm-gpu.json)
// for bench/gemm_torch.py, which times torch.matmul on the same products and prints the one table:
//   node dist/bench/gemm-gpu.js && python3 bench/gemm_torch.py
// Usage: node dist/bench/gemm-gpu.js [--batches 512,8192] [--reps 20] [--per-graph 20] [--out FILE]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import * as T from '../src/tensor.js';
import { NDArray } from '../src/tensor/ndarray.js';
import { CudaDevice, cudaAvailable } from '../src/devices/cuda/index.js';
import type { RowMajorGemmSpec } from '../src/devices/cuda/ffi/cublas.js';
import { gemm } from '../src/devices/cuda/lower/gemm.js';
import type { RunState } from '../src/devices/cuda/lower/types.js';
import type { MatmulPrecision } from '../src/devices/registration.js';

const o = new Command().name('bench-gemm-gpu')
  .option('--batches <list>', 'batch sizes', (v) => v.split(',').map(Number), [512, 8192])
  .option('--reps <n>', 'timed graph replays (median)', (v) => Number(v), 20)
  .option('--per-graph <n>', 'products per captured graph', (v) => Number(v), 20)
  .option('--out <file>', 'results JSON', join(process.env['OUT'] ?? '.', 'gemm-gpu.json'))
  .parse()
  .opts<{ batches: number[]; reps: number; perGraph: number; out: string }>();

const found = cudaAvailable();
if (!found.ok) {
  console.log(`no CUDA device: ${found.reason}`);
  process.exit(0);
}

/** One product of the step, row-major as our matmul lowering hands it to gemm(). */
interface Product { readonly name: string; readonly m: number; readonly n: number; readonly k: number; readonly transA: boolean; readonly transB: boolean }

function stepProducts(B: number): Product[] {
  const p = (name: string, m: number, n: number, k: number, transA: boolean, transB: boolean): Product => ({ name, m, n, k, transA, transB });
  return [
    p('fwd1 x·W1', B, 2048, 784, false, false), p('fwd2 h·W2', B, 2048, 2048, false, false), p('fwd3 h·W3', B, 10, 2048, false, false),
    p('dW1 xᵀ·g', 784, 2048, B, true, false), p('dW2 hᵀ·g', 2048, 2048, B, true, false), p('dW3 hᵀ·g', 2048, 10, B, true, false),
    p('dX2 g·W2ᵀ', B, 2048, 2048, false, true), p('dX3 g·W3ᵀ', B, 2048, 10, false, true),
  ];
}

const PRECISIONS = ['highest', 'high', 'medium'] as const;
const LABEL: Record<MatmulPrecision, string> = { highest: 'fp32', high: 'tf32', medium: 'bf16' };
type Config = 'cublas_nows' | 'cublas' | 'cublaslt_nows' | 'cublaslt';
const CONFIGS: readonly { readonly key: Config; readonly lt: boolean; readonly ws: boolean }[] = [
  { key: 'cublas_nows', lt: false, ws: false }, { key: 'cublas', lt: false, ws: true },
  { key: 'cublaslt_nows', lt: true, ws: false }, { key: 'cublaslt', lt: true, ws: true },
];

const devices = new Map<string, CudaDevice>();
const deviceFor = (gemmLib: 'cublas' | 'cublaslt', p: MatmulPrecision) => {
  const key = `${gemmLib}/${p}`;
  let d = devices.get(key);
  if (!d) devices.set(key, d = new CudaDevice({ gemm: gemmLib, matmulPrecision: p, graphs: false }));
  return d;
};
const base = deviceFor('cublaslt', 'highest');
const ctx = base.context;
const cu = ctx.cu;
const defaultWorkspace = ctx.cublasWorkspaceBytes;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`${base.name}: MLP GEMMs; ${o.perGraph} products per graph, median of ${o.reps} replays; workspace ${defaultWorkspace} bytes; ` +
  `cuBLASLt ${base.gemm === 'cublaslt' ? 'loaded' : 'NOT FOUND (its columns are cuBLAS)'}`);

/** Median ms of one fn() between events on the stream, `batch` calls per sample. */
function eventsMs(fn: () => void, batch: number): number {
  fn();
  ctx.synchronize();
  const a = cu.eventCreate(0);
  const b = cu.eventCreate(0);
  const times: number[] = [];
  for (let i = 0; i < o.reps; i++) {
    cu.eventRecord(a, ctx.stream);
    for (let k = 0; k < batch; k++) fn();
    cu.eventRecord(b, ctx.stream);
    cu.eventSynchronize(b);
    times.push(cu.eventElapsedTime(a, b) / batch);
  }
  cu.eventDestroy(a);
  cu.eventDestroy(b);
  return median(times);
}

/** Per-product GPU ms of `run` recorded `perGraph` times into one CUDA graph and replayed. */
function graphMs(run: () => void): number {
  run(); // plans, handles and the workspace are made outside the capture, as a plain first run does
  ctx.synchronize();
  cu.streamBeginCapture(ctx.stream);
  try {
    for (let i = 0; i < o.perGraph; i++) run();
  } catch (e) {
    cu.graphDestroy(cu.streamEndCapture(ctx.stream));
    throw e;
  }
  const graph = cu.streamEndCapture(ctx.stream);
  const exec = cu.graphInstantiate(graph);
  try {
    return eventsMs(() => cu.graphLaunch(exec, ctx.stream), 1) / o.perGraph;
  } finally {
    cu.graphExecDestroy(exec);
    cu.graphDestroy(graph);
  }
}

/** Uniform values in [-1, 1) from a xorshift. */
function randomF32(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

/** bfloat16 bits of float32 values (round to nearest even), as a uint8 array of twice the length. */
function bf16Bits(x: Float32Array): NDArray {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) { const u = bits[i]!; out[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16; }
  return new NDArray('uint8', [2 * x.length], new Uint8Array(out.buffer));
}

function maxRelErr(got: NDArray, want: NDArray): number {
  let worst = 0, scale = 0;
  for (let i = 0; i < want.size; i++) scale = Math.max(scale, Math.abs(want.data[i]!));
  for (let i = 0; i < want.size; i++) worst = Math.max(worst, Math.abs(got.data[i]! - want.data[i]!));
  return worst / (scale || 1);
}

interface Row extends Product {
  readonly batch: number;
  readonly precision: string;
  readonly ms: Record<Config | 'device', number>;
  /** Largest |difference| from cuBLAS float32, relative to the largest |value|. */
  readonly err: Record<Config, number>;
}
const rows: Row[] = [];

/** The operands of one product (stored shapes: A [k,m] when transposed, B [n,k] when transposed). */
function operands(p: Product) {
  const aShape = p.transA ? [p.k, p.m] : [p.m, p.k];
  const bShape = p.transB ? [p.n, p.k] : [p.k, p.n];
  const av = randomF32(aShape[0]! * aShape[1]!, 11), bv = randomF32(bShape[0]! * bShape[1]!, 12);
  return { aShape, bShape, a32: base.upload(new NDArray('float32', aShape, av)), b32: base.upload(new NDArray('float32', bShape, bv)),
    a16: base.upload(bf16Bits(av)), b16: base.upload(bf16Bits(bv)) };
}

const results = new Map<string, Partial<Row>>();
for (const ws of [false, true]) {
  // Two switches in all: every replaced workspace stays allocated (a graph may hold it), so they are not toggled per product.
  ctx.setCublasWorkspace(ws ? defaultWorkspace : 0);
  for (const batch of o.batches) {
    for (const p of stepProducts(batch)) {
      const ops = operands(p);
      const c = ctx.alloc('float32', [p.m, p.n]);
      const reference = ctx.alloc('float32', [p.m, p.n]);
      const spec = (prec: MatmulPrecision): RowMajorGemmSpec => prec === 'medium'
        ? { m: p.m, n: p.n, k: p.k, transA: p.transA, transB: p.transB, a: ops.a16.ptr, b: ops.b16.ptr, c: c.ptr, dtype: 'bfloat16', outDtype: 'float32' }
        : { m: p.m, n: p.n, k: p.k, transA: p.transA, transB: p.transB, a: ops.a32.ptr, b: ops.b32.ptr, c: c.ptr, dtype: 'float32', tf32: prec === 'high' };
      const exact = { ctx, cublasLt: false } as unknown as RunState;
      gemm(exact, { ...spec('highest'), c: reference.ptr });
      const want = base.download(reference);
      for (const prec of PRECISIONS) {
        const key = `${batch}/${p.name}/${prec}`;
        const row = results.get(key) ?? { ...p, batch, precision: LABEL[prec], ms: {} as Row['ms'], err: {} as Row['err'] };
        results.set(key, row);
        for (const cfg of CONFIGS.filter((x) => x.ws === ws)) {
          const s = { ctx, cublasLt: cfg.lt } as unknown as RunState; // gemm() reads only these two
          row.ms![cfg.key] = graphMs(() => gemm(s, spec(prec)));
          row.err![cfg.key] = maxRelErr(base.download(c), want);
        }
        if (ws) {
          const dev = deviceFor('cublaslt', prec);
          const av = T.tensor({ dtype: 'float32', ndim: 2, name: 'a' }), bv = T.tensor({ dtype: 'float32', ndim: 2, name: 'b' });
          const exe = dev.compile(T.fn({ inputs: [av, bv], outputs: T.matmul(av, bv, { transA: p.transA, transB: p.transB }) }).compiled.description.program);
          row.ms!.device = eventsMs(() => { for (const r of exe.run([ops.a32, ops.b32])) dev.free(r); }, o.perGraph);
        }
      }
      for (const x of [ops.a32, ops.b32, ops.a16, ops.b16]) x.release();
      c.release();
      reference.release();
    }
  }
}
ctx.setCublasWorkspace(defaultWorkspace);
rows.push(...[...results.values()] as Row[]);

const f = (x: number | undefined) => (x === undefined ? '-' : (x * 1000).toFixed(1).padStart(8));
console.log('us per product (CUDA graph replay)   cuBLAS/no-ws   cuBLAS  cuBLASLt/no-ws  cuBLASLt   device   max rel err (Lt)');
for (const r of rows) {
  console.log(`${String(r.batch).padStart(5)} ${r.name.padEnd(11)} ${r.precision} ${`${r.m}x${r.n}x${r.k}`.padEnd(15)}` +
    `${f(r.ms.cublas_nows)} ${f(r.ms.cublas)} ${f(r.ms.cublaslt_nows)} ${f(r.ms.cublaslt)} ${f(r.ms.device)}   ${r.err.cublaslt.toExponential(1)}`);
}
for (const batch of o.batches) {
  for (const prec of Object.values(LABEL)) {
    const sel = rows.filter((r) => r.batch === batch && r.precision === prec);
    const sum = (k: Config | 'device') => sel.reduce((a, r) => a + r.ms[k], 0);
    console.log(`step total batch ${batch} ${prec}: cuBLAS/no-ws ${sum('cublas_nows').toFixed(3)} ms, cuBLAS ${sum('cublas').toFixed(3)}, ` +
      `cuBLASLt/no-ws ${sum('cublaslt_nows').toFixed(3)}, cuBLASLt ${sum('cublaslt').toFixed(3)}, device ${sum('device').toFixed(3)}`);
  }
}
writeFileSync(o.out, JSON.stringify({ device: base.name, workspaceBytes: defaultWorkspace, perGraph: o.perGraph, reps: o.reps, rows }, null, 1));
console.log(`wrote ${o.out}`);
for (const d of devices.values()) d.close();
