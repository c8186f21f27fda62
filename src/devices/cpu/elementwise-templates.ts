// The CPU device's JavaScript source for each elementwise op, one table typed over the elementwise
// op names (as tinygrad keeps code_for_op per renderer): an elementwise op added without its
// template here fails to compile, and a new code-generating device brings its own table without
// touching src/ops/. Templates may call the helpers of src/ops/scalar-math.ts as `H.name`.
import type { Attrs } from '../../tensor/variable.js';
import type { ElementwiseOpName } from '../../ops/elementwise.js';
import { erf, sigmoid, softplus, roundHalfEven, pyMod, floorDiv, sign, nanMax, nanMin, cPow, intPow } from '../../ops/scalar-math.js';

/** Names a generated JS kernel may call as `H.name`, mapped to the reference's own scalar functions. */
export const SCALAR_HELPERS = { erf, sigmoid, softplus, roundHalfEven, pyMod, floorDiv, sign, nanMax, nanMin, cPow, intPow } as const;

/** A JavaScript expression over argument expressions. */
export type JsExpression = (args: readonly string[], attrs: Attrs) => string;

/** An op's template, and its integer-exact variant for int32 and uint8 results (e.g. wrapping multiply). */
export interface JsTemplate {
  readonly js: JsExpression;
  readonly int?: JsExpression;
}

const un = (f: (a: string) => string): JsExpression => (args) => f(args[0]!);
const bin = (f: (a: string, b: string) => string): JsExpression => (args) => f(args[0]!, args[1]!);

/** The JavaScript template of every elementwise op. */
export const JS_TEMPLATES: Readonly<Record<ElementwiseOpName, JsTemplate>> = {
  neg: { js: un((a) => `(-${a})`) },
  abs: { js: un((a) => `Math.abs(${a})`) },
  sign: { js: un((a) => `H.sign(${a})`) },
  exp: { js: un((a) => `Math.exp(${a})`) },
  expm1: { js: un((a) => `Math.expm1(${a})`) },
  log: { js: un((a) => `Math.log(${a})`) },
  log1p: { js: un((a) => `Math.log1p(${a})`) },
  sqrt: { js: un((a) => `Math.sqrt(${a})`) },
  square: { js: un((a) => `(${a} * ${a})`), int: (a) => `Math.imul(${a[0]}, ${a[0]})` },
  reciprocal: { js: un((a) => `(1 / ${a})`) },
  sin: { js: un((a) => `Math.sin(${a})`) },
  cos: { js: un((a) => `Math.cos(${a})`) },
  tanh: { js: un((a) => `Math.tanh(${a})`) },
  sigmoid: { js: un((a) => `H.sigmoid(${a})`) },
  softplus: { js: un((a) => `H.softplus(${a})`) },
  relu: { js: un((a) => `(${a} > 0 ? ${a} : ${a} === ${a} ? 0 : ${a})`) },
  erf: { js: un((a) => `H.erf(${a})`) },
  floor: { js: un((a) => `Math.floor(${a})`) },
  ceil: { js: un((a) => `Math.ceil(${a})`) },
  round: { js: un((a) => `H.roundHalfEven(${a})`) },
  not: { js: un((a) => `(${a} === 0 ? 1 : 0)`), int: (a) => `(~${a[0]})` },
  add: { js: bin((a, b) => `(${a} + ${b})`) },
  sub: { js: bin((a, b) => `(${a} - ${b})`) },
  mul: { js: bin((a, b) => `(${a} * ${b})`), int: (a) => `Math.imul(${a[0]}, ${a[1]})` },
  div: { js: bin((a, b) => `(${a} / ${b})`) },
  intDiv: { js: bin((a, b) => `H.floorDiv(${a}, ${b})`), int: (a) => `Math.floor(${a[0]} / ${a[1]})` },
  mod: { js: bin((a, b) => `H.pyMod(${a}, ${b})`) },
  pow: { js: bin((a, b) => `H.cPow(${a}, ${b})`), int: (a) => `H.intPow(${a[0]}, ${a[1]})` },
  maximum: { js: bin((a, b) => `H.nanMax(${a}, ${b})`) },
  minimum: { js: bin((a, b) => `H.nanMin(${a}, ${b})`) },
  eq: { js: bin((a, b) => `(${a} === ${b} ? 1 : 0)`) },
  neq: { js: bin((a, b) => `(${a} !== ${b} ? 1 : 0)`) },
  lt: { js: bin((a, b) => `(${a} < ${b} ? 1 : 0)`) },
  le: { js: bin((a, b) => `(${a} <= ${b} ? 1 : 0)`) },
  gt: { js: bin((a, b) => `(${a} > ${b} ? 1 : 0)`) },
  ge: { js: bin((a, b) => `(${a} >= ${b} ? 1 : 0)`) },
  and: { js: bin((a, b) => `(${a} & ${b})`) },
  or: { js: bin((a, b) => `(${a} | ${b})`) },
  xor: { js: bin((a, b) => `(${a} ^ ${b})`) },
  where: { js: (x) => `(${x[0]} !== 0 ? ${x[1]} : ${x[2]})` },
  clip: { js: (a) => `(${a[0]} !== ${a[0]} ? ${a[0]} : Math.min(Math.max(${a[0]}, ${a[1]}), ${a[2]}))` },
  cast: { js: (a, attrs) => (attrs['dtype'] === 'bool'
    ? `(${a[0]} !== 0 ? 1 : 0)`
    : attrs['dtype'] === 'int32' || attrs['dtype'] === 'uint8' ? `Math.trunc(${a[0]})` : `${a[0]}`) },
};
