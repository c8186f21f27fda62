// Every elementwise op: scalar reference, JS and CUDA templates, dtype rule and gradient.
import type { DType } from '../tensor/dtype.js';
import { elementwiseOp, cfn, type ElementwiseSpec } from './elementwise-core.js';
import { erf, sigmoid, softplus, roundHalfEven, pyMod, floorDiv, sign, nanMax, nanMin, cPow, intPow } from './scalar-math.js';

type IntVariant = ElementwiseSpec['int'];

interface UnarySpec {
  readonly name: string;
  readonly dtype: ElementwiseSpec['dtype'];
  readonly scalar: (a: number) => number;
  readonly js: (a: string) => string;
  readonly cuda: (a: string, t: string) => string;
  readonly int?: IntVariant;
}

interface BinarySpec {
  readonly name: string;
  readonly dtype: ElementwiseSpec['dtype'];
  readonly scalar: (a: number, b: number) => number;
  readonly js: (a: string, b: string) => string;
  readonly cuda: (a: string, b: string, t: string) => string;
  readonly int?: IntVariant;
}

function unary({ name, dtype, scalar, js, cuda, int }: UnarySpec) {
  return elementwiseOp({
    name, arity: 1, dtype, scalar, ...(int ? { int } : {}),
    js: (args) => js(args[0]!),
    cuda: (args, t) => cuda(args[0]!, t),
  });
}

function binary({ name, dtype, scalar, js, cuda, int }: BinarySpec) {
  return elementwiseOp({
    name, arity: 2, dtype, scalar: scalar as (...args: number[]) => number, ...(int ? { int } : {}),
    js: (args) => js(args[0]!, args[1]!),
    cuda: (args, t) => cuda(args[0]!, args[1]!, t),
  });
}

/** floorDiv (scalar-math.ts) in CUDA C for float or double, as an immediately invoked device lambda. */
function cudaFloorDiv(a: string, b: string, t: string): string {
  const f = (name: string) => cfn(name, t);
  return `([](${t} a, ${t} b) -> ${t} { if (b == 0) return a / b; const ${t} m = ${f('fmod')}(a, b); ${t} d = (a - m) / b; `
    + `if (m != 0 && ((b < 0) != (m < 0))) d -= 1; if (d == 0) return ${f('copysign')}((${t})0, a / b); `
    + `const ${t} fl = ${f('floor')}(d); return d - fl > (${t})0.5 ? fl + 1 : fl; }(${a}, ${b}))`;
}
const fcall = (name: string) => (a: string, t: string) => `${cfn(name, t)}(${a})`;

export const elementwiseOps = {
  neg: unary({ name: 'neg', dtype: 'upcast', scalar: (a) => -a, js: (a) => `(-${a})`, cuda: (a) => `(-${a})`}),
  abs: unary({
    name: 'abs', dtype: 'upcast', scalar: Math.abs, js: (a) => `Math.abs(${a})`,
    cuda: (a, t) => (t === 'float' || t === 'double' ? `${cfn('fabs', t)}(${a})` : `abs(${a})`),
  }),
  sign: unary({
    name: 'sign', dtype: 'upcast', scalar: sign, js: (a) => `H.sign(${a})`, cuda: (a, t) => `(${t})((${a} > 0) - (${a} < 0))`
  }),
  exp: unary({
    name: 'exp', dtype: 'float', scalar: Math.exp, js: (a) => `Math.exp(${a})`, cuda: fcall('exp')
  }),
  expm1: unary({
    name: 'expm1', dtype: 'float', scalar: Math.expm1, js: (a) => `Math.expm1(${a})`, cuda: fcall('expm1'),
  }),
  log: unary({
    name: 'log', dtype: 'float', scalar: Math.log, js: (a) => `Math.log(${a})`, cuda: fcall('log')
  }),
  log1p: unary({
    name: 'log1p', dtype: 'float', scalar: Math.log1p, js: (a) => `Math.log1p(${a})`, cuda: fcall('log1p'),
  }),
  sqrt: unary({
    name: 'sqrt', dtype: 'float', scalar: Math.sqrt, js: (a) => `Math.sqrt(${a})`, cuda: fcall('sqrt'),
  }),
  square: unary({
    name: 'square', dtype: 'upcast', scalar: (a) => a * a, js: (a) => `(${a} * ${a})`, cuda: (a) => `(${a} * ${a})`,
    int: { scalar: (a) => Math.imul(a!, a!), js: (a) => `Math.imul(${a[0]}, ${a[0]})` },
  }),
  reciprocal: unary({
    name: 'reciprocal', dtype: 'float', scalar: (a) => 1 / a, js: (a) => `(1 / ${a})`, cuda: (a, t) => `((${t})1 / ${a})`,
  }),
  sin: unary({
    name: 'sin', dtype: 'float', scalar: Math.sin, js: (a) => `Math.sin(${a})`, cuda: fcall('sin'),
  }),
  cos: unary({
    name: 'cos', dtype: 'float', scalar: Math.cos, js: (a) => `Math.cos(${a})`, cuda: fcall('cos'),
  }),
  tanh: unary({
    name: 'tanh', dtype: 'float', scalar: Math.tanh, js: (a) => `Math.tanh(${a})`, cuda: fcall('tanh'),
  }),
  sigmoid: unary({
    name: 'sigmoid', dtype: 'float', scalar: sigmoid, js: (a) => `H.sigmoid(${a})`,
    cuda: (a, t) => `((${t})1 / ((${t})1 + ${cfn('exp', t)}(-${a})))`,
  }),
  softplus: unary({
    name: 'softplus', dtype: 'float', scalar: softplus, js: (a) => `H.softplus(${a})`,
    cuda: (a, t) => `(${a} > (${t})0 ? ${a} + ${cfn('log1p', t)}(${cfn('exp', t)}(-${a})) : ${cfn('log1p', t)}(${cfn('exp', t)}(${a})))`,
  }),
  relu: unary({
    name: 'relu', dtype: 'upcast', scalar: (a) => (a > 0 ? a : a === a ? 0 : a),
    js: (a) => `(${a} > 0 ? ${a} : ${a} === ${a} ? 0 : ${a})`,
    cuda: (a, t) => `(${a} > (${t})0 ? ${a} : (${a} != ${a} ? ${a} : (${t})0))`,
  }),
  erf: unary({
    name: 'erf', dtype: 'float', scalar: erf, js: (a) => `H.erf(${a})`, cuda: fcall('erf'),
  }),
  floor: unary({
    name: 'floor', dtype: 'upcast', scalar: Math.floor, js: (a) => `Math.floor(${a})`,
    cuda: (a, t) => (t === 'float' || t === 'double' ? `${cfn('floor', t)}(${a})` : a)
  }),
  ceil: unary({
    name: 'ceil', dtype: 'upcast', scalar: Math.ceil, js: (a) => `Math.ceil(${a})`,
    cuda: (a, t) => (t === 'float' || t === 'double' ? `${cfn('ceil', t)}(${a})` : a)
  }),
  round: unary({
    name: 'round', dtype: 'upcast', scalar: roundHalfEven, js: (a) => `H.roundHalfEven(${a})`,
    cuda: (a, t) => (t === 'float' || t === 'double' ? `${cfn('rint', t)}(${a})` : a)
  }),
  // Logical on bool, bitwise on integers (as NumPy's invert), so De Morgan holds with and/or/xor.
  not: unary({
    name: 'not', dtype: 'logical', scalar: (a) => (a === 0 ? 1 : 0), js: (a) => `(${a} === 0 ? 1 : 0)`,
    cuda: (a, t) => (t === 'int' || t === 'unsigned char' ? `(${t})(~${a})` : `(${a} == 0)`),
    int: { scalar: (a) => ~a!, js: (a) => `(~${a[0]})` },
  }),

  add: binary({
    name: 'add', dtype: 'upcast', scalar: (a, b) => a + b, js: (a, b) => `(${a} + ${b})`, cuda: (a, b) => `(${a} + ${b})`,
  }),
  sub: binary({
    name: 'sub', dtype: 'upcast', scalar: (a, b) => a - b, js: (a, b) => `(${a} - ${b})`, cuda: (a, b) => `(${a} - ${b})`,
  }),
  mul: binary({
    name: 'mul', dtype: 'upcast', scalar: (a, b) => a * b, js: (a, b) => `(${a} * ${b})`, cuda: (a, b) => `(${a} * ${b})`,
    int: { scalar: (a, b) => Math.imul(a!, b!), js: (a) => `Math.imul(${a[0]}, ${a[1]})` },
  }),
  div: binary({
    name: 'div', dtype: 'float', scalar: (a, b) => a / b, js: (a, b) => `(${a} / ${b})`, cuda: (a, b, t) => `((${t})${a} / (${t})${b})`,
  }),
  // Floats: NumPy's floor_divide, consistent with mod; integers: floor(a / b) is exact for int32.
  intDiv: binary({
    name: 'intDiv', dtype: 'upcast', scalar: floorDiv, js: (a, b) => `H.floorDiv(${a}, ${b})`,
    cuda: (a, b, t) => (t === 'float' || t === 'double' ? cudaFloorDiv(a, b, t) : `(${t})floor((double)${a} / (double)${b})`),
    int: { scalar: (a, b) => Math.floor(a! / b!), js: (a) => `Math.floor(${a[0]} / ${a[1]})` },
  }),
  mod: binary({
    name: 'mod', dtype: 'upcast', scalar: pyMod, js: (a, b) => `H.pyMod(${a}, ${b})`,
    cuda: (a, b, t) => (t === 'float' || t === 'double'
      ? `(${a} - ${cfn('floor', t)}(${a} / ${b}) * ${b})`
      : `(${t})(${a} - floor((double)${a} / (double)${b}) * ${b})`),
  }),
  pow: binary({
    name: 'pow', dtype: 'upcast', scalar: cPow, js: (a, b) => `H.cPow(${a}, ${b})`,
    cuda: (a, b, t) => `(${t})${cfn('pow', t === 'float' ? 'float' : 'double')}(${a}, ${b})`,
    int: { scalar: (a, b) => intPow(a!, b!), js: (a) => `H.intPow(${a[0]}, ${a[1]})` },
  }),
  maximum: binary({
    name: 'maximum', dtype: 'upcast', scalar: nanMax, js: (a, b) => `H.nanMax(${a}, ${b})`,
    cuda: (a, b, t) => (t === 'float' || t === 'double' ? `${cfn('fmax', t)}(${a}, ${b})` : `max(${a}, ${b})`),
  }),
  minimum: binary({
    name: 'minimum', dtype: 'upcast', scalar: nanMin, js: (a, b) => `H.nanMin(${a}, ${b})`,
    cuda: (a, b, t) => (t === 'float' || t === 'double' ? `${cfn('fmin', t)}(${a}, ${b})` : `min(${a}, ${b})`),
  }),
  eq: binary({ name: 'eq', dtype: 'bool', scalar: (a, b) => (a === b ? 1 : 0), js: (a, b) => `(${a} === ${b} ? 1 : 0)`, cuda: (a, b) => `(${a} == ${b})` }),
  neq: binary({ name: 'neq', dtype: 'bool', scalar: (a, b) => (a !== b ? 1 : 0), js: (a, b) => `(${a} !== ${b} ? 1 : 0)`, cuda: (a, b) => `(${a} != ${b})` }),
  lt: binary({ name: 'lt', dtype: 'bool', scalar: (a, b) => (a < b ? 1 : 0), js: (a, b) => `(${a} < ${b} ? 1 : 0)`, cuda: (a, b) => `(${a} < ${b})` }),
  le: binary({ name: 'le', dtype: 'bool', scalar: (a, b) => (a <= b ? 1 : 0), js: (a, b) => `(${a} <= ${b} ? 1 : 0)`, cuda: (a, b) => `(${a} <= ${b})` }),
  gt: binary({ name: 'gt', dtype: 'bool', scalar: (a, b) => (a > b ? 1 : 0), js: (a, b) => `(${a} > ${b} ? 1 : 0)`, cuda: (a, b) => `(${a} > ${b})` }),
  ge: binary({ name: 'ge', dtype: 'bool', scalar: (a, b) => (a >= b ? 1 : 0), js: (a, b) => `(${a} >= ${b} ? 1 : 0)`, cuda: (a, b) => `(${a} >= ${b})` }),
  and: binary({ name: 'and', dtype: 'logical', scalar: (a, b) => a & b, js: (a, b) => `(${a} & ${b})`, cuda: (a, b) => `(${a} & ${b})` }),
  or: binary({ name: 'or', dtype: 'logical', scalar: (a, b) => a | b, js: (a, b) => `(${a} | ${b})`, cuda: (a, b) => `(${a} | ${b})` }),
  xor: binary({ name: 'xor', dtype: 'logical', scalar: (a, b) => a ^ b, js: (a, b) => `(${a} ^ ${b})`, cuda: (a, b) => `(${a} ^ ${b})` }),
  where: elementwiseOp({
    name: 'where', arity: 3, dtype: 'where',
    scalar: (c, a, b) => (c !== 0 ? a! : b!),
    js: (x) => `(${x[0]} !== 0 ? ${x[1]} : ${x[2]})`,
    cuda: (x) => `(${x[0]} ? ${x[1]} : ${x[2]})`,
  }),
  clip: elementwiseOp({
    name: 'clip', arity: 3, dtype: 'upcast',
    scalar: (x, lo, hi) => (x !== x ? x : Math.min(Math.max(x, lo!), hi!)),
    js: (a) => `(${a[0]} !== ${a[0]} ? ${a[0]} : Math.min(Math.max(${a[0]}, ${a[1]}), ${a[2]}))`,
    cuda: (a, t) => (t === 'float' || t === 'double'
      ? `${cfn('fmin', t)}(${cfn('fmax', t)}(${a[0]}, ${a[1]}), ${a[2]})`
      : `min(max(${a[0]}, ${a[1]}), ${a[2]})`),
  }),
  cast: elementwiseOp<{ readonly dtype: DType }>({
    name: 'cast', arity: 1, dtype: 'cast',
    scalar: (a) => a,
    js: (a, attrs) => (attrs['dtype'] === 'bool'
      ? `(${a[0]} !== 0 ? 1 : 0)`
      : attrs['dtype'] === 'int32' || attrs['dtype'] === 'uint8' ? `Math.trunc(${a[0]})` : `${a[0]}`),
    cuda: (a, t) => `(${t})(${a[0]})`,
  }),
};

/** Whether `name` names an elementwise op (for descriptions and programs read from outside). */
export function isElementwiseOpName(name: string): name is ElementwiseOpName {
  return Object.prototype.hasOwnProperty.call(elementwiseOps, name);
}

/** The name of an elementwise op (those that fuse and that devices generate code for). */
export type ElementwiseOpName = keyof typeof elementwiseOps;
