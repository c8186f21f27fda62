// Reverse-mode differentiation over the op table (Theano's T.grad).
import { isFloat } from '../tensor/dtype.js';
import { Constant, SharedVariable, Variable } from '../tensor/variable.js';
import * as B from '../build/build.js';
import type { Attrs } from '../tensor/variable.js';
import { isOpName } from '../ops/apply.js';
import { GRAD_RULES } from './rules.js';
import type { GradRule } from './rule-types.js';
import { topoSort } from '../tensor/graph.js';

/** Options of {@link grad}. */
export interface GradOptions {
  /** What to do for a `wrt` that the cost does not depend on: throw (default, as Theano) or give zeros. */
  disconnected?: 'raise' | 'zero';
}

/**
 * The gradient of a scalar cost with respect to one variable, by reverse-mode differentiation of the graph. The result is
 * a symbolic variable of the shape of `wrt`, so gradients of gradients work.
 *
 * @example
 * ```ts
 * import * as T from 'synkhronos/tensor';
 * const x = T.vector('x');
 * const gx = T.grad(T.sum(x.square()), x); // 2x
 * console.log((T.fn({ inputs: [x], outputs: gx })([1, 2, 3]) as T.NDArray).toArray()); // [2, 4, 6]
 * ```
 */
export function grad(cost: Variable, wrt: Variable, options?: GradOptions): Variable;
/** The gradients of a scalar cost with respect to each variable of `wrt`, in order (`const [gw, gb] = T.grad(cost, [w, b])`). */
export function grad<const W extends readonly Variable[]>(cost: Variable, wrt: W, options?: GradOptions): { -readonly [K in keyof W]: Variable };
export function grad(cost: Variable, wrt: Variable | readonly Variable[], options: GradOptions = {}): Variable | Variable[] {
  if (!(cost instanceof Variable)) throw new TypeError('grad: cost must be a symbolic variable');
  if (cost.ndim !== 0) throw new TypeError(`grad: cost must be a scalar, got ${cost.label()}; reduce it first (e.g. T.sum or T.mean)`);
  if (!isFloat(cost.dtype)) throw new TypeError(`grad: cost must be a float scalar, got ${cost.label()}`);
  const list = Array.isArray(wrt) ? [...(wrt as readonly Variable[])] : [wrt as Variable];
  list.forEach((w, i) => {
    if (!(w instanceof Variable)) throw new TypeError(`grad: wrt[${i}] must be a symbolic variable`);
    if (w instanceof Constant) throw new TypeError(`grad: wrt[${i}] is a constant; gradients are taken with respect to inputs or shared variables`);
    if (!isFloat(w.dtype)) throw new TypeError(`grad: wrt[${i}] (${w.label()}) is not a float variable; integer inputs are disconnected`);
  });

  const order = topoSort([cost]);
  // Which variables depend on some wrt: only those need gradients.
  const wrtIds = new Set(list.map((w) => w.id));
  const dependsOnWrt = new Set<number>();
  for (const v of order) {
    if (wrtIds.has(v.id) || v.owner?.inputs.some((i) => dependsOnWrt.has(i.id))) dependsOnWrt.add(v.id);
  }
  const contributions = new Map<number, Variable[]>();
  const total = (v: Variable): Variable | undefined => {
    const parts = contributions.get(v.id);
    if (!parts || parts.length === 0) return undefined;
    const sum = parts.reduce((a, b) => B.add(a, b));
    contributions.set(v.id, [sum]);
    return sum;
  };
  contributions.set(cost.id, [B.onesLike(cost)]);

  for (let k = order.length - 1; k >= 0; k--) {
    const v = order[k]!;
    const owner = v.owner;
    if (!owner || wrtIds.has(v.id) && !owner) continue;
    if (!dependsOnWrt.has(v.id)) continue;
    const gOut = total(v);
    if (gOut === undefined) continue;
    if (!isOpName(owner.op)) throw new TypeError(`grad: unknown op '${owner.op}'`);
    const rule = GRAD_RULES[owner.op];
    const needs = owner.inputs.map((i) => dependsOnWrt.has(i.id) && isFloat(i.dtype));
    if (!needs.some((n) => n)) continue;
    if (rule === null) throw new TypeError(`grad: op '${owner.op}' is not differentiable, but ${v.label()} depends on a variable in wrt`);
    // The node's attrs were checked against this op's attribute type when applyOp built it.
    const grads = (rule as GradRule<Attrs>)({ inputs: owner.inputs, output: v, gOut, attrs: owner.attrs });
    owner.inputs.forEach((input, i) => {
      const g = grads[i];
      if (!needs[i] || g === null || g === undefined) return;
      const fixed = g.dtype === input.dtype ? g : B.cast(g, input.dtype);
      const parts = contributions.get(input.id) ?? [];
      parts.push(fixed);
      contributions.set(input.id, parts);
    });
  }

  const results = list.map((w, i) => {
    const g = total(w);
    if (g !== undefined) return g.ndim === w.ndim ? B.rebroadcastLike(g, w) : g;
    if (options.disconnected === 'zero') return B.zerosLike(w);
    const what = w instanceof SharedVariable ? 'shared variable' : 'variable';
    throw new TypeError(`grad: the cost does not depend on wrt[${i}] (${what} ${w.label()}); pass { disconnected: 'zero' } to get zeros`);
  });
  return Array.isArray(wrt) ? results : results[0]!;
}
