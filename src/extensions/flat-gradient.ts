// One flat vector for the whole gradient (the original's recipe: one big collective instead of many
// small ones). Layout: every parameter's gradient flattened in order, then (optionally) the new values
// of float state that must stay equal on every rank (batch-norm running statistics), then ONE last
// element holding the number of rows the rank computed on. Every part is stored times that row
// count, so after a 'sum' (or 'avg') all-reduce, part / last element is the row-weighted mean over
// ranks: exactly one device on the whole batch, also when ranks have uneven rows.
import { NDArray, describe, shapeToString } from '../tensor/ndarray.js';
import { isFloat, type DType } from '../tensor/dtype.js';
import { SharedVariable, Variable, asVariable } from '../tensor/variable.js';
import * as B from '../build/build.js';
import { concatenate, subtensor } from '../build/build-shape.js';

/** Where one shared variable's values sit in the flat vector of a {@link FlatLayout}. */
export interface FlatEntry {
  readonly shared: SharedVariable;
  readonly offset: number;
  readonly size: number;
  readonly shape: readonly number[];
}

/** Where each parameter's gradient (and each averaged state) lives in the flat vector. */
export class FlatLayout {
  readonly params: readonly FlatEntry[];
  readonly states: readonly FlatEntry[];
  /** Index of the row-count element (= the number of gradient and state elements). */
  readonly weightIndex: number;
  readonly dtype: DType;

  constructor(params: readonly SharedVariable[], states: readonly SharedVariable[] = [], what = 'flat gradient') {
    const all = [...params, ...states];
    const dtypes = new Set(all.map((p) => p.dtype));
    if (dtypes.size > 1) throw new TypeError(`${what}: parameters and states must share one float dtype, got ${[...dtypes].join(' and ')}`);
    let offset = 0;
    const entry = (s: SharedVariable): FlatEntry => {
      const shape = [...s.getValue({ borrow: true }).shape];
      const size = shape.reduce((a, b) => a * b, 1);
      const e = { shared: s, offset, size, shape };
      offset += size;
      return e;
    };
    this.params = params.map(entry);
    this.states = states.map(entry);
    this.weightIndex = offset;
    this.dtype = all[0]?.dtype ?? 'float32';
  }

  /** Length of the flat vector (all parts plus the row-count element). */
  get length(): number {
    return this.weightIndex + 1;
  }

  /** A zero flat vector of this layout, as a shared variable. */
  makeShared(name = 'flatGrad'): SharedVariable {
    return new SharedVariable(new NDArray(this.dtype, [this.length]), { name });
  }

  /**
   * The expression written into `target` (the flat vector): [g·rows ..., state·rows ..., rows].
   * With `split` (parameter index -> the operands [A, G] of its gradient Aᵀ·G, a column-split step,
   * column-split.ts) those parameters' parts are left out and, after the row count, each one's
   * operands follow in parameter order: [K, A (K x in), G·rows (K x out)], K the operands' rows.
   */
  pack(
    target: SharedVariable, grads: readonly Variable[], stateValues: readonly Variable[], rows: Variable | number,
    split?: ReadonlyMap<number, readonly [Variable, Variable]>,
  ): Variable {
    if (grads.length !== this.params.length) throw new RangeError(`flat gradient: ${grads.length} gradients for ${this.params.length} parameters`);
    if (stateValues.length !== this.states.length) throw new RangeError(`flat gradient: ${stateValues.length} state values for ${this.states.length} states`);
    // Workaround: a compiled function cannot yet update a shared variable its graph does not read
    // (CompiledFunction.sharedById: "update of unknown shared variable"), so the row count reads the
    // target's length times zero: a scalar, no cost.
    const touch = B.mul(0, B.cast(B.shapeOf(target)[0]!, this.dtype));
    const n = B.add(B.cast(asVariable(rows, 'flat gradient: rows', this.dtype), this.dtype), touch);
    const parts = [...grads.filter((_, i) => !split?.has(i)), ...stateValues].map((g) => B.mul(B.flatten(B.cast(g, this.dtype)), n));
    const operands = [...(split ?? new Map<number, readonly [Variable, Variable]>())].sort(([i], [j]) => i - j).flatMap(([, [a, g]]) => [
      B.reshape(B.cast(B.shapeOf(a)[0]!, this.dtype), [1]),
      B.flatten(B.cast(a, this.dtype)),
      B.mul(B.flatten(B.cast(g, this.dtype)), n), // the row weight folded into G, so one GEMM sums every rank's rows
    ]);
    return concatenate([...parts, B.reshape(n, [1]), ...operands], 0);
  }

  /** 1 / total rows, read from the (reduced) flat vector. */
  inverseWeight(flat: Variable): Variable {
    return B.reciprocal(subtensor(flat, [this.weightIndex]));
  }

  /** The row-weighted mean of one entry, reshaped to its parameter's shape. */
  unpack(flat: Variable, e: FlatEntry, inverseWeight: Variable): Variable {
    const part = subtensor(flat, [[e.offset, e.offset + e.size]]);
    return B.reshape(B.mul(part, inverseWeight), e.shape);
  }

  /** Mean gradients (one per parameter) read from the flat vector. */
  gradients(flat: Variable): Variable[] {
    const inv = this.inverseWeight(flat);
    return this.params.map((e) => this.unpack(flat, e, inv));
  }

  /** Mean state values (one per state) read from the flat vector. */
  stateValues(flat: Variable): Variable[] {
    const inv = this.inverseWeight(flat);
    return this.states.map((e) => this.unpack(flat, e, inv));
  }

  /** Splits a concrete flat vector into per-parameter arrays (e.g. to inspect gradients in tests). */
  split(flat: NDArray): { grads: NDArray[]; states: NDArray[]; rows: number } {
    if (flat.ndim !== 1 || flat.size !== this.length)
      throw new RangeError(`flat gradient: expected a vector of ${this.length}, got ${shapeToString(flat.shape)}`);
    const rows = flat.data[this.weightIndex]!;
    const take = (e: FlatEntry) => {
      const out = new NDArray(this.dtype, e.shape);
      for (let i = 0; i < e.size; i++) out.data[i] = flat.data[e.offset + i]! / rows;
      return out;
    };
    return { grads: this.params.map(take), states: this.states.map(take), rows };
  }
}

/** Checks a parameter list: non-empty, distinct float shared variables of one dtype. */
export function checkParams(params: unknown, what: string): SharedVariable[] {
  if (!Array.isArray(params) || params.length === 0)
    throw new TypeError(`${what}: params must be a non-empty array of shared variables, got ${describe(params)}`);
  const seen = new Set<SharedVariable>();
  params.forEach((p, i) => {
    if (!(p instanceof SharedVariable))
      throw new TypeError(`${what}: params[${i}] must be a shared variable (T.shared), got ${p instanceof Variable ? p.label() : describe(p)}`);
    if (!isFloat(p.dtype)) throw new TypeError(`${what}: params[${i}] (${p.label()}) is ${p.dtype}; only float parameters can be trained`);
    if (seen.has(p)) throw new TypeError(`${what}: params[${i}] (${p.label()}) is listed twice`);
    seen.add(p);
  });
  const dtypes = new Set(params.map((p: SharedVariable) => p.dtype));
  if (dtypes.size > 1) throw new TypeError(`${what}: parameters mix dtypes (${[...dtypes].join(', ')}); use one float dtype`);
  return params as SharedVariable[];
}

/** Checks that a loss is a float scalar variable. */
export function checkLoss(loss: unknown, what: string): Variable {
  if (!(loss instanceof Variable)) throw new TypeError(`${what}: loss must be a symbolic variable, got ${describe(loss)}`);
  if (loss.ndim !== 0) throw new TypeError(`${what}: loss must be a scalar, got ${loss.label()} (ndim ${loss.ndim}); reduce it first, e.g. T.mean(...)`);
  if (!isFloat(loss.dtype)) throw new TypeError(`${what}: loss must be a float scalar, got ${loss.label()}`);
  return loss;
}
