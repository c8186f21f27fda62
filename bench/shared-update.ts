// The shared-state step's reduce-scatter and fused update (SharedStep.reduceAndUpdate) in one
// thread: the JavaScript kernels against the WebAssembly SIMD ones ('fast': float32 arithmetic,
// 'exact': float64 arithmetic, bit for bit the JavaScript kernels), for n float32 parameters with
// Adam and 1, 2, 4, ... simulated ranks' gradient slots. Every rank's shard is run in turn, so one
// pass covers the whole vector as the ranks together do in a step; "ms/shard" is a pass divided by
// the ranks (what each rank spends when the machine's memory bandwidth keeps up with all of them).
// GB/s counts the bytes a pass must move: every slot read once, the sum written to slot 0, and the
// parameter and both Adam moments read and written (the sum's second read, from cache, is not counted).
// Usage: node dist/bench/shared-update.js [--n 5800000] [--ranks 1,2,4,8,16] [--seconds 1] [--rule adam]
import { SharedStep, CONTROL, type SharedStepPlan } from '../src/parallel/shared-step.js';
import { SharedStepStorage, type SharedStepKernels } from '../src/parallel/shared-layout.js';
import { FUSED_RULES, type FusedRuleName } from '../src/parallel/fused-rules.js';
import { simdSupported } from '../src/parallel/fused-simd.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const n = Number(arg('n', '5800000'));
const rankCounts = arg('ranks', '1,2,4,8,16').split(',').map(Number);
const seconds = Number(arg('seconds', '1'));
const rule = arg('rule', 'adam') as FusedRuleName;
if (!(rule in FUSED_RULES)) throw new TypeError(`--rule: expected one of ${Object.keys(FUSED_RULES).join(', ')}, got ${rule}`);
const HYPER: Record<string, number> = { learningRate: 0.001, momentum: 0.9, rho: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** A plan of `size` ranks over n parameters, filled with gradients, moments and parameters of plausible size. */
function makePlan(size: number, mode: SharedStepKernels): SharedStepPlan {
  const plan = new SharedStepStorage(rule, 'float32', n, n, mode).planFor(1, size);
  const view = (b: SharedArrayBuffer, at: number, len: number) => new Float32Array(b as unknown as ArrayBuffer, at, len);
  const p = view(plan.values, plan.valuesAt, n);
  for (let i = 0; i < n; i++) p[i] = ((i * 7919) % 1000) / 1000 - 0.5;
  plan.state.forEach((b, k) => view(b, plan.stateAt[k]!, n).fill(1e-3));
  for (let r = 0; r < size; r++) {
    const slot = view(plan.arena, plan.arenaAt + r * plan.slotStride * 4, plan.length);
    for (let i = 0; i < n; i++) slot[i] = (((i + r) * 104729) % 2001) / 1000 - 1;
  }
  const control = new Float64Array(plan.control);
  FUSED_RULES[rule].hyper.forEach((h, i) => (control[CONTROL.hyper + i] = HYPER[h] ?? 0.1));
  for (let r = 0; r < size; r++) control[CONTROL.weights + r] = 32; // rows per rank
  return plan;
}

/** Median ms of one pass over every rank's shard. */
function timePass(plan: SharedStepPlan, ranks: SharedStep[]): number {
  const control = new Float64Array(plan.control);
  const times: number[] = [];
  const start = performance.now();
  for (let pass = 0; pass < 5 || performance.now() - start < seconds * 1000; pass++) {
    control[CONTROL.step] = pass + 1;
    const t0 = performance.now();
    for (const rank of ranks) rank.reduceAndUpdate(0);
    if (pass > 0) times.push(performance.now() - t0); // the first pass warms up
  }
  return median(times);
}

const modes: SharedStepKernels[] = simdSupported() ? ['off', 'fast', 'exact'] : ['off'];
const label: Record<SharedStepKernels, string> = { off: 'JS', fast: 'SIMD f32', exact: 'SIMD exact' };
const stateVectors = FUSED_RULES[rule].state.length;
console.log(`# shared step reduce + ${rule} update, ${n} float32 parameters, one thread (node ${process.version})`);
console.log('| ranks | kernels | ms/pass | ms/shard | GB/s | vs JS |');
console.log('|---|---|---|---|---|---|');
for (const size of rankCounts) {
  let jsMs = NaN;
  for (const mode of modes) {
    const plan = makePlan(size, mode);
    const ranks = Array.from({ length: size }, (_, r) => new SharedStep(plan, r));
    if ((mode !== 'off') !== ranks[0]!.usesSimd) throw new Error(`${label[mode]}: the plan did not get the expected kernels`);
    const ms = timePass(plan, ranks);
    if (mode === 'off') jsMs = ms;
    const bytes = n * 4 * (size + 1 + 2 * (1 + stateVectors));
    console.log(`| ${size} | ${label[mode]} | ${ms.toFixed(2)} | ${(ms / size).toFixed(2)} | ${(bytes / ms / 1e6).toFixed(1)} | ${(jsMs / ms).toFixed(2)}x |`);
  }
}
