// T.randomStreams(seed): Theano's RandomStreams over the counter-based draws of src/ops/random.ts.
// Every draw gets its own state, a shared int32 vector [key0, key1, counterLo, counterHi] whose key
// is derived from the stream's seed and the draw's position; the draw reads the state, and its
// update (state with the counter advanced by one) is found by `randomUpdatesFor`, which T.fn
// calls so that compiled functions advance every stream they draw from.
import { FLOAT_X, assertDType, type DType } from '../tensor/dtype.js';
import { NDArray, describe } from '../tensor/ndarray.js';
import { SharedVariable, Variable } from '../tensor/variable.js';
import { intArgs } from './build.js';
import { applyOp } from '../ops/apply.js';
import type { OpAttrs } from '../ops/registry.js';
import { philox4x32, DRAW_OPS, type DrawKind, type ParamArg } from '../ops/random.js';
import { topoSort } from '../tensor/graph.js';

/** The shape of a random draw: numbers or int scalar variables (such as `x.shape[0]`). */
export type ShapeArg = readonly (number | Variable)[];
/** A distribution parameter: a number or a scalar variable. */
export type ParamValue = number | Variable;

/** Options of {@link RandomStreams.uniform}: the range [low, high) (default [0, 1)) and the dtype (default float32). */
export interface UniformOptions { low?: ParamValue; high?: ParamValue; dtype?: DType }
/** Options of {@link RandomStreams.normal}: the mean (default 0), standard deviation (default 1) and dtype. */
export interface NormalOptions { mean?: ParamValue; std?: ParamValue; dtype?: DType }
/** Options of {@link RandomStreams.bernoulli}: the probability of a 1 (default 0.5) and the dtype. */
export interface BernoulliOptions { p?: ParamValue; dtype?: DType }

const DRAW_OP_NAMES: ReadonlySet<string> = new Set(Object.values(DRAW_OPS));
const advanceCache = new WeakMap<SharedVariable, Variable>();

/** The update of a generator state: the same key, the counter plus one. */
export function advanceState(state: SharedVariable): Variable {
  let next = advanceCache.get(state);
  if (!next) {
    next = applyOp('randomAdvance', [state], {});
    advanceCache.set(state, next);
  }
  return next;
}

/** The initial state of draw number `index` of a stream seeded with `seed`. */
export function initialState(seed: number, index: number): NDArray {
  const words = new Uint32Array(4);
  // The key of each draw is itself a Philox block keyed by the seed (as Theano seeds each new
  // state from the stream's own generator); the counter starts at zero.
  philox4x32(index, 0, 0x5eed, 0, seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0, words);
  return new NDArray('int32', [4], Int32Array.from([words[0]! | 0, words[1]! | 0, 0, 0]));
}

function checkSeed(seed: unknown, what: string): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) throw new TypeError(`${what}: seed must be a safe integer, got ${describe(seed)}`);
  return seed;
}

/**
 * Random draws in the graph (Theano's RandomStreams): each draw's generator state is a shared variable that
 * {@link fn} advances through the function's updates, so a seeded function gives the same numbers on every run.
 *
 * @example
 * ```ts
 * import * as T from 'synkhronos/tensor';
 * const rng = T.randomStreams(42);
 * const x = T.matrix('x');
 * const keep = rng.bernoulli([x.shape[0]!, x.shape[1]!], { p: 0.8 }); // a dropout mask
 * const f = T.fn({ inputs: [x], outputs: x.mul(keep).div(0.8) });
 * console.log((f([[1, 1, 1], [1, 1, 1]]) as T.NDArray).toArray());
 * ```
 */
export class RandomStreams {
  private seedValue: number;
  private readonly stateList: SharedVariable[] = [];

  constructor(seed = 0) {
    this.seedValue = checkSeed(seed, 'randomStreams');
  }

  /** The generator states, one shared variable per draw made so far. */
  get states(): readonly SharedVariable[] {
    return this.stateList;
  }

  /** Uniform floats in [low, high). */
  uniform(shape: ShapeArg, options: UniformOptions = {}): Variable {
    const { low = 0, high = 1, dtype = FLOAT_X } = options;
    return this.draw('uniform', shape, { low, high }, dtype);
  }

  /** Normal floats with the given mean and standard deviation (Box-Muller). */
  normal(shape: ShapeArg, options: NormalOptions = {}): Variable {
    const { mean = 0, std = 1, dtype = FLOAT_X } = options;
    return this.draw('normal', shape, { mean, std }, dtype);
  }

  /** 1 with probability p, else 0 (p a number, or a variable broadcasting to the shape). */
  bernoulli(shape: ShapeArg, options: BernoulliOptions = {}): Variable {
    const { p = 0.5, dtype = FLOAT_X } = options;
    return this.draw('bernoulli', shape, { p }, dtype);
  }

  /** Every state with its advanced value (Theano's RandomStreams.updates()). */
  updates(): [SharedVariable, Variable][] {
    return this.stateList.map((s) => [s, advanceState(s)]);
  }

  /** Re-seeds every draw of this stream, as if the stream had been made with `seed`. */
  seed(seed: number): void {
    this.seedValue = checkSeed(seed, 'randomStreams.seed');
    this.stateList.forEach((s, i) => s.setValue(initialState(this.seedValue, i)));
  }

  private draw(kind: DrawKind, shape: ShapeArg, params: Record<string, ParamValue>, dtype: DType): Variable {
    const op = DRAW_OPS[kind];
    assertDType(dtype, `${kind}: dtype`);
    if (!Array.isArray(shape)) throw new TypeError(`${kind}: shape must be a list of numbers or int32 scalar variables, got ${describe(shape)}`);
    (shape as ShapeArg).forEach((d, i) => {
      if (typeof d === 'number' && (!Number.isInteger(d) || d < 0)) throw new TypeError(`${kind}: dimension ${i} must be a non-negative integer, got ${d}`);
    });
    const paramInputs: Variable[] = [];
    const attrs: Record<string, unknown> = { dtype };
    for (const [name, value] of Object.entries(params)) {
      if (typeof value === 'number') {
        checkParam(kind, name, value);
        attrs[name] = value;
      } else if (value instanceof Variable) {
        if (value.ndim > shape.length) throw new TypeError(`${kind}: ${name} (${value.label()}) has more axes than the shape (${shape.length})`);
        attrs[name] = { input: 1 + paramInputs.length } satisfies ParamArg;
        paramInputs.push(value);
      } else {
        throw new TypeError(`${kind}: ${name} must be a number or a symbolic variable, got ${describe(value)}`);
      }
    }
    const { args, inputs: dimInputs } = intArgs(kind, shape, 1 + paramInputs.length);
    attrs['dims'] = args;
    const index = this.stateList.length;
    const state = new SharedVariable(initialState(this.seedValue, index), { name: `rng.${kind}${index}` });
    this.stateList.push(state);
    const out = applyOp(op, [state, ...paramInputs, ...dimInputs], attrs as unknown as OpAttrs<typeof op>);
    void advanceState(state);
    return out;
  }
}

function checkParam(kind: DrawKind, name: string, value: number): void {
  if (!Number.isFinite(value)) throw new TypeError(`${kind}: ${name} must be finite, got ${value}`);
  if (name === 'p' && (value < 0 || value > 1)) throw new TypeError(`bernoulli: p must be in [0, 1], got ${value}`);
  if (name === 'std' && value < 0) throw new TypeError(`normal: std must be non-negative, got ${value}`);
}

/** A stream of random draws whose states are shared variables (Theano's RandomStreams). */
export function randomStreams(seed = 0): RandomStreams {
  return new RandomStreams(seed);
}

/**
 * The state updates of every random draw in the graphs of `outputs`: [state, advanced state] for
 * each state read by a draw (once each). T.fn adds these to a function's updates.
 */
export function randomUpdatesFor(outputs: readonly Variable[]): [SharedVariable, Variable][] {
  const found: [SharedVariable, Variable][] = [];
  const seen = new Set<SharedVariable>();
  for (const v of topoSort(outputs)) {
    const owner = v.owner;
    if (!owner || !DRAW_OP_NAMES.has(owner.op)) continue;
    const state = owner.inputs[0];
    if (!(state instanceof SharedVariable) || seen.has(state)) continue;
    seen.add(state);
    found.push([state, advanceState(state)]);
  }
  return found;
}

