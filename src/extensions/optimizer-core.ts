// The machinery every optimizer shares: checked hyper-parameters held in shared scalars (so a
// schedule changes them with setValue and nothing is rebuilt), per-parameter state slots, and the
// split into a gradient function's update (write the flat gradient) and the parameter update.
import { NDArray, describe } from '../tensor/ndarray.js';
import type { DType } from '../tensor/dtype.js';
import { SharedVariable, Variable } from '../tensor/variable.js';
import * as B from '../build/build.js';
import { grad } from '../grad/grad.js';
import { substitute } from '../compile/build-program.js';
import type { UpdateOp } from '../parallel/accumulate.js';
import { FlatLayout, checkLoss, checkParams } from './flat-gradient.js';

/** A hyper-parameter: a number, or a float scalar shared variable (then schedules can change it without rebuilding). */
export type Hyper = number | SharedVariable;
/** A shared variable and the expression of its new value. */
export type UpdatePair = [SharedVariable, Variable];

/** Where the gradient comes from, and what else travels in the flat vector. */
export interface GradSource {
  /** The loss to differentiate (a float scalar) ... */
  loss?: Variable;
  /** ... or the gradients themselves, one per parameter. */
  grads?: readonly Variable[];
  /**
   * The number of rows the loss averages over on one rank (e.g. the batch's x.shape[0]); gradients
   * are stored times this count so the reduced flat vector gives the row-weighted mean. Default 1
   * (every rank weighs the same).
   */
  rows?: Variable | number;
  /** Float state (e.g. batch-norm running statistics) whose new values are averaged over ranks. */
  stateUpdates?: readonly (readonly [SharedVariable, Variable])[];
  /** Prefix of the names of the shared variables made here. */
  name?: string;
}

/** The optimizers by name (Lasagne's rules, plus AdamW). */
export type RuleName = 'sgd' | 'momentum' | 'nesterovMomentum' | 'adagrad' | 'rmsprop' | 'adadelta' | 'adam' | 'adamax' | 'adamw';

/**
 * An optimizer built over one flat gradient vector: the updates that write the gradient (on every worker), the updates
 * that apply it to the parameters, and its hyper-parameters and state as shared variables.
 */
export interface Optimizer<H extends string = string> {
  readonly rule: RuleName;
  readonly params: readonly SharedVariable[];
  readonly layout: FlatLayout;
  /** The one flat gradient vector (length layout.length: gradients, states, row count). */
  readonly flatGrad: SharedVariable;
  /** Updates for the gradient function: one, writing the flat vector (op 'sum' over slices). */
  readonly gradUpdates: [SharedVariable, Variable, UpdateOp][];
  /**
   * The flat vector's expression with the given parameters' gradients left out and their operands
   * appended (FlatLayout.pack's `split`); what a column-split step's gradient function writes.
   */
  readonly packSplit?: (split: ReadonlyMap<number, readonly [Variable, Variable]>) => Variable;
  /** Each parameter's gradient of one rank's loss (what the flat vector packs, times the rows). */
  readonly rankGrads?: readonly Variable[];
  /** Updates for the parameter-update function, reading the reduced flat vector. */
  readonly paramUpdates: UpdatePair[];
  /**
   * The same updates computed straight from the gradients, with no flat vector: what one rank on its
   * whole batch runs as one program (gradient and update in one call, nothing to reduce).
   */
  readonly directUpdates?: UpdatePair[];
  /** The hyper-parameters as shared float scalars. */
  readonly hyper: Readonly<Record<H, SharedVariable>>;
  /** Optimizer state (velocities, moments, step counter), zero at the start. */
  readonly slots: readonly SharedVariable[];
  /** Sets a hyper-parameter after checking it (same rule as at build time). */
  setHyper(name: H, value: number): void;
  /** Zeros every slot (the step counter too). */
  resetState(): void;
}

/** The default and the check of one hyper-parameter of a rule. */
export interface HyperRule {
  /** undefined: required. */
  readonly default: number | undefined;
  readonly check: 'positive' | 'nonNegative' | 'unit';
}

function checkValue(rule: string, name: string, v: number, check: HyperRule['check']): void {
  const ok = Number.isFinite(v) && (check === 'positive' ? v > 0 : check === 'nonNegative' ? v >= 0 : v >= 0 && v < 1);
  if (!ok) {
    const want = check === 'positive' ? 'a positive number' : check === 'nonNegative' ? 'a non-negative number' : 'a number in [0, 1)';
    throw new RangeError(`${rule}: ${name} must be ${want}, got ${v}`);
  }
}

function makeHyper(rule: RuleName, name: string, given: unknown, spec: HyperRule, dtype: DType, prefix: string): SharedVariable {
  if (given instanceof SharedVariable) {
    if (given.ndim !== 0 || (given.dtype !== 'float32' && given.dtype !== 'float64'))
      throw new TypeError(`${rule}: ${name} must be a float scalar shared variable, got ${given.label()}`);
    checkValue(rule, name, given.getValue({ borrow: true }).item(), spec.check);
    return given;
  }
  const value = given === undefined ? spec.default : given;
  if (value === undefined) throw new TypeError(`${rule}: ${name} is required (e.g. { ${name}: 0.01 })`);
  if (typeof value !== 'number') throw new TypeError(`${rule}: ${name} must be a number or a shared scalar, got ${describe(value)}`);
  checkValue(rule, name, value, spec.check);
  return new SharedVariable(NDArray.scalar(value, dtype), { name: `${prefix}.${name}` });
}

/** What a rule's body gets for building the parameter updates. */
export interface RuleBody<H extends string> {
  readonly params: readonly SharedVariable[];
  /** Mean gradients read from the reduced flat vector, one per parameter. */
  readonly grads: readonly Variable[];
  readonly hyper: Readonly<Record<H, SharedVariable>>;
  /** A new zero state like `p` (a velocity, a moment). */
  slot(p: SharedVariable, name: string): SharedVariable;
  /** A new zero scalar state (the step counter). */
  scalarSlot(name: string): SharedVariable;
}

function checkGradSource(
  rule: RuleName,
  params: SharedVariable[],
  source: GradSource,
): { grads: Variable[]; states: SharedVariable[]; stateValues: Variable[] } {
  if (typeof source !== 'object' || source === null) throw new TypeError(`${rule}: expected options with a loss or grads, got ${describe(source)}`);
  if ((source.loss === undefined) === (source.grads === undefined)) throw new TypeError(`${rule}: give exactly one of options.loss or options.grads`);
  let grads: Variable[];
  if (source.grads !== undefined) {
    if (!Array.isArray(source.grads) || source.grads.length !== params.length)
      throw new TypeError(
        `${rule}: ${Array.isArray(source.grads) ? source.grads.length : describe(source.grads)} gradients given for ${params.length} parameters; ` +
          `the lists must match one to one`,
      );
    grads = source.grads.map((g, i) => {
      if (!(g instanceof Variable)) throw new TypeError(`${rule}: grads[${i}] must be a symbolic variable, got ${describe(g)}`);
      if (g.ndim !== params[i]!.ndim) throw new TypeError(`${rule}: grads[${i}] (${g.label()}) does not match params[${i}] (${params[i]!.label()})`);
      return g;
    });
  } else {
    grads = grad(checkLoss(source.loss, rule), params);
  }
  const states: SharedVariable[] = [];
  const stateValues: Variable[] = [];
  (source.stateUpdates ?? []).forEach((u, i) => {
    const [s, v] = u;
    if (!(s instanceof SharedVariable) || !(v instanceof Variable)) throw new TypeError(`${rule}: stateUpdates[${i}] must be [shared variable, expression]`);
    if (params.includes(s)) throw new TypeError(`${rule}: stateUpdates[${i}] (${s.label()}) is also a parameter`);
    if (s.dtype !== params[0]!.dtype) throw new TypeError(`${rule}: stateUpdates[${i}] (${s.label()}) must have the parameters' dtype ${params[0]!.dtype}`);
    if (states.includes(s)) throw new TypeError(`${rule}: stateUpdates[${i}] (${s.label()}) is updated twice`);
    states.push(s);
    stateValues.push(v);
  });
  return { grads, states, stateValues };
}

/** Builds an optimizer from a rule's hyper-parameter table and body. */
export function buildOptimizer<H extends string>(
  rule: RuleName,
  paramsIn: unknown,
  options: GradSource & Partial<Record<H, Hyper>>,
  table: Readonly<Record<H, HyperRule>>,
  body: (b: RuleBody<H>) => UpdatePair[],
): Optimizer<H> {
  const params = checkParams(paramsIn, rule);
  const { grads, states, stateValues } = checkGradSource(rule, params, options);
  const dtype = params[0]!.dtype;
  const prefix = options.name ?? rule;
  const known = new Set(['loss', 'grads', 'rows', 'stateUpdates', 'name', ...Object.keys(table)]);
  const unknown = Object.keys(options).filter((k) => !known.has(k));
  if (unknown.length) throw new TypeError(`${rule}: unknown option(s) ${unknown.join(', ')}; hyper-parameters are ${Object.keys(table).join(', ')}`);
  const hyper = {} as Record<H, SharedVariable>;
  for (const name of Object.keys(table) as H[]) hyper[name] = makeHyper(rule, name, (options as Record<string, unknown>)[name], table[name], dtype, prefix);
  const layout = new FlatLayout(params, states, rule);
  const flatGrad = layout.makeShared(`${prefix}.flatGrad`);
  const slots: SharedVariable[] = [];
  const slot = (p: SharedVariable, name: string) => {
    const s = new SharedVariable(new NDArray(p.dtype, p.getValue({ borrow: true }).shape), {
      name: `${prefix}.${name}.${p.name ?? p.sharedId}`,
      broadcastable: p.broadcastable,
    });
    slots.push(s);
    return s;
  };
  const scalarSlot = (name: string) => {
    const s = new SharedVariable(NDArray.scalar(0, dtype), { name: `${prefix}.${name}` });
    slots.push(s);
    return s;
  };
  const meanGrads = layout.gradients(flatGrad);
  const paramUpdates = body({ params, grads: meanGrads, hyper, slot, scalarSlot }).map(([s, e]): UpdatePair => [
    s,
    e.dtype === s.dtype ? e : B.cast(e, s.dtype),
  ]);
  // One rank's gradient of its mean loss is already the mean gradient: substituting it for the
  // flat vector's unpacked parts gives the update without packing, reducing or unpacking anything.
  const meanGrad = (g: Variable): Variable => (g.dtype === dtype ? g : B.cast(g, dtype));
  const fromFlat = new Map<Variable, Variable>(meanGrads.map((g, i) => [g, meanGrad(grads[i]!)]));
  const direct = substitute(paramUpdates.map(([, e]) => e), fromFlat);
  const directUpdates = paramUpdates.map(([s], i): UpdatePair => [s, direct[i]!]);
  stateValues.forEach((v, i) => directUpdates.push([states[i]!, v.dtype === states[i]!.dtype ? v : B.cast(v, states[i]!.dtype)]));
  layout.stateValues(flatGrad).forEach((v, i) => paramUpdates.push([states[i]!, v]));
  const rows = options.rows ?? 1;
  return {
    rule,
    params,
    layout,
    flatGrad,
    gradUpdates: [[flatGrad, layout.pack(flatGrad, grads, stateValues, rows), 'sum']],
    packSplit: (split) => layout.pack(flatGrad, grads, stateValues, rows, split),
    rankGrads: grads,
    paramUpdates,
    directUpdates,
    hyper,
    slots,
    setHyper(name: H, value: number) {
      const spec = table[name];
      if (!spec) throw new TypeError(`${rule}: no hyper-parameter ${String(name)}; there are ${Object.keys(table).join(', ')}`);
      checkValue(rule, name, value, spec.check);
      hyper[name].setValue(NDArray.scalar(value, hyper[name].dtype));
    },
    resetState() {
      for (const s of slots) s.setValue(new NDArray(s.dtype, s.getValue({ borrow: true }).shape));
    },
  };
}
