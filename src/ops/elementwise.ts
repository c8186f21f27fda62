// Every elementwise op: its scalar reference and dtype rule. Gradient rules are in
// src/grad/rules-elementwise.ts; each device's source templates in that device's folder
// (src/devices/cpu/elementwise-templates.ts, src/devices/cuda/codegen/elementwise-templates.ts).
import type { DType } from '../tensor/dtype.js';
import { elementwiseOp, type ElementwiseSpec } from './elementwise-core.js';
import { erf, sigmoid, softplus, roundHalfEven, pyMod, floorDiv, sign, nanMax, nanMin, cPow, intPow } from './scalar-math.js';

/** A one-input op: its name, dtype rule, scalar function and (optional) integer-exact scalar. */
interface UnarySpec {
  readonly name: string;
  readonly dtype: ElementwiseSpec['dtype'];
  readonly scalar: (a: number) => number;
  readonly intScalar?: (a: number) => number;
}

/** A two-input op. */
interface BinarySpec {
  readonly name: string;
  readonly dtype: ElementwiseSpec['dtype'];
  readonly scalar: (a: number, b: number) => number;
  readonly intScalar?: (a: number, b: number) => number;
}

function unary(spec: UnarySpec) {
  return elementwiseOp({ ...spec, arity: 1 });
}

function binary(spec: BinarySpec) {
  return elementwiseOp({ ...spec, arity: 2 });
}

const unaryOps = {
  neg: unary({ name: 'neg', dtype: 'upcast', scalar: (a) => -a }),
  abs: unary({ name: 'abs', dtype: 'upcast', scalar: Math.abs }),
  sign: unary({ name: 'sign', dtype: 'upcast', scalar: sign }),
  exp: unary({ name: 'exp', dtype: 'float', scalar: Math.exp }),
  expm1: unary({ name: 'expm1', dtype: 'float', scalar: Math.expm1 }),
  log: unary({ name: 'log', dtype: 'float', scalar: Math.log }),
  log1p: unary({ name: 'log1p', dtype: 'float', scalar: Math.log1p }),
  sqrt: unary({ name: 'sqrt', dtype: 'float', scalar: Math.sqrt }),
  square: unary({ name: 'square', dtype: 'upcast', scalar: (a) => a * a, intScalar: (a) => Math.imul(a!, a!) }),
  reciprocal: unary({ name: 'reciprocal', dtype: 'float', scalar: (a) => 1 / a }),
  sin: unary({ name: 'sin', dtype: 'float', scalar: Math.sin }),
  cos: unary({ name: 'cos', dtype: 'float', scalar: Math.cos }),
  tanh: unary({ name: 'tanh', dtype: 'float', scalar: Math.tanh }),
  sigmoid: unary({ name: 'sigmoid', dtype: 'float', scalar: sigmoid }),
  softplus: unary({ name: 'softplus', dtype: 'float', scalar: softplus }),
  relu: unary({ name: 'relu', dtype: 'upcast', scalar: (a) => (a > 0 ? a : a === a ? 0 : a) }),
  erf: unary({ name: 'erf', dtype: 'float', scalar: erf }),
  floor: unary({ name: 'floor', dtype: 'upcast', scalar: Math.floor }),
  ceil: unary({ name: 'ceil', dtype: 'upcast', scalar: Math.ceil }),
  round: unary({ name: 'round', dtype: 'upcast', scalar: roundHalfEven }),
  // Logical on bool, bitwise on integers (as NumPy's invert), so De Morgan holds with and/or/xor.
  not: unary({ name: 'not', dtype: 'logical', scalar: (a) => (a === 0 ? 1 : 0), intScalar: (a) => ~a! }),
};

const binaryOps = {
  add: binary({ name: 'add', dtype: 'upcast', scalar: (a, b) => a + b }),
  sub: binary({ name: 'sub', dtype: 'upcast', scalar: (a, b) => a - b }),
  mul: binary({ name: 'mul', dtype: 'upcast', scalar: (a, b) => a * b, intScalar: (a, b) => Math.imul(a!, b!) }),
  div: binary({ name: 'div', dtype: 'float', scalar: (a, b) => a / b }),
  // Floats: NumPy's floor_divide, consistent with mod; integers: floor(a / b) is exact for int32.
  intDiv: binary({ name: 'intDiv', dtype: 'upcast', scalar: floorDiv, intScalar: (a, b) => Math.floor(a! / b!) }),
  mod: binary({ name: 'mod', dtype: 'upcast', scalar: pyMod }),
  pow: binary({ name: 'pow', dtype: 'upcast', scalar: cPow, intScalar: (a, b) => intPow(a!, b!) }),
  maximum: binary({ name: 'maximum', dtype: 'upcast', scalar: nanMax }),
  minimum: binary({ name: 'minimum', dtype: 'upcast', scalar: nanMin }),
  eq: binary({ name: 'eq', dtype: 'bool', scalar: (a, b) => (a === b ? 1 : 0) }),
  neq: binary({ name: 'neq', dtype: 'bool', scalar: (a, b) => (a !== b ? 1 : 0) }),
  lt: binary({ name: 'lt', dtype: 'bool', scalar: (a, b) => (a < b ? 1 : 0) }),
  le: binary({ name: 'le', dtype: 'bool', scalar: (a, b) => (a <= b ? 1 : 0) }),
  gt: binary({ name: 'gt', dtype: 'bool', scalar: (a, b) => (a > b ? 1 : 0) }),
  ge: binary({ name: 'ge', dtype: 'bool', scalar: (a, b) => (a >= b ? 1 : 0) }),
  and: binary({ name: 'and', dtype: 'logical', scalar: (a, b) => a & b }),
  or: binary({ name: 'or', dtype: 'logical', scalar: (a, b) => a | b }),
  xor: binary({ name: 'xor', dtype: 'logical', scalar: (a, b) => a ^ b }),
};

export const elementwiseOps = {
  ...unaryOps,
  ...binaryOps,
  where: elementwiseOp({ name: 'where', arity: 3, dtype: 'where', scalar: (c, a, b) => (c !== 0 ? a! : b!) }),
  clip: elementwiseOp({ name: 'clip', arity: 3, dtype: 'upcast', scalar: (x, lo, hi) => (x !== x ? x : Math.min(Math.max(x, lo!), hi!)) }),
  cast: elementwiseOp<{ readonly dtype: DType }>({ name: 'cast', arity: 1, dtype: 'cast', scalar: (a) => a }),
};

/** Whether `name` names an elementwise op (for descriptions and programs read from outside). */
export function isElementwiseOpName(name: string): name is ElementwiseOpName {
  return Object.prototype.hasOwnProperty.call(elementwiseOps, name);
}

/** The name of a one-input elementwise op (each is a builder `T.name(x)` and a method `x.name()`). */
export type UnaryOpName = keyof typeof unaryOps;
/** The name of a two-input elementwise op (each is a builder `T.name(a, b)` and a method `a.name(b)`). */
export type BinaryOpName = keyof typeof binaryOps;
/** The one-input elementwise ops' names, in table order. */
export const UNARY_OP_NAMES = Object.keys(unaryOps) as readonly UnaryOpName[];
/** The two-input elementwise ops' names, in table order. */
export const BINARY_OP_NAMES = Object.keys(binaryOps) as readonly BinaryOpName[];

/** The name of an elementwise op (those that fuse and that devices generate code for). */
export type ElementwiseOpName = keyof typeof elementwiseOps;
