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
//
// Section 'kernels': the CPU device's elementwise kernels alone (their runners, writing into
// preallocated outputs, so allocation does not blur them), JavaScript loops (simd off) against
// WebAssembly SIMD, and group steps against their members run one by one, per shape: the evidence
// for WASM_MIN_ELEMENTS and for which groups pay.
// Section 'mlp': the target workload, the gradient of an MLP 784-2048-2048-10 (ReLU, cross-entropy)
// on one CPU device, per-op medians (profile) for JS only / SIMD / SIMD + groups, interleaved.
// Usage: node dist/bench/fused.js [--n 4194304] [--seconds 2] [--sections chains,kernels,mlp] [--batches 512,32]
import * as T from '../src/tensor.js';
import { NDArray } from '../src/tensor/ndarray.js';
import { CpuDevice } from '../src/devices/cpu/cpu-device.js';
import { describeFunction } from '../src/run/function.js';
import { tanh32 } from '../src/devices/cpu/fast-math.js';
import { TensorType } from '../src/tensor/type.js';
import type { DType } from '../src/tensor/dtype.js';
import type { Kernel, RunContext, StepRunner, GroupRunner } from '../src/devices/cpu/kernel-types.js';
import type { Attrs } from '../src/tensor/variable.js';
import { KERNELS } from '../src/devices/cpu/kernels.js';
import { selectGemm } from '../src/devices/cpu/gemm.js';
import { biasGradGroupBuilder, chainGroupBuilder, type MemberStep } from '../src/devices/cpu/group-kernels.js';
import * as X from '../src/extensions/index.js';

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

type ChainLoop = (x: Float32Array, a: number, b: number, c: number) => Float32Array;
function handLoops(chain: Chain): { fresh: ChainLoop; into: (out: Float32Array, x: Float32Array, a: number, b: number, c: number) => void; fast?: ChainLoop } {
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

// ---- section 'kernels' ------------------------------------------------------------------------

/** A run context whose outputs are allocated once per (output, shape) and then reused. */
function reusingContext(): RunContext {
  const outs = new Map<string, NDArray>();
  return {
    output: (dtype, shape, _inPlace, which) => {
      const key = `${which ?? 0}:${dtype}:${shape.join('x')}`;
      let a = outs.get(key);
      if (a === undefined) outs.set(key, (a = new NDArray(dtype, shape)));
      return a;
    },
    scratch: (dtype, size) => {
      const key = `scratch:${dtype}:${size}`;
      let a = outs.get(key);
      if (a === undefined) outs.set(key, (a = new NDArray(dtype, [size])));
      return a.data;
    },
  };
}

const blas = selectGemm({}).blas;

/** A step's runner from the kernel table (slots: types indexed by the members' slot numbers). */
function runnerOf(m: MemberStep, types: readonly TensorType[], simd: boolean): StepRunner {
  const kernel = KERNELS[m.op as keyof typeof KERNELS] as unknown as Kernel<Attrs>;
  return kernel({ op: m.op as keyof typeof KERNELS, attrs: m.attrs, inputTypes: m.inputs.map((i) => types[i]!), outType: types[m.output]! }, { blas, simd });
}

interface KernelCase {
  readonly name: string;
  /** Slot types; slots 0..nIn-1 are the inputs. */
  readonly types: TensorType[];
  readonly members: MemberStep[];
  /** The group builder for the members, when they form one. */
  readonly group?: (types: readonly TensorType[]) => GroupRunner;
  readonly inputs: (rows: number, cols: number) => NDArray[];
}

const f32t = (ndim: number): TensorType => new TensorType('float32', new Array<boolean>(ndim).fill(false));
const rand = (shape: number[], lo = -1, hi = 1): NDArray => {
  const a = new NDArray('float32', shape);
  for (let i = 0; i < a.size; i++) a.data[i] = lo + (hi - lo) * Math.random();
  return a;
};
const maskSteps = [
  { op: 'gt', attrs: {}, args: [0, 1], dtype: 'bool' as DType },
  { op: 'cast', attrs: { dtype: 'float32' }, args: [3], dtype: 'float32' as DType },
  { op: 'mul', attrs: {}, args: [2, 4], dtype: 'float32' as DType },
];
const KERNEL_CASES: KernelCase[] = [
  { name: 'relu', types: [f32t(2), f32t(2)], members: [{ op: 'relu', attrs: {}, inputs: [0], output: 1 }], inputs: (r, c) => [rand([r, c])] },
  {
    name: 'add bias row', types: [f32t(2), f32t(1), f32t(2)], members: [{ op: 'add', attrs: {}, inputs: [0, 1], output: 2 }],
    inputs: (r, c) => [rand([r, c]), rand([c])],
  },
  {
    name: 'sumToLike (bias gradient)', types: [f32t(2), f32t(1), f32t(1)], members: [{ op: 'sumToLike', attrs: {}, inputs: [0, 1], output: 2 }],
    inputs: (r, c) => [rand([r, c]), rand([c])],
  },
  {
    name: 'add bias + relu (2 outputs)', types: [f32t(2), f32t(1), f32t(2), f32t(2)],
    members: [{ op: 'add', attrs: {}, inputs: [0, 1], output: 2 }, { op: 'relu', attrs: {}, inputs: [2], output: 3 }],
    group: (types) => chainGroupBuilder(KERNEL_CASES[3]!.members, [true, true])(types, { blas }, () => false),
    inputs: (r, c) => [rand([r, c]), rand([c])],
  },
  {
    name: 'relu mask * g + bias gradient', types: [f32t(2), f32t(0), f32t(2), f32t(1), f32t(2), f32t(1)],
    members: [{ op: 'fused', attrs: { steps: maskSteps }, inputs: [0, 1, 2], output: 4 }, { op: 'sumToLike', attrs: {}, inputs: [4, 3], output: 5 }],
    group: (types) => biasGradGroupBuilder(KERNEL_CASES[4]!.members[0]!, null, KERNEL_CASES[4]!.members[1]!, true)(types, { blas }, () => false),
    inputs: (r, c) => [rand([r, c]), NDArray.scalar(0, 'float32'), rand([r, c]), rand([c])],
  },
];

/** Runs members one by one (each runner's own output), values by slot. */
function sequentialCall(c: KernelCase, simd: boolean): (inputs: NDArray[], rt: RunContext) => void {
  const runners = c.members.map((m) => runnerOf(m, c.types, simd));
  return (inputs, rt) => {
    const values = new Map<number, NDArray>(inputs.map((a, i) => [i, a]));
    c.members.forEach((m, k) => {
      const sub: RunContext = { output: (d, s) => rt.output(d, s, false, k), scratch: rt.scratch };
      values.set(m.output, runners[k]!(m.inputs.map((i) => values.get(i)!), sub));
    });
  };
}

export function runKernelBench(shapes: readonly [number, number][], seconds: number): void {
  console.log('\nkernels (runner level, outputs preallocated), median microseconds per call; speed-up of the last column over JS');
  console.log(`  ${'case'.padEnd(32)} ${'shape'.padEnd(10)} ${'JS'.padStart(9)} ${'SIMD'.padStart(9)} ${'group'.padStart(9)}  ratio`);
  for (const c of KERNEL_CASES) {
    for (const [r, cols] of shapes) {
      const inputs = c.inputs(r, cols);
      const calls: (() => void)[] = [];
      for (const simd of [false, true]) {
        const rt = reusingContext();
        const run = sequentialCall(c, simd);
        calls.push(() => run(inputs, rt));
      }
      if (c.group !== undefined) {
        const rt = reusingContext();
        const g = c.group(c.types);
        calls.push(() => void g(inputs, rt));
      }
      const reps = Math.max(1, Math.floor(2e5 / (r * cols)));
      const med = timeInterleaved(calls.map((call) => () => { for (let i = 0; i < reps; i++) call(); }), seconds / 4).map((t) => (t / reps) * 1e6);
      const cells = med.map((t) => t.toFixed(1).padStart(9));
      while (cells.length < 3) cells.push('-'.padStart(9));
      console.log(`  ${c.name.padEnd(32)} ${`${r}x${cols}`.padEnd(10)} ${cells.join(' ')}  ${(med[0]! / med[med.length - 1]!).toFixed(2)}x`);
    }
  }
}

// ---- section 'mlp' ----------------------------------------------------------------------------

export function runMlpBench(batch: number, calls: number): void {
  const H = 2048;
  const rng = new X.Rng(1);
  const net = X.sequential(
    X.dense(784, H, { activation: 'relu', rng: rng.fork() }), X.dense(H, H, { activation: 'relu', rng: rng.fork() }), X.dense(H, 10, { rng: rng.fork() }),
  );
  const x = T.matrix('x');
  const y = T.vector('y', 'int32');
  const loss = X.crossEntropy(net.apply(x), y);
  const gs = T.grad(loss, net.params);
  const xs = rand([batch, 784], 0, 1);
  const ys = new NDArray('int32', [batch]);
  for (let i = 0; i < batch; i++) ys.data[i] = i % 10;
  const configs = { 'JS only': { simd: false, groups: false }, SIMD: { groups: false }, 'SIMD + groups': {} };
  const runs = Object.entries(configs).map(([name, opts]) => {
    const device = new CpuDevice({ notice: false, profile: true, ...opts });
    const program = describeFunction({ inputs: [x, y], outputs: [loss, ...gs] }).program;
    const exe = device.compile(program);
    // The program reads the parameters (shared variables) after its inputs.
    const args = [xs, ys, ...program.shareds.map((ps) => net.params.find((p) => p.sharedId === ps.sharedId)!.getValue({ borrow: true }))];
    for (let i = 0; i < 2; i++) exe.run(args);
    return { name, exe, args, samples: [] as Record<string, number>[], before: exe.stats() };
  });
  for (let i = 0; i < calls; i++) {
    for (const r of runs) {
      const p0 = r.exe.stats().profile;
      r.exe.run(r.args);
      const p1 = r.exe.stats().profile;
      r.samples.push(Object.fromEntries(Object.entries(p1).map(([k, v]) => [k, v - (p0[k] ?? 0)])));
    }
  }
  console.log(`\nMLP 784-${H}-${H}-10 gradient, batch ${batch}, median ms per op over ${calls} interleaved calls`);
  for (const r of runs) {
    const ops = Object.keys(r.samples[0]!);
    const med = Object.fromEntries(ops.map((k) => [k, median(r.samples.map((s) => s[k] ?? 0))]));
    const nonGemm = ops.filter((k) => k !== 'matmul').reduce((a, k) => a + med[k]!, 0);
    const after = r.exe.stats();
    const per = (a: number, b: number) => ((a - b) / calls).toFixed(1);
    console.log(`  ${r.name}: matmul ${med['matmul']!.toFixed(2)}, everything else ${nonGemm.toFixed(2)} ms; per call: pool allocations `
      + `${per(after.poolAllocations, r.before.poolAllocations)}, results ${per(after.resultAllocations, r.before.resultAllocations)}, `
      + `untracked ${per(after.untrackedAllocations, r.before.untrackedAllocations)}`);
    const big = ops.filter((k) => k !== 'matmul' && med[k]! >= 0.01).sort((a, b) => med[b]! - med[a]!);
    console.log(`    ${big.map((k) => `${k} ${med[k]!.toFixed(3)}`).join(', ')}`);
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''));
if (isMain) {
  const n = arg('n', 1 << 22);
  const seconds = arg('seconds', 2);
  const i = process.argv.indexOf('--sections');
  const sections = new Set((i >= 0 ? process.argv[i + 1] ?? '' : 'chains,kernels,mlp').split(','));
  const j = process.argv.indexOf('--batches');
  const batches = (j >= 0 ? process.argv[j + 1] ?? '' : '512,32').split(',').map(Number);
  if (sections.has('kernels')) {
    runKernelBench([[512, 2048], [32, 2048], [512, 10], [32, 10], [1, 256], [1, 1024], [1, 4096], [8, 100]], seconds);
  }
  if (sections.has('mlp')) for (const b of batches) runMlpBench(b, Math.max(5, Math.round(200 / b)));
  if (sections.has('chains')) console.log(`fused elementwise chains, n = ${n} float32, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
  for (const chain of sections.has('chains') ? (['tanh', 'poly'] as const) : []) {
    const { rows, note } = runFusedBench(chain, n, seconds);
    console.log(`\nchain ${chain === 'tanh' ? 'tanh(x * a + b) * c' : '(x * a + b) * x - c'}: ${note}`);
    const hand = rows.find((r) => r.name === 'hand loop, fresh output')!.seconds;
    for (const r of rows) {
      console.log(`  ${r.name.padEnd(28)} ${(r.seconds * 1000).toFixed(2).padStart(8)} ms  ${(n / r.seconds / 1e6).toFixed(0).padStart(5)} Melem/s  ` +
        `${(hand / r.seconds).toFixed(2)}x hand (fresh)`);
    }
  }
}
