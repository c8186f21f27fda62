// The CUDA device's C source for each elementwise op, one table typed over the elementwise op names
// (as tinygrad keeps code_for_op per renderer): an elementwise op added without its template here
// fails to compile, and a new code-generating device brings its own table without touching
// src/ops/. Where a template differs from NumPy on NaN, zero divisors or overflow, OVERRIDES in
// elementwise.ts corrects it.
import type { Attrs } from '../../../tensor/variable.js';
import type { ElementwiseOpName } from '../../../ops/elementwise.js';

/** A CUDA C expression over argument expressions; `t` is the C type of the result (float, double, int, unsigned char). */
export type CudaExpression = (args: readonly string[], t: string, attrs: Attrs) => string;

const un = (f: (a: string, t: string) => string): CudaExpression => (args, t) => f(args[0]!, t);
const bin = (f: (a: string, b: string, t: string) => string): CudaExpression => (args, t) => f(args[0]!, args[1]!, t);

/** C function name for a math function at a given C type (expf for float, exp for double). */
export function cfn(name: string, t: string): string {
  return t === 'float' ? `${name}f` : name;
}

/** floorDiv (scalar-math.ts) in CUDA C for float or double, as an immediately invoked device lambda. */
function cudaFloorDiv(a: string, b: string, t: string): string {
  const f = (name: string) => cfn(name, t);
  return `([](${t} a, ${t} b) -> ${t} { if (b == 0) return a / b; const ${t} m = ${f('fmod')}(a, b); ${t} d = (a - m) / b; `
    + `if (m != 0 && ((b < 0) != (m < 0))) d -= 1; if (d == 0) return ${f('copysign')}((${t})0, a / b); `
    + `const ${t} fl = ${f('floor')}(d); return d - fl > (${t})0.5 ? fl + 1 : fl; }(${a}, ${b}))`;
}
const fcall = (name: string) => (a: string, t: string) => `${cfn(name, t)}(${a})`;

/** The CUDA C template of every elementwise op. */
export const CUDA_TEMPLATES: Readonly<Record<ElementwiseOpName, CudaExpression>> = {
  neg: un((a) => `(-${a})`),
  abs: un((a, t) => (t === 'float' || t === 'double' ? `${cfn('fabs', t)}(${a})` : `abs(${a})`)),
  sign: un((a, t) => `(${t})((${a} > 0) - (${a} < 0))`),
  exp: un(fcall('exp')),
  expm1: un(fcall('expm1')),
  log: un(fcall('log')),
  log1p: un(fcall('log1p')),
  sqrt: un(fcall('sqrt')),
  square: un((a) => `(${a} * ${a})`),
  reciprocal: un((a, t) => `((${t})1 / ${a})`),
  sin: un(fcall('sin')),
  cos: un(fcall('cos')),
  tanh: un(fcall('tanh')),
  sigmoid: un((a, t) => `((${t})1 / ((${t})1 + ${cfn('exp', t)}(-${a})))`),
  softplus: un((a, t) => `(${a} > (${t})0 ? ${a} + ${cfn('log1p', t)}(${cfn('exp', t)}(-${a})) : ${cfn('log1p', t)}(${cfn('exp', t)}(${a})))`),
  relu: un((a, t) => `(${a} > (${t})0 ? ${a} : (${a} != ${a} ? ${a} : (${t})0))`),
  erf: un(fcall('erf')),
  floor: un((a, t) => (t === 'float' || t === 'double' ? `${cfn('floor', t)}(${a})` : a)),
  ceil: un((a, t) => (t === 'float' || t === 'double' ? `${cfn('ceil', t)}(${a})` : a)),
  round: un((a, t) => (t === 'float' || t === 'double' ? `${cfn('rint', t)}(${a})` : a)),
  not: un((a, t) => (t === 'int' || t === 'unsigned char' ? `(${t})(~${a})` : `(${a} == 0)`)),
  add: bin((a, b) => `(${a} + ${b})`),
  sub: bin((a, b) => `(${a} - ${b})`),
  mul: bin((a, b) => `(${a} * ${b})`),
  div: bin((a, b, t) => `((${t})${a} / (${t})${b})`),
  intDiv: bin((a, b, t) => (t === 'float' || t === 'double' ? cudaFloorDiv(a, b, t) : `(${t})floor((double)${a} / (double)${b})`)),
  mod: bin((a, b, t) => (t === 'float' || t === 'double'
    ? `(${a} - ${cfn('floor', t)}(${a} / ${b}) * ${b})`
    : `(${t})(${a} - floor((double)${a} / (double)${b}) * ${b})`)),
  pow: bin((a, b, t) => `(${t})${cfn('pow', t === 'float' ? 'float' : 'double')}(${a}, ${b})`),
  maximum: bin((a, b, t) => (t === 'float' || t === 'double' ? `${cfn('fmax', t)}(${a}, ${b})` : `max(${a}, ${b})`)),
  minimum: bin((a, b, t) => (t === 'float' || t === 'double' ? `${cfn('fmin', t)}(${a}, ${b})` : `min(${a}, ${b})`)),
  eq: bin((a, b) => `(${a} == ${b})`),
  neq: bin((a, b) => `(${a} != ${b})`),
  lt: bin((a, b) => `(${a} < ${b})`),
  le: bin((a, b) => `(${a} <= ${b})`),
  gt: bin((a, b) => `(${a} > ${b})`),
  ge: bin((a, b) => `(${a} >= ${b})`),
  and: bin((a, b) => `(${a} & ${b})`),
  or: bin((a, b) => `(${a} | ${b})`),
  xor: bin((a, b) => `(${a} ^ ${b})`),
  where: (x) => `(${x[0]} ? ${x[1]} : ${x[2]})`,
  clip: (a, t) => (t === 'float' || t === 'double'
    ? `${cfn('fmin', t)}(${cfn('fmax', t)}(${a[0]}, ${a[1]}), ${a[2]})`
    : `min(max(${a[0]}, ${a[1]}), ${a[2]})`),
  cast: (a, t) => `(${t})(${a[0]})`,
};
