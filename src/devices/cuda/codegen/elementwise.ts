// Generated elementwise kernels: one scalar function from CUDA_TEMPLATES (elementwise-templates.ts) (a fused
// group's steps in order), wrapped in two loops: a contiguous one with 16-byte vector accesses
// (each input is either the full array or a single broadcast element) and a strided one for
// general broadcasting (output dims and each input's strides passed as parameters), in 32- and
// 64-bit index arithmetic.
import type { DType } from '../../../tensor/dtype.js';
import { isFloat, upcast } from '../../../tensor/dtype.js';
import type { FusedStep } from '../../../compile/program.js';
import { getOpDef } from '../../../ops/apply.js';
import { CUDA_TEMPLATES } from './elementwise-templates.js';
import type { ElementwiseOpName } from '../../../ops/elementwise.js';
import type { Attrs } from '../../../tensor/variable.js';
import { ctype, dtag, storeFn } from './ctypes.js';
import type { Storage } from '../storage.js';
import { shortHash, type ModuleBuilder } from './module.js';

const COMPARE: ReadonlySet<ElementwiseOpName> = new Set<ElementwiseOpName>(['eq', 'neq', 'lt', 'le', 'gt', 'ge']);

type Override = (a: readonly string[], t: string, dtype: DType, attrs: Attrs) => string | undefined;

/**
 * int32 arithmetic through the prelude's unsigned helpers: signed overflow is undefined behaviour
 * in C++ (NVRTC then assumes it cannot happen, e.g. drops abs(x * x)), while NumPy and the
 * reference wrap. uint8 needs nothing: its operands promote to int, where they cannot overflow,
 * and the store to unsigned char wraps.
 */
const int32Only = (f: (a: readonly string[]) => string): Override => (a, _t, d) => (d === 'int32' ? f(a) : undefined);

/** Where an op's `cuda` template differs from NumPy (and the reference) on NaN, zero divisors, casts or integer overflow. */
const OVERRIDES: Readonly<Partial<Record<ElementwiseOpName, Override>>> = {
  add: int32Only((a) => `sk_iadd(${a[0]}, ${a[1]})`),
  sub: int32Only((a) => `sk_isub(${a[0]}, ${a[1]})`),
  mul: int32Only((a) => `sk_imul(${a[0]}, ${a[1]})`),
  neg: int32Only((a) => `sk_ineg(${a[0]})`),
  square: int32Only((a) => `sk_imul(${a[0]}, ${a[0]})`),
  abs: int32Only((a) => `sk_iabs(${a[0]})`),
  maximum: (a, t) => `sk_max<${t}>(${a[0]}, ${a[1]})`,
  minimum: (a, t) => `sk_min<${t}>(${a[0]}, ${a[1]})`,
  clip: (a, t) => `sk_min<${t}>(sk_max<${t}>(${a[0]}, ${a[1]}), ${a[2]})`,
  sign: (a, t, d) => (isFloat(d) ? `(${a[0]} != ${a[0]} ? ${a[0]} : (${t})((${a[0]} > 0) - (${a[0]} < 0)))` : undefined),
  intDiv: (a, t, d) => (isFloat(d) ? undefined : `(${a[1]} == 0 ? (${t})0 : ${storeFn(d)}(floor((double)${a[0]} / (double)${a[1]})))`),
  mod: (a, _t, d) => (isFloat(d) ? `sk_pymod(${a[0]}, ${a[1]})` : `sk_pymod((double)${a[0]}, (double)${a[1]})`),
  not: (a, t, d) => (d === 'bool' ? `(${a[0]} == 0)` : `(${t})(~${a[0]})`),
  // Integer powers exactly, by repeated squaring in unsigned (wrapping like the integer ops).
  pow: (a, _t, d) => (isFloat(d) ? undefined : d === 'int32' ? `sk_ipow(${a[0]}, ${a[1]})` : `sk_u8pow(${a[0]}, ${a[1]})`),
  cast: (a, _t, d) => `${storeFn(d)}(${a[0]})`,
};

/** The C expression of one step, its arguments converted as the op's dtype rule says. */
export function stepExpression(step: FusedStep, args: readonly string[], argDtypes: readonly DType[]): string {
  // getOpDef refuses a name outside the op table (a description from outside may carry one).
  if (getOpDef(step.op).elementwise === undefined) throw new Error(`cuda codegen: ${step.op} is not elementwise`);
  const t = ctype(step.dtype);
  const conv = (e: string, from: DType, to: DType): string => (from === to ? e : `((${ctype(to)})${e})`);
  let cargs: string[];
  if (COMPARE.has(step.op)) {
    const common = upcast(...argDtypes);
    cargs = args.map((e, i) => conv(e, argDtypes[i]!, common));
  } else if (step.op === 'where') {
    cargs = args.map((e, i) => (i === 0 ? e : conv(e, argDtypes[i]!, step.dtype)));
  } else if (step.op === 'cast') {
    cargs = [...args];
  } else {
    cargs = args.map((e, i) => conv(e, argDtypes[i]!, step.dtype));
  }
  const override = Object.prototype.hasOwnProperty.call(OVERRIDES, step.op) ? OVERRIDES[step.op]!(cargs, t, step.dtype, step.attrs) : undefined;
  return override ?? CUDA_TEMPLATES[step.op](cargs, t, step.attrs);
}

export interface ElementwiseKernels {
  /** The scalar function's name (also the prefix of the kernels). */
  readonly name: string;
  /** (out, in0..inK-1, n, scalarMask): inputs are full arrays or single elements (bit k set). */
  readonly contiguous: string;
  /** (out, in0.., n, d0..dN-1, strides of input 0 over N axes, input 1, ...). */
  readonly strided: string;
  readonly ndim: number;
  readonly outDtype: DType;
}

/** Emits the scalar function of a group of steps over inputs of the given dtypes. */
function scalarFunction(name: string, inputs: readonly DType[], steps: readonly FusedStep[]): string {
  const dtypes: DType[] = [...inputs];
  const exprs: string[] = inputs.map((_, i) => `x${i}`);
  const lines: string[] = [];
  steps.forEach((s, j) => {
    s.args.forEach((a) => {
      if (!Number.isInteger(a) || a < 0 || a >= exprs.length) {
        throw new RangeError(`cuda codegen: fused step ${j} (${getOpDef(s.op).name}) refers to argument ${a}`);
      }
    });
    const args = s.args.map((a) => exprs[a]!);
    const argDtypes = s.args.map((a) => dtypes[a]!);
    lines.push(`  const ${ctype(s.dtype)} r${j} = ${storeFn(s.dtype)}(${stepExpression(s, args, argDtypes)});`);
    exprs.push(`r${j}`);
    dtypes.push(s.dtype);
  });
  const out = steps[steps.length - 1]!;
  const params = inputs.map((d, i) => `${ctype(d)} x${i}`).join(', ');
  return `DEV ${ctype(out.dtype)} ${name}(${params}) {\n${lines.join('\n')}\n  return r${steps.length - 1};\n}\n`;
}

/** How the inputs and the output of a group are held, where not in their dtypes (bfloat16 for float32 values). */
export interface ElementwiseStorage {
  readonly inputs: readonly Storage[];
  readonly out: Storage;
}

/**
 * Adds the kernels for a fused group (or a single elementwise op as a one-step group). The scalar
 * function computes in the dtypes; `storage` changes only the pointers (bfloat16 converts on load and store).
 */
export function elementwiseKernels(mb: ModuleBuilder, inputs: readonly DType[], steps: readonly FusedStep[], ndim: number,
  storage?: ElementwiseStorage): ElementwiseKernels {
  const outDtype = steps[steps.length - 1]!.dtype;
  const held = storage ?? { inputs, out: outDtype };
  if (held.inputs.length !== inputs.length) throw new RangeError(`internal: ${inputs.length} inputs, ${held.inputs.length} storages`);
  const key = JSON.stringify([inputs, steps.map((s) => [s.op, s.attrs, s.args, s.dtype]), ndim, held]);
  const name = `ew_${steps.length === 1 ? steps[0]!.op : 'fused'}_${held.inputs.map(dtag).join('') || 'none'}_${shortHash(key)}`;
  const result: ElementwiseKernels = { name, contiguous: `${name}_c`, strided: `${name}_s`, ndim, outDtype };
  if (mb.has(name)) return result;
  const TO = ctype(held.out);
  const ptrs = [`${TO}* __restrict__ out`, ...held.inputs.map((d, i) => `const ${ctype(d)}* __restrict__ in${i}`)].join(', ');
  const src: string[] = [scalarFunction(`${name}_f`, inputs, steps)];
  const call = (arg: (i: number) => string) => `${name}_f(${inputs.map((_, i) => arg(i)).join(', ')})`;
  // Contiguous: vectors of four, then the tail.
  src.push(`extern "C" __global__ void __launch_bounds__(256) ${name}_c(${ptrs}, i64 n, int smask) {
  const i64 nv = n >> 2;
  const i64 step = (i64)gridDim.x * blockDim.x;
  const i64 t = (i64)blockIdx.x * blockDim.x + threadIdx.x;
  for (i64 v = t; v < nv; v += step) {
    const i64 i = v << 2;
${held.inputs.map((d, i) => `    const V4<${ctype(d)}> a${i} = (smask & ${1 << i}) ? sk_splat4(in${i}[0]) : sk_ld4(in${i} + i);`).join('\n')}
    V4<${TO}> o;
#pragma unroll
    for (int u = 0; u < 4; ++u) o.v[u] = ${call((i) => `a${i}.v[u]`)};
    sk_st4(out + i, o);
  }
  for (i64 i = (nv << 2) + t; i < n; i += step) out[i] = ${call((i) => `((smask & ${1 << i}) ? in${i}[0] : in${i}[i])`)};
}`);
  // Strided: the output index decomposed over the dims, one offset per input; 32-bit index
  // arithmetic when every index fits (inputs are never larger than the output).
  const dimParams = Array.from({ length: ndim }, (_, a) => `i64 d${a}`);
  const strideParams = inputs.flatMap((_, i) => Array.from({ length: ndim }, (_, a) => `i64 s${i}_${a}`));
  const extra = [...dimParams, ...strideParams].map((p) => `, ${p}`).join('');
  const loop = (I: string): string => {
    const body: string[] = [`      ${I} r = (${I})idx, c = 0;`];
    for (let i = 0; i < inputs.length; i++) body.push(`      ${I} o${i} = 0;`);
    for (let a = ndim - 1; a >= 0; a--) {
      body.push(a > 0 ? `      c = r % (${I})d${a}; r /= (${I})d${a};` : '      c = r;');
      for (let i = 0; i < inputs.length; i++) body.push(`      o${i} += c * (${I})s${i}_${a};`);
    }
    body.push('      (void)c; (void)r;');
    return `    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += step) {
${body.join('\n')}
      out[idx] = ${call((i) => `in${i}[o${i}]`)};
    }`;
  };
  src.push(`extern "C" __global__ void __launch_bounds__(256) ${name}_s(${ptrs}, i64 n${extra}) {
  const i64 step = (i64)gridDim.x * blockDim.x;
  if (n < 2147483647LL) {
${loop('unsigned int')}
  } else {
${loop('i64')}
  }
}`);
  mb.define(name, src.join('\n'), [result.contiguous, result.strided], ['vec']);
  return result;
}
