// Generated JavaScript for elementwise steps: one loop per program step, built with `new Function`
// from each op's template in elementwise-templates.ts (a few replaced by equivalents from fast-math.ts:
// branch-free comparisons and relu, a float32 tanh), so a fused chain makes one pass over memory with no
// temporaries. Intermediate values are cast as the reference stores them (int32 wrapped, uint8
// masked, bool made 0/1, float32 rounded where a discrete op reads it, see DISCRETE); the final
// store into the typed array does the same for float32, int32 and uint8, so only bool needs an
// explicit cast there.
//
// Layout: the output is iterated as `ndim` collapsed axes (see elementwise-kernel.ts). Each input
// is read along the innermost axis either contiguously ('s': stride 1) or as a value held for the
// whole inner loop ('z': stride 0, hoisted out of it). ndim 1 is the flat fast path: no odometer.
import { DTYPES, previewValue, type DType, type TypedArray } from '../../tensor/dtype.js';
import type { Attrs } from '../../tensor/variable.js';
import { isElementwiseOpName } from '../../ops/elementwise.js';
import { JS_TEMPLATES, SCALAR_HELPERS } from './elementwise-templates.js';
import { BRANCHLESS_TEMPLATES, FAST_MATH, FLOAT32_TEMPLATES, ZERO_ONE_OPS } from './fast-math.js';

/** One scalar op of a kernel: `args` index [inputs..., earlier step results...]. */
export interface ScalarStep {
  readonly op: string;
  readonly attrs: Attrs;
  readonly args: readonly number[];
  readonly dtype: DType;
}

/** How an input is read along the innermost axis. */
export type InnerKind = 's' | 'z';

/**
 * out: the result's storage; ins: the inputs' storage; n: elements; ndim, shape: the collapsed
 * axes; strides: per input, ndim element strides (flat, input-major); idx: ndim scratch counters.
 */
export type GeneratedKernel = (
  out: TypedArray,
  ins: readonly TypedArray[],
  n: number,
  ndim: number,
  shape: readonly number[],
  strides: readonly number[],
  idx: Int32Array,
) => void;

export interface KernelSignature {
  readonly steps: readonly ScalarStep[];
  readonly inputDtypes: readonly DType[];
  /** More than one collapsed axis (the odometer path). */
  readonly nd: boolean;
  readonly inner: readonly InnerKind[];
}

const cache = new Map<string, GeneratedKernel>();
let generated = 0;

/** Number of kernels generated so far in this thread (for tests of the cache). */
export function generatedKernelCount(): number {
  return generated;
}

export function kernelKey(sig: KernelSignature): string {
  const steps = sig.steps.map((s) => [s.op, s.attrs, s.args, s.dtype]);
  return JSON.stringify([steps, sig.inputDtypes, sig.nd ? 'nd' : 'flat', sig.inner.join('')]);
}

/** The kernel for a signature, generated on first use and cached by (steps, dtypes, layout kind). */
export function getKernel(sig: KernelSignature): GeneratedKernel {
  const key = kernelKey(sig);
  let k = cache.get(key);
  if (k === undefined) {
    k = compileKernel(generateSource(sig));
    cache.set(key, k);
    generated++;
  }
  return k;
}

function compileKernel(source: string): GeneratedKernel {
  const make = new Function('H', 'F', source) as (h: typeof SCALAR_HELPERS, f: typeof FAST_MATH) => GeneratedKernel;
  return make(SCALAR_HELPERS, FAST_MATH);
}

/**
 * Ops whose result can jump when an argument moves by one float32 rounding (comparisons, rounding,
 * integer casts, selections). A float32 intermediate feeding one is rounded with Math.fround so the
 * decision is the reference's; one feeding only smooth ops stays in float64 (more accurate, and
 * Math.fround before e.g. Math.tanh costs ~10% in V8).
 */
const DISCRETE: ReadonlySet<string> = new Set([
  'eq', 'neq', 'lt', 'le', 'gt', 'ge', 'floor', 'ceil', 'round', 'intDiv', 'mod', 'sign',
  'cast', 'where', 'not', 'and', 'or', 'xor', 'maximum', 'minimum', 'clip', 'relu', 'abs',
]);

/** `const tK = <cast of expr>;` as the reference would store a value of `dtype`. */
function castLine(name: string, expr: string, dtype: DType, last: boolean, round32: boolean, zeroOne: boolean): string {
  switch (dtype) {
    case 'float64':
      return `const ${name} = ${expr};`;
    case 'float32':
      return last || !round32 ? `const ${name} = ${expr};` : `const ${name} = Math.fround(${expr});`;
    case 'int32':
      return last ? `const ${name} = ${expr};` : `const ${name} = (${expr}) | 0;`;
    case 'uint8':
      return last ? `const ${name} = ${expr};` : `const ${name} = (${expr}) & 255;`;
    case 'bool':
      return zeroOne ? `const ${name} = ${expr};` : `let ${name} = ${expr}; ${name} = +(${name} !== 0) & +(${name} === ${name});`;
    default:
      // Never echo the unknown value into the source: only the cases above produce text.
      throw new TypeError(`cpu device: fused step ${name} has dtype ${previewValue(dtype satisfies never)}, not one of ${DTYPES.join(', ')}`);
  }
}

/** The statements computing every step from the argument variables a0..a(n-1). */
export function stepStatements(steps: readonly ScalarStep[], nIn: number): string[] {
  const lines: string[] = [];
  steps.forEach((step, k) => {
    const op = step.op;
    if (!isElementwiseOpName(op)) {
      throw new TypeError(`cpu device: op '${op}' inside a fused kernel is not elementwise`);
    }
    const args = step.args.map((a) => {
      if (!Number.isInteger(a) || a < 0 || a >= nIn + k) throw new RangeError(`cpu device: fused step ${k} (${step.op}) refers to argument ${a}`);
      return a < nIn ? `a${a}` : `t${a - nIn}`;
    });
    // Integer results use the op's integer-exact template when it has one (as its perform does).
    const integer = step.dtype === 'int32' || step.dtype === 'uint8';
    const fast = (step.dtype === 'float32' ? FLOAT32_TEMPLATES[op] : undefined) ?? BRANCHLESS_TEMPLATES[op];
    const template = JS_TEMPLATES[op];
    const js = integer && template.int !== undefined ? template.int : fast ?? template.js;
    const feedsDiscrete = steps.some((later, j) => j > k && DISCRETE.has(later.op) && later.args.includes(nIn + k));
    lines.push(castLine(`t${k}`, js(args, step.attrs), step.dtype, k === steps.length - 1, feedsDiscrete, ZERO_ONE_OPS.has(op)));
  });
  return lines;
}

export function generateSource(sig: KernelSignature): string {
  const nIn = sig.inputDtypes.length;
  const { steps, nd, inner } = sig;
  if (steps.length === 0) throw new RangeError('cpu device: a fused kernel needs at least one step');
  if (inner.length !== nIn) throw new RangeError('cpu device: one inner kind per input expected');
  const result = `t${steps.length - 1}`;
  const body = stepStatements(steps, nIn);
  const ins = Array.from({ length: nIn }, (_, j) => j);
  const src: string[] = ['"use strict";', 'return function fusedKernel(out, ins, n, ndim, shape, strides, idx) {'];
  for (const j of ins) src.push(`  const x${j} = ins[${j}];`);
  const store = `out[${nd ? 'base + i' : 'i'}] = ${result};`;
  if (!nd) {
    for (const j of ins) if (inner[j] === 'z') src.push(`  const a${j} = x${j}[0];`);
    src.push('  for (let i = 0; i < n; i++) {');
    for (const j of ins) if (inner[j] === 's') src.push(`    const a${j} = x${j}[i];`);
    for (const l of body) src.push(`    ${l}`);
    src.push(`    ${store}`, '  }', '};');
    return src.join('\n');
  }
  src.push('  const inner = shape[ndim - 1];', '  idx.fill(0);');
  for (const j of ins) src.push(`  let p${j} = 0;`);
  src.push('  for (let base = 0; base < n; base += inner) {');
  for (const j of ins) if (inner[j] === 'z') src.push(`    const a${j} = x${j}[p${j}];`);
  src.push('    for (let i = 0; i < inner; i++) {');
  for (const j of ins) if (inner[j] === 's') src.push(`      const a${j} = x${j}[p${j} + i];`);
  for (const l of body) src.push(`      ${l}`);
  src.push(`      ${store}`, '    }');
  // Odometer over the outer axes: advance the last one, carrying into the ones before it.
  src.push('    for (let ax = ndim - 2; ax >= 0; ax--) {', '      const size = shape[ax];');
  src.push(`      if (++idx[ax] < size) { ${ins.map((j) => `p${j} += strides[${j} * ndim + ax];`).join(' ')} break; }`);
  src.push(`      idx[ax] = 0; ${ins.map((j) => `p${j} -= strides[${j} * ndim + ax] * (size - 1);`).join(' ')}`);
  src.push('    }', '  }', '};');
  return src.join('\n');
}
