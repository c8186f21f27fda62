// Every elementwise op: scalar reference, JS and CUDA templates, dtype rule and gradient.
import type { DType } from '../tensor/dtype.js';
import type { Variable } from '../tensor/variable.js';
import * as B from '../tensor/build.js';
import { elementwiseOp, cfn, type ElementwiseSpec } from './elementwise-core.js';
import { erf, sigmoid, softplus, roundHalfEven, pyMod, floorDiv, sign, nanMax, nanMin, cPow, intPow } from './scalar-math.js';

type G = (x: Variable[], out: Variable, g: Variable) => (Variable | null)[];

type IntVariant = ElementwiseSpec['int'];

function unary(
  name: string,
  dtype: ElementwiseSpec['dtype'],
  scalar: (a: number) => number,
  js: (a: string) => string,
  cuda: (a: string, t: string) => string,
  grad?: G,
  int?: IntVariant,
) {
  return elementwiseOp({
    name,
    arity: 1,
    dtype,
    scalar,
    ...(int ? { int } : {}),
    js: (args) => js(args[0]!),
    cuda: (args, t) => cuda(args[0]!, t),
    ...(grad ? { grad: (ctx) => grad([...ctx.inputs], ctx.output, ctx.gOut) } : {}),
  });
}

function binary(
  name: string,
  dtype: ElementwiseSpec['dtype'],
  scalar: (a: number, b: number) => number,
  js: (a: string, b: string) => string,
  cuda: (a: string, b: string, t: string) => string,
  grad?: G,
  int?: IntVariant,
) {
  return elementwiseOp({
    name,
    arity: 2,
    dtype,
    scalar: scalar as (...args: number[]) => number,
    ...(int ? { int } : {}),
    js: (args) => js(args[0]!, args[1]!),
    cuda: (args, t) => cuda(args[0]!, args[1]!, t),
    ...(grad ? { grad: (ctx) => grad([...ctx.inputs], ctx.output, ctx.gOut) } : {}),
  });
}

const zero: G = (x) => [B.zerosLike(x[0]!)];

/** floorDiv (scalar-math.ts) in CUDA C for float or double, as an immediately invoked device lambda. */
function cudaFloorDiv(a: string, b: string, t: string): string {
  const f = (name: string) => cfn(name, t);
  return (
    `([](${t} a, ${t} b) -> ${t} { if (b == 0) return a / b; const ${t} m = ${f('fmod')}(a, b); ${t} d = (a - m) / b; ` +
    `if (m != 0 && ((b < 0) != (m < 0))) d -= 1; if (d == 0) return ${f('copysign')}((${t})0, a / b); ` +
    `const ${t} fl = ${f('floor')}(d); return d - fl > (${t})0.5 ? fl + 1 : fl; }(${a}, ${b}))`
  );
}
const fcall = (name: string) => (a: string, t: string) => `${cfn(name, t)}(${a})`;
const PI = Math.PI;

export const elementwiseOps = {
  neg: unary(
    'neg',
    'upcast',
    (a) => -a,
    (a) => `(-${a})`,
    (a) => `(-${a})`,
    (_x, _o, g) => [B.neg(g)],
  ),
  abs: unary(
    'abs',
    'upcast',
    Math.abs,
    (a) => `Math.abs(${a})`,
    (a, t) => (t === 'float' || t === 'double' ? `${cfn('fabs', t)}(${a})` : `abs(${a})`),
    (x, _o, g) => [B.mul(g, B.sign(x[0]!))],
  ),
  sign: unary(
    'sign',
    'upcast',
    sign,
    (a) => `H.sign(${a})`,
    (a, t) => `(${t})((${a} > 0) - (${a} < 0))`,
    zero,
  ),
  exp: unary(
    'exp',
    'float',
    Math.exp,
    (a) => `Math.exp(${a})`,
    fcall('exp'),
    (_x, o, g) => [B.mul(g, o)],
  ),
  expm1: unary(
    'expm1',
    'float',
    Math.expm1,
    (a) => `Math.expm1(${a})`,
    fcall('expm1'),
    (_x, o, g) => [B.mul(g, B.add(o, 1))],
  ),
  log: unary(
    'log',
    'float',
    Math.log,
    (a) => `Math.log(${a})`,
    fcall('log'),
    (x, _o, g) => [B.div(g, x[0]!)],
  ),
  log1p: unary(
    'log1p',
    'float',
    Math.log1p,
    (a) => `Math.log1p(${a})`,
    fcall('log1p'),
    (x, _o, g) => [B.div(g, B.add(x[0]!, 1))],
  ),
  sqrt: unary(
    'sqrt',
    'float',
    Math.sqrt,
    (a) => `Math.sqrt(${a})`,
    fcall('sqrt'),
    (_x, o, g) => [B.div(B.mul(g, 0.5), o)],
  ),
  square: unary(
    'square',
    'upcast',
    (a) => a * a,
    (a) => `(${a} * ${a})`,
    (a) => `(${a} * ${a})`,
    (x, _o, g) => [B.mul(g, B.mul(x[0]!, 2))],
    { scalar: (a) => Math.imul(a!, a!), js: (a) => `Math.imul(${a[0]}, ${a[0]})` },
  ),
  reciprocal: unary(
    'reciprocal',
    'float',
    (a) => 1 / a,
    (a) => `(1 / ${a})`,
    (a, t) => `((${t})1 / ${a})`,
    (_x, o, g) => [B.neg(B.mul(g, B.square(o)))],
  ),
  sin: unary(
    'sin',
    'float',
    Math.sin,
    (a) => `Math.sin(${a})`,
    fcall('sin'),
    (x, _o, g) => [B.mul(g, B.cos(x[0]!))],
  ),
  cos: unary(
    'cos',
    'float',
    Math.cos,
    (a) => `Math.cos(${a})`,
    fcall('cos'),
    (x, _o, g) => [B.neg(B.mul(g, B.sin(x[0]!)))],
  ),
  tanh: unary(
    'tanh',
    'float',
    Math.tanh,
    (a) => `Math.tanh(${a})`,
    fcall('tanh'),
    (_x, o, g) => [B.mul(g, B.sub(1, B.square(o)))],
  ),
  sigmoid: unary(
    'sigmoid',
    'float',
    sigmoid,
    (a) => `H.sigmoid(${a})`,
    (a, t) => `((${t})1 / ((${t})1 + ${cfn('exp', t)}(-${a})))`,
    (_x, o, g) => [B.mul(g, B.mul(o, B.sub(1, o)))],
  ),
  softplus: unary(
    'softplus',
    'float',
    softplus,
    (a) => `H.softplus(${a})`,
    (a, t) => `(${a} > (${t})0 ? ${a} + ${cfn('log1p', t)}(${cfn('exp', t)}(-${a})) : ${cfn('log1p', t)}(${cfn('exp', t)}(${a})))`,
    (x, _o, g) => [B.mul(g, B.sigmoid(x[0]!))],
  ),
  relu: unary(
    'relu',
    'upcast',
    (a) => (a > 0 ? a : a === a ? 0 : a),
    (a) => `(${a} > 0 ? ${a} : ${a} === ${a} ? 0 : ${a})`,
    (a, t) => `(${a} > (${t})0 ? ${a} : (${a} != ${a} ? ${a} : (${t})0))`,
    (x, _o, g) => [B.mul(g, B.cast(B.gt(x[0]!, 0), g.dtype))],
  ),
  erf: unary(
    'erf',
    'float',
    erf,
    (a) => `H.erf(${a})`,
    fcall('erf'),
    (x, _o, g) => [B.mul(g, B.mul(2 / Math.sqrt(PI), B.exp(B.neg(B.square(x[0]!)))))],
  ),
  floor: unary(
    'floor',
    'upcast',
    Math.floor,
    (a) => `Math.floor(${a})`,
    (a, t) => (t === 'float' || t === 'double' ? `${cfn('floor', t)}(${a})` : a),
    zero,
  ),
  ceil: unary(
    'ceil',
    'upcast',
    Math.ceil,
    (a) => `Math.ceil(${a})`,
    (a, t) => (t === 'float' || t === 'double' ? `${cfn('ceil', t)}(${a})` : a),
    zero,
  ),
  round: unary(
    'round',
    'upcast',
    roundHalfEven,
    (a) => `H.roundHalfEven(${a})`,
    (a, t) => (t === 'float' || t === 'double' ? `${cfn('rint', t)}(${a})` : a),
    zero,
  ),
  // Logical on bool, bitwise on integers (as NumPy's invert), so De Morgan holds with and/or/xor.
  not: unary(
    'not',
    'logical',
    (a) => (a === 0 ? 1 : 0),
    (a) => `(${a} === 0 ? 1 : 0)`,
    (a, t) => (t === 'int' || t === 'unsigned char' ? `(${t})(~${a})` : `(${a} == 0)`),
    undefined,
    { scalar: (a) => ~a!, js: (a) => `(~${a[0]})` },
  ),

  add: binary(
    'add',
    'upcast',
    (a, b) => a + b,
    (a, b) => `(${a} + ${b})`,
    (a, b) => `(${a} + ${b})`,
    (_x, _o, g) => [g, g],
  ),
  sub: binary(
    'sub',
    'upcast',
    (a, b) => a - b,
    (a, b) => `(${a} - ${b})`,
    (a, b) => `(${a} - ${b})`,
    (_x, _o, g) => [g, B.neg(g)],
  ),
  mul: binary(
    'mul',
    'upcast',
    (a, b) => a * b,
    (a, b) => `(${a} * ${b})`,
    (a, b) => `(${a} * ${b})`,
    (x, _o, g) => [B.mul(g, x[1]!), B.mul(g, x[0]!)],
    { scalar: (a, b) => Math.imul(a!, b!), js: (a) => `Math.imul(${a[0]}, ${a[1]})` },
  ),
  div: binary(
    'div',
    'float',
    (a, b) => a / b,
    (a, b) => `(${a} / ${b})`,
    (a, b, t) => `((${t})${a} / (${t})${b})`,
    (x, _o, g) => [B.div(g, x[1]!), B.neg(B.div(B.mul(g, x[0]!), B.square(x[1]!)))],
  ),
  // Floats: NumPy's floor_divide, consistent with mod; integers: floor(a / b) is exact for int32.
  intDiv: binary(
    'intDiv',
    'upcast',
    floorDiv,
    (a, b) => `H.floorDiv(${a}, ${b})`,
    (a, b, t) => (t === 'float' || t === 'double' ? cudaFloorDiv(a, b, t) : `(${t})floor((double)${a} / (double)${b})`),
    (x) => [B.zerosLike(x[0]!), B.zerosLike(x[1]!)],
    { scalar: (a, b) => Math.floor(a! / b!), js: (a) => `Math.floor(${a[0]} / ${a[1]})` },
  ),
  mod: binary(
    'mod',
    'upcast',
    pyMod,
    (a, b) => `H.pyMod(${a}, ${b})`,
    (a, b, t) =>
      t === 'float' || t === 'double' ? `(${a} - ${cfn('floor', t)}(${a} / ${b}) * ${b})` : `(${t})(${a} - floor((double)${a} / (double)${b}) * ${b})`,
    (x, _o, g) => [g, B.neg(B.mul(g, B.intDiv(x[0]!, x[1]!)))],
  ),
  pow: binary(
    'pow',
    'upcast',
    cPow,
    (a, b) => `H.cPow(${a}, ${b})`,
    (a, b, t) => `(${t})${cfn('pow', t === 'float' ? 'float' : 'double')}(${a}, ${b})`,
    (x, o, g) => [
      B.mul(g, B.mul(x[1]!, B.pow(x[0]!, B.sub(x[1]!, 1)))),
      // x^y log x is 0 * -inf at x = 0; for y > 0, x^y is 0 near there, so its limit 0 is the gradient.
      B.mul(g, B.where(B.and(B.eq(x[0]!, 0), B.gt(x[1]!, 0)), 0, B.mul(o, B.log(x[0]!)))),
    ],
    { scalar: (a, b) => intPow(a!, b!), js: (a) => `H.intPow(${a[0]}, ${a[1]})` },
  ),
  maximum: binary(
    'maximum',
    'upcast',
    nanMax,
    (a, b) => `H.nanMax(${a}, ${b})`,
    (a, b, t) => (t === 'float' || t === 'double' ? `${cfn('fmax', t)}(${a}, ${b})` : `max(${a}, ${b})`),
    (x, _o, g) => [B.mul(g, B.cast(B.ge(x[0]!, x[1]!), g.dtype)), B.mul(g, B.cast(B.lt(x[0]!, x[1]!), g.dtype))],
  ),
  minimum: binary(
    'minimum',
    'upcast',
    nanMin,
    (a, b) => `H.nanMin(${a}, ${b})`,
    (a, b, t) => (t === 'float' || t === 'double' ? `${cfn('fmin', t)}(${a}, ${b})` : `min(${a}, ${b})`),
    (x, _o, g) => [B.mul(g, B.cast(B.le(x[0]!, x[1]!), g.dtype)), B.mul(g, B.cast(B.gt(x[0]!, x[1]!), g.dtype))],
  ),
  eq: binary(
    'eq',
    'bool',
    (a, b) => (a === b ? 1 : 0),
    (a, b) => `(${a} === ${b} ? 1 : 0)`,
    (a, b) => `(${a} == ${b})`,
  ),
  neq: binary(
    'neq',
    'bool',
    (a, b) => (a !== b ? 1 : 0),
    (a, b) => `(${a} !== ${b} ? 1 : 0)`,
    (a, b) => `(${a} != ${b})`,
  ),
  lt: binary(
    'lt',
    'bool',
    (a, b) => (a < b ? 1 : 0),
    (a, b) => `(${a} < ${b} ? 1 : 0)`,
    (a, b) => `(${a} < ${b})`,
  ),
  le: binary(
    'le',
    'bool',
    (a, b) => (a <= b ? 1 : 0),
    (a, b) => `(${a} <= ${b} ? 1 : 0)`,
    (a, b) => `(${a} <= ${b})`,
  ),
  gt: binary(
    'gt',
    'bool',
    (a, b) => (a > b ? 1 : 0),
    (a, b) => `(${a} > ${b} ? 1 : 0)`,
    (a, b) => `(${a} > ${b})`,
  ),
  ge: binary(
    'ge',
    'bool',
    (a, b) => (a >= b ? 1 : 0),
    (a, b) => `(${a} >= ${b} ? 1 : 0)`,
    (a, b) => `(${a} >= ${b})`,
  ),
  and: binary(
    'and',
    'logical',
    (a, b) => a & b,
    (a, b) => `(${a} & ${b})`,
    (a, b) => `(${a} & ${b})`,
  ),
  or: binary(
    'or',
    'logical',
    (a, b) => a | b,
    (a, b) => `(${a} | ${b})`,
    (a, b) => `(${a} | ${b})`,
  ),
  xor: binary(
    'xor',
    'logical',
    (a, b) => a ^ b,
    (a, b) => `(${a} ^ ${b})`,
    (a, b) => `(${a} ^ ${b})`,
  ),

  where: elementwiseOp({
    name: 'where',
    arity: 3,
    dtype: 'where',
    scalar: (c, a, b) => (c !== 0 ? a! : b!),
    js: (x) => `(${x[0]} !== 0 ? ${x[1]} : ${x[2]})`,
    cuda: (x) => `(${x[0]} ? ${x[1]} : ${x[2]})`,
    grad: (ctx) => [null, B.where(ctx.inputs[0]!, ctx.gOut, 0), B.where(ctx.inputs[0]!, 0, ctx.gOut)],
  }),
  clip: elementwiseOp({
    name: 'clip',
    arity: 3,
    dtype: 'upcast',
    scalar: (x, lo, hi) => (x !== x ? x : Math.min(Math.max(x, lo!), hi!)),
    js: (a) => `(${a[0]} !== ${a[0]} ? ${a[0]} : Math.min(Math.max(${a[0]}, ${a[1]}), ${a[2]}))`,
    cuda: (a, t) =>
      t === 'float' || t === 'double' ? `${cfn('fmin', t)}(${cfn('fmax', t)}(${a[0]}, ${a[1]}), ${a[2]})` : `min(max(${a[0]}, ${a[1]}), ${a[2]})`,
    grad: (ctx) => {
      const [x, lo, hi] = ctx.inputs as [Variable, Variable, Variable];
      const g = ctx.gOut;
      const inside = B.and(B.ge(x, lo), B.le(x, hi));
      return [B.where(inside, g, 0), B.where(B.lt(x, lo), g, 0), B.where(B.gt(x, hi), g, 0)];
    },
  }),
  cast: elementwiseOp<{ readonly dtype: DType }>({
    name: 'cast',
    arity: 1,
    dtype: 'cast',
    scalar: (a) => a,
    js: (a, attrs) =>
      attrs['dtype'] === 'bool' ? `(${a[0]} !== 0 ? 1 : 0)` : attrs['dtype'] === 'int32' || attrs['dtype'] === 'uint8' ? `Math.trunc(${a[0]})` : `${a[0]}`,
    cuda: (a, t) => `(${t})(${a[0]})`,
    grad: (ctx) => [B.cast(ctx.gOut, ctx.inputs[0]!.dtype)],
  }),
};
