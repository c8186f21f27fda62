// Fused elementwise chains on the CPU device against hand-written JavaScript loops for the same
// expressions, in the same run, over n float32 values (a, b, c are float32 scalars):
//   chain 'tanh':  y = tanh(x * a + b) * c
//   chain 'poly':  y = (x * a + b) * x - c          (arithmetic only: memory and loop overhead)
// Variants per chain:
//   - device, whole call: the compiled function (T.fn) called from JS, output allocated per call;
//   - device, executable: the compiled program's run() alone (no argument coercion);
//   - hand loop, fresh output: a function allocating its Float32Array result and looping once
//     (with Math.tanh: what a JS programmer writes);
//   - hand loop, preallocated: the same loop writing into one reused array;
//   - hand loop, tanh32: the hand loop calling the device's float32 tanh (same work per element).
// Usage: node dist/bench/fused.js [--n 4194304] [--seconds 2]
import * as T from '../src/tensor/index.js';
import { NDArray } from '../src/tensor/ndarray.js';
import { CpuDevice } from '../src/devices/cpu/cpu-device.js';
import { describeFunction } from '../src/compile/function.js';
import { tanh32 } from '../src/devices/cpu/fast-math.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/**
 * Median seconds per call of each variant: 3 warm-up calls each, then rounds in which every
 * variant runs once (interleaved, so machine noise hits all alike): at least 15 rounds and `seconds`.
 */
function timeInterleaved(calls: readonly (() => unknown)[], seconds: number): number[] {
  for (const call of calls) for (let i = 0; i < 3; i++) call();
  const times: number[][] = calls.map(() => []);
  const start = performance.now();
  for (let round = 0; round < 15 || performance.now() - start < seconds * 1000; round++) {
    calls.forEach((call, j) => {
      const t0 = performance.now();
      call();
      times[j]!.push((performance.now() - t0) / 1000);
    });
  }
  return times.map(median);
}

type Chain = 'tanh' | 'poly';

function handLoops(chain: Chain): { fresh: (x: Float32Array, a: number, b: number, c: number) => Float32Array; into: (out: Float32Array, x: Float32Array, a: number, b: number, c: number) => void; fast?: (x: Float32Array, a: number, b: number, c: number) => Float32Array } {
  if (chain === 'poly') {
    return {
      fresh: (x, a, b, c) => {
        const out = new Float32Array(x.length);
        for (let i = 0; i < x.length; i++) { const v = x[i]!; out[i] = (v * a + b) * v - c; }
        return out;
      },
      into: (out, x, a, b, c) => { for (let i = 0; i < x.length; i++) { const v = x[i]!; out[i] = (v * a + b) * v - c; } },
    };
  }
  return {
    fresh: (x, a, b, c) => {
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = Math.tanh(x[i]! * a + b) * c;
      return out;
    },
    into: (out, x, a, b, c) => { for (let i = 0; i < x.length; i++) out[i] = Math.tanh(x[i]! * a + b) * c; },
    fast: (x, a, b, c) => {
      const out = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) out[i] = tanh32(x[i]! * a + b) * c;
      return out;
    },
  };
}

export interface FusedRow { chain: Chain; name: string; seconds: number }

export function runFusedBench(chain: Chain, n: number, seconds: number): { rows: FusedRow[]; note: string } {
  const device = new CpuDevice({ notice: false });
  const x = T.vector('x');
  const [a, b, c] = [T.scalar('a'), T.scalar('b'), T.scalar('c')];
  const y = chain === 'tanh' ? T.mul(T.tanh(T.add(T.mul(x, a), b)), c) : T.sub(T.mul(T.add(T.mul(x, a), b), x), c);
  const f = T.fn({ inputs: [x, a, b, c], outputs: y, device });
  const program = describeFunction({ inputs: [x, a, b, c], outputs: y }).program;
  const steps = program.steps.map((s) => s.op).join(', ');
  const exe = device.compile(program);
  const xs = new Float32Array(n);
  for (let i = 0; i < n; i++) xs[i] = Math.random() * 4 - 2;
  const [av, bv, cv] = [0.7, -0.1, 1.3];
  const xa = new NDArray('float32', [n], xs);
  const sa = NDArray.scalar(av), sb = NDArray.scalar(bv), sc = NDArray.scalar(cv);
  const out = new Float32Array(n);
  const [fa, fb, fc] = [Math.fround(av), Math.fround(bv), Math.fround(cv)];
  const hand = handLoops(chain);
  // Same results (checked once).
  const got = f(xa, sa, sb, sc) as NDArray;
  hand.into(out, xs, fa, fb, fc);
  let maxDiff = 0;
  for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(got.data[i]! - out[i]!));
  const variants: [string, () => unknown][] = [
    ['device, whole call (T.fn)', () => f(xa, sa, sb, sc)],
    ['device, executable run()', () => exe.run([xa, sa, sb, sc])],
    ['hand loop, fresh output', () => hand.fresh(xs, fa, fb, fc)],
    ['hand loop, preallocated', () => hand.into(out, xs, fa, fb, fc)],
  ];
  const fast = hand.fast;
  if (fast) variants.push(['hand loop, tanh32', () => fast(xs, fa, fb, fc)]);
  const medians = timeInterleaved(variants.map(([, call]) => call), seconds);
  return {
    rows: variants.map(([name], j) => ({ chain, name, seconds: medians[j]! })),
    note: `program steps: ${steps}; max |device - hand loop| = ${maxDiff.toExponential(2)}`,
  };
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''));
if (isMain) {
  const n = arg('n', 1 << 22);
  const seconds = arg('seconds', 2);
  console.log(`fused elementwise chains, n = ${n} float32, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
  for (const chain of ['tanh', 'poly'] as const) {
    const { rows, note } = runFusedBench(chain, n, seconds);
    console.log(`\nchain ${chain === 'tanh' ? 'tanh(x * a + b) * c' : '(x * a + b) * x - c'}: ${note}`);
    const hand = rows.find((r) => r.name === 'hand loop, fresh output')!.seconds;
    for (const r of rows) {
      console.log(`  ${r.name.padEnd(28)} ${(r.seconds * 1000).toFixed(2).padStart(8)} ms  ${(n / r.seconds / 1e6).toFixed(0).padStart(5)} Melem/s  ${(hand / r.seconds).toFixed(2)}x hand (fresh)`);
    }
  }
}
