// GEMM throughput of the CPU device's engines, one core each, in one run:
//   - the native BLAS through koffi (1 thread),
//   - the WebAssembly SIMD fallback (copies in and out of wasm memory included),
//   - OpenBLAS called from C (bench/c/gemm.c, built now with cc; skipped without cc or the library).
// C = A * B with square n x n matrices; the median of several timed calls after warm-up.
// Usage: node dist/bench/gemm.js [--dtype float32|float64] [--sizes 256,512,1024,2048]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findBlas, type Blas, type GemmDType } from '../src/devices/cpu/blas.js';
import { createWasmGemm } from '../src/devices/cpu/wasm-gemm.js';

export interface GemmBenchOptions {
  dtype: GemmDType;
  sizes: number[];
  /** Least time spent timing one engine at one size, in seconds. */
  minSeconds: number;
}

type Row = { engine: string; gflops: (number | null)[]; note: string };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function randomMatrix(dtype: GemmDType, n: number): Float32Array | Float64Array {
  const out = dtype === 'float32' ? new Float32Array(n * n) : new Float64Array(n * n);
  for (let i = 0; i < out.length; i++) out[i] = Math.random() - 0.5;
  return out;
}

/** Median GFLOP/s of blas.gemm on n x n matrices: 2 warm-up calls, then >= 5 timed calls and >= minSeconds. */
function timeEngine(blas: Blas, dtype: GemmDType, n: number, minSeconds: number): number {
  const A = randomMatrix(dtype, n), B = randomMatrix(dtype, n), C = randomMatrix(dtype, n);
  const call = (): void => blas.gemm(dtype, false, false, n, n, n, 1, A, 0, n, B, 0, n, 0, C, 0, n);
  call();
  call();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 5 || (performance.now() - start < minSeconds * 1000 && times.length < 200)) {
    const t0 = performance.now();
    call();
    times.push((performance.now() - t0) / 1000);
  }
  return (2 * n ** 3) / median(times) / 1e9;
}

function findCSource(): string | null {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, 'c', 'gemm.c'), join(here, '..', '..', 'bench', 'c', 'gemm.c')]) {
    if (existsSync(candidate)) return resolve(candidate);
  }
  return null;
}

/** OpenBLAS from C: builds bench/c/gemm.c and runs it; the row's note says why it was skipped. */
function cRow(options: GemmBenchOptions): Row {
  const row: Row = { engine: 'OpenBLAS from C (1 thread)', gflops: options.sizes.map(() => null), note: '' };
  const source = findCSource();
  if (source === null) return { ...row, note: 'skipped: bench/c/gemm.c not found' };
  const dir = mkdtempSync(join(tmpdir(), 'synk-gemm-bench-'));
  try {
    const exe = join(dir, 'gemm');
    const cc = process.env['CC'] ?? 'cc';
    const build = spawnSync(cc, ['-O2', '-o', exe, source, '-l:libopenblas.so.0'], { encoding: 'utf8' });
    if (build.error !== undefined) return { ...row, note: `skipped: ${cc} not available (${build.error.message})` };
    if (build.status !== 0) {
      const why = build.stderr.trim().split('\n').slice(-1)[0] ?? '';
      return { ...row, note: `skipped: cannot build against libopenblas.so.0 (${why})` };
    }
    const run = spawnSync(exe, [options.dtype, '1', ...options.sizes.map(String)], {
      encoding: 'utf8',
      env: { ...process.env, OPENBLAS_NUM_THREADS: '1' },
    });
    if (run.status !== 0) return { ...row, note: `failed: ${run.stderr.trim()}` };
    const byN = new Map(run.stdout.trim().split('\n').map((l) => l.split(' ').map(Number) as [number, number]));
    return { ...row, gflops: options.sizes.map((n) => byN.get(n) ?? null) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function runGemmBench(options: GemmBenchOptions): string {
  const rows: Row[] = [];
  const found = findBlas({ threads: 1 });
  if (found.blas === null) {
    rows.push({ engine: 'BLAS through koffi', gflops: options.sizes.map(() => null), note: `skipped: ${found.reason}` });
  } else {
    const blas = found.blas;
    const gflops = options.sizes.map((n) => timeEngine(blas, options.dtype, n, options.minSeconds));
    rows.push({ engine: `${blas.name} through koffi (1 thread)`, gflops, note: blas.path });
  }
  const wasm = createWasmGemm();
  rows.push({
    engine: 'wasm-simd fallback',
    gflops: options.sizes.map((n) => timeEngine(wasm, options.dtype, n, options.minSeconds)),
    note: 'copies in/out included',
  });
  rows.push(cRow(options));
  const header = `| engine (${options.dtype}, GFLOP/s) | ${options.sizes.map((n) => `n=${n}`).join(' | ')} | note |`;
  const rule = `|---|${options.sizes.map(() => '---:').join('|')}|---|`;
  const lines = rows.map((r) => `| ${r.engine} | ${r.gflops.map((g) => (g === null ? '-' : g.toFixed(1))).join(' | ')} | ${r.note} |`);
  return [header, rule, ...lines].join('\n');
}

function parseArgs(argv: string[]): GemmBenchOptions {
  const options: GemmBenchOptions = { dtype: 'float32', sizes: [256, 512, 1024, 2048], minSeconds: 1 };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--dtype' && (value === 'float32' || value === 'float64')) options.dtype = value;
    else if (argv[i] === '--sizes' && value !== undefined) options.sizes = value.split(',').map(Number);
    else if (argv[i] === '--seconds' && value !== undefined) options.minSeconds = Number(value);
    else continue;
    i++;
  }
  return options;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  console.log(runGemmBench(parseArgs(process.argv.slice(2))));
}
