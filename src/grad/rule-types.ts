// The shape of a gradient rule and of the table that holds one per op (as jax-js keeps its jvp
// rules apart from its primitives). A rule builds the gradient graph with the builders, so it sits
// above them; the op table below knows nothing of differentiation.
import type { Variable } from '../tensor/variable.js';
import type { OpAttrs, OpName } from '../ops/registry.js';

/** What a gradient rule receives: the op's inputs, its output, the cost's gradient there and the op's attributes. */
export interface GradContext<A> {
  readonly inputs: readonly Variable[];
  readonly output: Variable;
  /** Gradient of the cost with respect to `output`. */
  readonly gOut: Variable;
  readonly attrs: A;
}

/** One gradient (or null when disconnected) per input of the op. */
export type GradRule<A> = (ctx: GradContext<A>) => (Variable | null)[];

/** A rule for each op in `N`; null marks an op that is not differentiable (grad refuses to go through it). */
export type GradRules<N extends OpName> = { readonly [K in N]: GradRule<OpAttrs<K>> | null };
