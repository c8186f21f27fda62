// makeTrainFunction: the original's training recipe as one call. Every rank computes the gradient of
// its rows into ONE flat vector (times its row count), one all-reduce sums the vectors, and every
// rank applies the same update from the same sum, so parameters stay identical on every rank.
import { NDArray, describe } from '../tensor/ndarray.js';
import { isFloat } from '../tensor/dtype.js';
import { SharedVariable, Variable } from '../tensor/variable.js';
import * as B from '../build/build.js';
import { randomUpdatesFor } from '../build/random-streams.js';
import { fn as synkFn, type OutputSpec, type SynkFn, type SynkInput } from '../parallel/function.js';
import type { UpdateSpec } from '../parallel/fn-spec.js';
import { allReduce, broadcast } from '../parallel/collectives.js';
import { distribute, nodeLayout, workersShareHostMemory } from '../parallel/runtime.js';
import { SharedTrainStep, type SharedStepTimings, type SplitChoice } from '../parallel/shared-train.js';
import { FUSED_RULES, type FusedRuleName } from '../parallel/fused-rules.js';
import { Data } from '../parallel/data.js';
import { resolveBatchS, type CallOptions } from '../parallel/call-args.js';
import { rowCount, splitPoints } from '../parallel/split.js';
import type { Givens } from '../compile/build-program.js';
import { checkPrecision, type Precision } from '../compile/precision.js';
import type { UpdateOp } from '../parallel/accumulate.js';
import { checkLoss, checkParams } from './flat-gradient.js';
import { makeOptimizer, type Hyper, type Optimizer, type Rule } from './optimizers.js';
import { ColumnSplit, checkColumnSplit, type ColumnSplitMode } from './column-split.js';

/** Options of {@link makeTrainFunction}; a named rule's hyper-parameters may be given here directly (`{ learningRate: 1e-3 }`). */
export interface TrainOptions {
  /**
   * Updates of model state made while computing the loss (e.g. batch-norm running statistics from
   * Mode.updates). Float ones travel in the flat vector and are averaged over ranks (weighted by
   * rows), so they stay equal on every rank; others (integer) apply on each rank alone.
   */
  updates?: readonly (readonly [SharedVariable, unknown])[];
  /** More outputs of the gradient function (e.g. [accuracy, 'avg']), returned by train.step. */
  outputs?: readonly OutputSpec[];
  bcastInputs?: readonly Variable[];
  /** Shared variables holding data scattered to the ranks, selected by `batchS`. */
  sliceableShareds?: readonly SharedVariable[];
  givens?: Givens;
  /** The rows the loss averages over (default: axis 0 of the first input or sliceable shared). */
  rows?: Variable | number;
  name?: string;
  /** Hyper-parameters of a named rule (learningRate, beta1, ...); they may also be given directly here. */
  hyper?: Readonly<Record<string, Hyper>>;
  /**
   * The precision policy of the gradient (default 'fp32'). 'bf16', as torch.autocast(dtype=torch.bfloat16):
   * matmul and convolutions, forward and backward, multiply bfloat16 operands with float32 sums; the
   * parameters (master weights), optimizer state, gradients and the update stay float32.
   */
  precision?: Precision;
  /**
   * CPU workers' shared-state step: compute weight gradients Aᵀ·G (dense layers) by the column split
   * (every rank publishes its rows of A and G, then computes its own shard of dW over all ranks' rows)
   * instead of a full dW per rank and a reduce. 'auto' (default, or SYNK_COLUMN_SPLIT): by the measured
   * rule in column-split.ts (few rows per rank against the layer's width); 'on' / 'off' force it.
   * The result equals the row split within float rounding either way.
   */
  columnSplit?: ColumnSplitMode;
  [hyper: string]: unknown;
}

/** Options of one training step: which rows (`batch`, `batchS`) and in how many pieces (`numSlices`). */
export interface TrainCallOptions {
  batch?: CallOptions['batch'];
  batchS?: CallOptions['batchS'];
  numSlices?: number;
}

/** What `train.step(...)` resolves to: the loss and the extra outputs (`TrainOptions.outputs`). */
export interface TrainStep {
  loss: number;
  outputs: NDArray[];
}

/**
 * A training step, as {@link makeTrainFunction} returns it: `await train(...inputs, options?)` computes the gradient of
 * the loss on every worker's rows, reduces it with one allReduce and applies the optimizer's update everywhere, and
 * resolves to the loss (averaged over the rows).
 */
export type TrainFunction = ((...args: unknown[]) => Promise<number>) & {
  /** One step, returning the loss and the extra outputs. */
  step(...args: unknown[]): Promise<TrainStep>;
  readonly optimizer: Optimizer;
  readonly hyper: Optimizer['hyper'];
  readonly params: readonly SharedVariable[];
  /**
   * The data-parallel functions of the three-call step: gradient (per rank) and parameter update
   * (per rank). On CPU workers a named rule runs as one shared-state step instead (see
   * {@link makeTrainFunction}); its parameters then live in shared memory and `updateFn` refuses to run.
   */
  readonly gradFn: SynkFn;
  readonly updateFn: SynkFn;
  /** Rank 0's timings of the last shared-state step (null before one ran, or on devices without shared memory). */
  timings(): SharedStepTimings | null;
  /**
   * Sends the controller's changed values of parameters, optimizer state and hyper-parameters to every rank
   * (with one rank they go with its next call, as every call hands rank 0 the controller's changes).
   */
  sync(): Promise<void>;
};

const OWN_KEYS = new Set(['updates', 'outputs', 'bcastInputs', 'sliceableShareds', 'givens', 'rows', 'name', 'hyper', 'precision', 'columnSplit']);
const CALL_KEYS = new Set(['batch', 'batchS', 'numSlices']);

function splitOptions(options: TrainOptions): { own: TrainOptions; hyper: Record<string, Hyper> } {
  if (typeof options !== 'object' || options === null) throw new TypeError(`makeTrainFunction: options must be an object, got ${describe(options)}`);
  const hyper: Record<string, Hyper> = { ...(options.hyper ?? {}) };
  for (const [k, v] of Object.entries(options)) {
    if (OWN_KEYS.has(k)) continue;
    if (typeof v !== 'number' && !(v instanceof SharedVariable))
      throw new TypeError(`makeTrainFunction: option ${k} is not known and is not a hyper-parameter (a number or shared scalar), got ${describe(v)}`);
    hyper[k] = v;
  }
  return { own: options, hyper };
}

/**
 * Builds `train(...data, { batch, batchS, numSlices })`: gradient on every rank, one all-reduce of
 * the flat gradient, the update on every rank; resolves to the loss (row-weighted mean over ranks).
 * `rule` is an optimizer name ('adam', 'sgd', ...) whose hyper-parameters come from options, or a
 * function (params, gradSource) => Optimizer. With numSlices, each rank accumulates the gradient
 * over its slices (memory-bounded big batches); the result equals one device on the whole batch.
 */
export function makeTrainFunction(
  loss: Variable,
  params: readonly SharedVariable[],
  inputs: readonly Variable[],
  rule: Rule,
  options: TrainOptions = {},
): TrainFunction {
  const what = options.name ?? 'makeTrainFunction';
  checkLoss(loss, what);
  checkParams(params, what);
  if (!Array.isArray(inputs)) throw new TypeError(`${what}: inputs must be an array of variables (scattered over the ranks), got ${describe(inputs)}`);
  inputs.forEach((v, i) => {
    if (!(v instanceof Variable)) throw new TypeError(`${what}: inputs[${i}] must be a symbolic variable, got ${describe(v)}`);
  });
  const { own, hyper } = splitOptions(options);
  const precision = checkPrecision(own.precision, `${what}: precision`);
  // Under 'bf16' the compiler rounds the products' operands; the split's GEMM would not, so it stays off.
  const requestedSplit = checkColumnSplit(own.columnSplit, what);
  const splitMode = precision === 'fp32' ? requestedSplit : 'off';
  const sliceable = [...(own.sliceableShareds ?? [])];
  const first = inputs[0] ?? sliceable[0];
  const rows = own.rows ?? (first ? B.shapeOf(first)[0]! : 1);

  const floatStates: [SharedVariable, Variable][] = [];
  const localUpdates: [SharedVariable, unknown, UpdateOp][] = [];
  (own.updates ?? []).forEach((u, i) => {
    const [s, e] = u;
    if (!(s instanceof SharedVariable)) throw new TypeError(`${what}: updates[${i}][0] must be a shared variable, got ${describe(s)}`);
    if (params.includes(s)) throw new TypeError(`${what}: updates[${i}] (${s.label()}) is a parameter; the optimizer updates parameters`);
    if (isFloat(s.dtype) && s.dtype === params[0]!.dtype && e instanceof Variable) floatStates.push([s, e]);
    else localUpdates.push([s, e, isFloat(s.dtype) ? 'avg' : 'max']);
  });
  // Random draws (dropout) advance their generator states on each rank. Given explicitly, with an
  // op, so that numSlices can combine them (every slice advances the same state once: 'max').
  const roots = [loss, ...floatStates.map(([, e]) => e), ...(own.outputs ?? []).map((o) => (o instanceof Variable ? o : o[0]))];
  for (const [s, e] of randomUpdatesFor(roots)) if (!localUpdates.some(([t]) => t === s)) localUpdates.push([s, e, 'max']);

  const optimizer = makeOptimizer(
    rule,
    params,
    { loss, rows, stateUpdates: floatStates, name: own.name ?? (typeof rule === 'string' ? rule : 'train') },
    hyper,
  );
  if (optimizer.params.length !== params.length || optimizer.params.some((p, i) => p !== params[i]))
    throw new TypeError(`${what}: the rule built an optimizer for other parameters than the ones given`);

  // The data-parallel function of the loss over the ranks' rows, with the given updates.
  const lossFn = (updates: readonly UpdateSpec[], name: string): SynkFn => synkFn({
    inputs,
    ...(own.bcastInputs ? { bcastInputs: own.bcastInputs } : {}),
    outputs: [[loss, 'avg'], ...(own.outputs ?? [])],
    updates,
    ...(own.givens ? { givens: own.givens } : {}),
    sliceableShareds: sliceable,
    name: `${what}: ${name}`,
    precision,
  });
  const gradFn = lossFn([...optimizer.gradUpdates, ...localUpdates], 'gradient');
  const updateFn = synkFn({ updates: optimizer.paramUpdates, name: `${what}: update` });
  const zeroFn = synkFn({ updates: [[optimizer.flatGrad, B.zerosLike(optimizer.flatGrad)]], name: `${what}: reset` });

  // One rank on its whole batch (a GPU worker): gradient and update as one program, one dispatch,
  // no flat vector; made on first use. numSlices > 1 accumulates the gradient, so it keeps the flat path.
  let oneProgram: SynkFn | null = null;
  const oneProgramFn = (): SynkFn | null => {
    if (!optimizer.directUpdates) return null;
    oneProgram ??= lossFn([...optimizer.directUpdates, ...localUpdates], 'step');
    return oneProgram;
  };

  const fused = typeof rule === 'string' && rule in FUSED_RULES;
  const columns = fused
    ? new ColumnSplit(optimizer, splitMode, (flat, name) => lossFn([[optimizer.flatGrad, flat, 'sum'], ...localUpdates], name))
    : null;
  const shared = fused ? sharedStepFor(optimizer, gradFn, floatStates.map(([s]) => s), what, columns!) : null;
  let sharedRan = false;

  // Values the controller changed (setValue, setHyper, loading parameters) reach only rank 0 on the
  // next call; these are broadcast to every rank before a step so all ranks stay equal.
  const tracked = [...params, ...optimizer.slots, ...Object.values<SharedVariable>(optimizer.hyper), ...floatStates.map(([s]) => s)];
  const seen = new Map<SharedVariable, number>();
  const record = () => {
    for (const s of tracked) seen.set(s, s.version);
  };
  // Variables new to this fork's workers are sent to every rank with the controller's value now (no
  // second copy by broadcast). One rank needs no broadcast at all: a call hands rank 0 the
  // controller's changes of what it reads (syncForRank0), so a GPU worker's first step does not copy
  // the parameters and optimizer state into messages and out again.
  const sync = async (ranks: number) => {
    if (ranks === 1) return record();
    const fresh = new Set(await distribute(tracked));
    const changed = tracked.filter((s) => seen.get(s) !== s.version && !fresh.has(s));
    if (changed.length) await broadcast(changed);
    record();
  };

  const step = async (...args: unknown[]): Promise<TrainStep> => {
    let call: TrainCallOptions = {};
    const last = args[args.length - 1];
    if (isTrainCallOptions(last)) call = args.pop() as TrainCallOptions;
    // Every rank of every node: the gradient is reduced over all of them.
    const layout = nodeLayout(what);
    const n = layout.localWorkers * layout.nodeCount;
    const perRank = rowsPerRank(args, inputs.length, call, n, what);
    const empty = perRank === null || perRank.some((c) => c === 0);
    // With many nodes the shared-state step sums each node's gradients in its memory, then across nodes (engine.ts).
    if (shared && workersShareHostMemory(what)) {
      // One dispatch: gradient, reduce-scatter and fused update on shared parameters (shared-step.ts).
      const callArgs = Object.keys(call).length ? [...args, { ...call }] : args;
      const split = layout.nodeCount === 1 ? columns!.choose(perRank, call.numSlices ?? 1) : null;
      const result = await runShared(shared, callArgs, split, columns!);
      sharedRan = true;
      record();
      const outs = Array.isArray(result) ? result : [result];
      return { loss: outs[0]!.item(), outputs: outs.slice(1) };
    }
    shared?.release();
    await sync(n);
    const one = n === 1 && (call.numSlices ?? 1) === 1 ? oneProgramFn() : null;
    if (one) {
      const result = await (Object.keys(call).length ? one(...(args as SynkInput[]), { ...call }) : one(...(args as SynkInput[])));
      const outs = Array.isArray(result) ? result : [result];
      record();
      return { loss: outs[0]!.item(), outputs: outs.slice(1) };
    }
    if (empty) await zeroFn();
    const result = await (Object.keys(call).length ? gradFn(...(args as SynkInput[]), { ...call }) : gradFn(...(args as SynkInput[])));
    const outs = Array.isArray(result) ? result : [result];
    if (n > 1) await allReduce(optimizer.flatGrad, { op: 'sum' }); // one rank's vector is already the sum
    await updateFn();
    record();
    return { loss: outs[0]!.item(), outputs: outs.slice(1) };
  };
  const train = async (...args: unknown[]) => (await step(...args)).loss;
  const timings = () => (shared && sharedRan ? shared.timings() : null);
  const syncAll = async () => {
    const layout = nodeLayout(`${what}: sync`);
    await sync(layout.localWorkers * layout.nodeCount);
  };
  return Object.assign(train, { step, optimizer, hyper: optimizer.hyper, params: [...params], gradFn, updateFn, sync: syncAll, timings });
}

/**
 * A shared-state step with `split`; a split whose operands had more rows than the step's rows per
 * rank (a product over other rows than the batch's) failed before any change, so it runs again
 * without, and the function never splits again.
 */
async function runShared(shared: SharedTrainStep, args: readonly unknown[], split: SplitChoice | null, columns: ColumnSplit) {
  if (!split) return shared.run(args);
  try {
    return await shared.run(args, split);
  } catch (e) {
    if (!(e instanceof Error && /column split of weight \d+: \d+ operand rows/.test(e.message))) throw e;
    columns.disabled = true;
    return shared.run(args);
  }
}

/** The shared-state step of a named rule: its optimizer's slots sorted into the fused rule's state vectors. */
function sharedStepFor(optimizer: Optimizer, gradFn: SynkFn, states: readonly SharedVariable[], what: string, columns: ColumnSplit): SharedTrainStep {
  const rule = FUSED_RULES[optimizer.rule as FusedRuleName];
  const counter = rule.counter ? optimizer.slots[0]! : null;
  const vectors = optimizer.slots.slice(rule.counter ? 1 : 0);
  const k = rule.state.length;
  if (vectors.length !== k * optimizer.params.length) throw new Error(`${what}: the ${optimizer.rule} optimizer's slots do not match its fused rule`);
  // The rules create each parameter's state vectors together, parameter by parameter.
  const stateSlots = rule.state.map((_, j) => optimizer.params.map((_p, i) => vectors[i * k + j]!));
  return new SharedTrainStep({
    owner: what, rule: optimizer.rule as FusedRuleName, gradFn, params: optimizer.params, states, stateSlots, counter, hyper: optimizer.hyper,
    splitLayers: columns.layers,
  });
}

function isTrainCallOptions(v: unknown): v is TrainCallOptions {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v) || v instanceof Data || v instanceof NDArray) return false;
  if (Object.getPrototypeOf(v) !== Object.prototype) return false;
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => CALL_KEYS.has(k));
}

function lengthOf(a: unknown): number | undefined {
  if (a instanceof Data || a instanceof NDArray) return a.shape[0];
  if (Array.isArray(a)) return a.length;
  return undefined;
}

/**
 * Each rank's rows this step, or null where the controller cannot tell (a rank with no rows runs
 * nothing and would keep its old flat vector, so then the vector is zeroed first; the column split
 * sizes its operand blocks by the most). Also refuses an empty batch.
 */
function rowsPerRank(args: readonly unknown[], nScattered: number, call: TrainCallOptions, n: number, what: string): number[] | null {
  let count: number | undefined;
  if (nScattered > 0) {
    const b = call.batch;
    if (b === undefined) count = lengthOf(args[0]);
    else if (typeof b === 'number') count = b;
    else if (Array.isArray(b) || b instanceof Int32Array) count = b.length;
    else if (typeof b === 'object' && b !== null) {
      const r = b as { start?: number; stop?: number };
      const stop = r.stop ?? lengthOf(args[0]);
      count = stop === undefined ? undefined : stop - (r.start ?? 0);
    }
    if (count === 0) throw new RangeError(`${what}: the batch is empty; a training step needs at least one row`);
    if (count === undefined || !Number.isInteger(count) || count < 0) return null;
    const points = splitPoints(count, n);
    return points.slice(1).map((p, i) => p - points[i]!);
  }
  if (call.batchS === undefined) return null;
  const counts = resolveBatchS(call.batchS, n).map((r) => (r ? rowCount(r) : 0));
  if (counts.every((c) => c === 0)) throw new RangeError(`${what}: batchS selects no rows; a training step needs at least one row`);
  return counts;
}
