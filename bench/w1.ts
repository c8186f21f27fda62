// W1 = mean(tanh(X · W1) · W2, axis 0), float32, through the data-parallel runtime: X is scattered
// by rows over n workers (one CPU device each, single-threaded BLAS), W1 and W2 are shared
// variables, the per-worker means are averaged. Also timed: the same function on one CPU device
// in this thread (T.fn, no runtime), the floor for one worker.
// Usage: node dist/bench/w1.js [--workers 1,2] [--rows 32768] [--d 1024] [--h 1024] [--out 256]
//                              [--calls 7] [--blas-threads 1] [--fallback] [--no-local]
// --fallback forces the WebAssembly GEMM on every device.
// (the lead's 16-core run: --workers 1,2,4,8,16)
import os from 'node:os';
import * as synk from '../src/index.js';
import { NDArray } from '../src/tensor/ndarray.js';
import { registerBuiltinDevices } from '../src/devices/builtin.js';
import { CpuDevice } from '../src/devices/cpu/cpu-device.js';

const T = synk.T;

function opt(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function randomF32(shape: number[], scale: number, seed: number): NDArray {
  const a = new NDArray('float32', shape);
  let s = seed >>> 0;
  for (let i = 0; i < a.size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a.data[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return a;
}

async function timeCalls(call: () => Promise<unknown> | unknown, calls: number): Promise<{ median: number; all: number[] }> {
  await call();
  const all: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await call();
    all.push((performance.now() - t0) / 1000);
  }
  return { median: median(all), all };
}

function maxDiff(a: NDArray, b: NDArray): number {
  let m = 0;
  for (let i = 0; i < a.size; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

async function main(): Promise<void> {
  const rows = Number(opt('rows', '32768'));
  const d = Number(opt('d', '1024'));
  const h = Number(opt('h', '1024'));
  const outDim = Number(opt('out', '256'));
  const calls = Number(opt('calls', '7'));
  const workers = opt('workers', '1,2').split(',').map(Number);
  const blasThreads = Number(opt('blas-threads', '1'));
  const forceFallback = process.argv.includes('--fallback');
  const cpu = { threads: blasThreads, ...(forceFallback ? { forceFallback } : {}) };
  const flops = 2 * rows * d * h + 2 * rows * h * outDim;
  await registerBuiltinDevices();
  const probe = new CpuDevice({ notice: false, ...cpu });
  console.log(`W1 = mean(tanh(X·W1)·W2, 0): X ${rows}x${d}, W1 ${d}x${h}, W2 ${h}x${outDim}, float32; ${(flops / 1e9).toFixed(1)} GFLOP per call`);
  console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.availableParallelism()} cores; node ${process.version}; GEMM: ${probe.name}; ` +
    `${new Date().toISOString().slice(0, 10)}`);

  const X = randomF32([rows, d], 1, 1);
  const w1 = T.shared(randomF32([d, h], 1 / Math.sqrt(d), 2), { name: 'W1' });
  const w2 = T.shared(randomF32([h, outDim], 1 / Math.sqrt(h), 3), { name: 'W2' });
  const x = T.matrix('x');
  const y = T.mean(T.dot(T.tanh(T.dot(x, w1)), w2), 0);

  let reference: NDArray | null = null;
  if (!process.argv.includes('--no-local')) {
    const local = T.fn({ inputs: [x], outputs: y, device: new CpuDevice({ notice: false, ...cpu }) });
    const t = await timeCalls(() => local(X), calls);
    reference = local(X) as NDArray;
    console.log(`one CPU device in this thread (no runtime): median ${t.median.toFixed(3)} s, ${(flops / t.median / 1e9).toFixed(1)} GFLOP/s`);
  }

  const f = synk.fn({ inputs: [x], outputs: y, name: 'W1' });
  const xd = synk.data(X);
  let base: number | null = null;
  for (const n of workers) {
    await synk.fork({ n, devices: Array.from({ length: n }, () => ({ kind: 'cpu' as const, ...cpu })) });
    try {
      const t = await timeCalls(() => f(xd), calls);
      const result = (await f(xd)) as NDArray;
      base ??= t.median;
      const check = reference ? `, max |diff| vs one device ${maxDiff(result, reference).toExponential(1)}` : '';
      console.log(`workers ${String(n).padStart(2)}: median ${t.median.toFixed(3)} s, ${(flops / t.median / 1e9).toFixed(1)} GFLOP/s, speedup ` +
        `${(base / t.median).toFixed(2)}x vs ${workers[0]} worker(s)${check}`);
    } finally {
      await synk.close();
    }
  }
}

await main();
