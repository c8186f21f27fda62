// synk.fn: a compiled function whose inputs are scattered over the workers and whose outputs are
// reduced, with batch / batchS / numSlices / outputSubset; f.local runs it on the controller alone.
import { NDArray } from '../tensor/ndarray.js';
import { SharedVariable } from '../tensor/variable.js';
import * as B from '../build/build.js';
import { CompiledFunction, describeFunction, getDefaultDevice, type FunctionDescription } from '../run/function.js';
import type { ArrayInput, OutputsOf } from '../compile/fn-types.js';
import { Data } from './data.js';
import type { UpdateOp } from './accumulate.js';
import { pieceOf, relativeRows } from './split.js';
import { rowCount } from '../devices/rows.js';
import {
  asInputData, assertNumSlices, checkOutputSubset, checkSlicesFit, resolveBatchS, scatteredSelection, someRankEmpty, splitCallArgs, type CallOptions,
} from './call-args.js';
import { checkSpec, type OutputsSpec, type SynkFnSpec } from './fn-spec.js';
import { callShapeChecker } from './call-shapes.js';
import {
  adoptFromRank0, distribute, fastCall, markUpdatedOnRank0, nodeLayout, registerFunction, requireState, sendDataHandles, sendToRanks, syncForRank0,
  type StepHook,
} from './runtime.js';
import { refuseSharedStateWrite } from './shared-state.js';
import { MAX_RESULT_ENTRIES } from './fast-call.js';
import { fromArrayMsg, type CallMsg, type CallReply, type FunctionSpec, type InputMsg } from './protocol.js';

export type { OutputSpec, OutputsSpec, UpdateSpec, SynkFnSpec } from './fn-spec.js';

/** What a synk function takes for one input: an array of any accepted kind, or a synk.data(). */
export type SynkInput = ArrayInput | Data;
/** Inputs by name, as the only argument: `f({ x: X, y: Y })`. */
export interface NamedInputs { readonly [name: string]: SynkInput }
/** Call options with an outputSubset: the call returns a list of the chosen outputs. */
export type SubsetCallOptions = CallOptions & { readonly outputSubset: readonly number[] };

/**
 * A data-parallel function. Its result follows the spec's outputs: one output gives an NDArray, a
 * list a tuple of NDArrays of the list's length, none an empty list; with outputSubset a list.
 */
export interface SynkFn<O = OutputsSpec> {
  (...args: [...inputs: SynkInput[], options: SubsetCallOptions]): Promise<NDArray[]>;
  (named: NamedInputs, options: SubsetCallOptions): Promise<NDArray[]>;
  (...args: [...inputs: SynkInput[], options: CallOptions]): Promise<OutputsOf<O>>;
  (...inputs: SynkInput[]): Promise<OutputsOf<O>>;
  (named: NamedInputs, options?: CallOptions): Promise<OutputsOf<O>>;
  readonly id: number;
  readonly description: FunctionDescription;
  /** Runs the plain function on the controller alone (the original's as_theano). */
  local(...arrays: ArrayInput[]): OutputsOf<O>;
  /** Makes a Data (shared memory) for each input, in order, from the given arrays (checked like a call's inputs). */
  buildInputs(...arrays: SynkInput[]): Data[];
  /** The optimised program, printed. */
  graph(): string;
}

let nextId = 1;

type CallImpl = (given: readonly unknown[], step: StepHook | undefined) => Promise<NDArray | NDArray[]>;
const implementations = new WeakMap<object, CallImpl>();

/**
 * Calls a synk function and finishes the call, on every rank, with a shared-state training step
 * (shared-step.ts): one dispatch for the gradient, its reduction and the update.
 */
export function callWithStep(f: SynkFn, step: StepHook, given: readonly unknown[]): Promise<NDArray | NDArray[]> {
  const impl = implementations.get(f);
  if (!impl) throw new TypeError('callWithStep: not a synk function');
  return impl(given, step);
}

/**
 * A data-parallel function: inputs are scattered along axis 0 over the workers, `bcastInputs` go
 * whole to each, outputs are combined by their op (`avg` by default), updates apply on every worker.
 * One output gives an NDArray, a list a tuple.
 *
 * @example
 * const x = T.matrix('x');
 * const f = synk.fn({ inputs: [x], outputs: [[x.sum(0), 'sum'], [x.max(), 'max']] });
 * await synk.fork();
 * const [sums, max] = await f([[1, 2], [3, 4]]);
 */
export function fn<const O extends OutputsSpec = undefined>(spec: SynkFnSpec<O>): SynkFn<O> {
  const checked = checkSpec(spec);
  const { inputs, bcast, sliceable, outputs: outs } = checked;
  const label = checked.name ?? 'synk function';
  // Sliceable shareds become hidden trailing inputs: each worker passes its selected rows.
  const sliceVars = sliceable.map((s) => B.tensor({
    dtype: s.dtype, broadcastable: s.broadcastable, ...(s.name !== undefined ? { name: `${s.name}[batchS]` } : {}),
  }));
  const description = describeFunction({
    inputs: [...inputs, ...bcast, ...sliceVars],
    outputs: outs.vars,
    updates: checked.updates,
    givens: [...checked.givens, ...sliceable.map((s, i) => [s, sliceVars[i]!] as const)],
    ...(checked.name !== undefined ? { name: checked.name } : {}),
    precision: checked.precision,
  });
  // Update ops follow the program's update order (same as given).
  // Updates the compiler added (random-stream states) advance identically in every slice: 'max'.
  const updateOps: UpdateOp[] = [...checked.updateOps];
  while (updateOps.length < description.program.updates.length) updateOps.push('max');
  const local = new CompiledFunction(description, getDefaultDevice());
  // Everything that can refuse the spec has run: only now does the function take an id and register.
  const id = nextId++;
  const fspec: FunctionSpec = {
    id, description, nScattered: inputs.length, nBroadcast: bcast.length, sliceableIds: sliceable.map((s) => s.sharedId), outputOps: outs.ops, updateOps,
  };
  const shareds = [...local.shareds, ...sliceable];
  registerFunction({ spec: fspec, shareds });
  const explicit = [...inputs, ...bcast];
  const names = explicit.map((v) => v.name);
  const listed = names.map((n, i) => n ?? `#${i}`).join(', ');
  const updateTargets = description.program.updates.map((u) => shareds.find((s) => s.sharedId === u.sharedId)!).filter((s) => s !== undefined);
  const inputLabel = (i: number) => `input ${i}${explicit[i]!.name !== undefined ? ` '${explicit[i]!.name}'` : ''}`;
  const toData = (a: unknown, i: number, what = inputLabel(i)) => asInputData(a, what, explicit[i]!.dtype, explicit[i]!.broadcastable, i < inputs.length);
  const checkShapes = callShapeChecker(description.program, { nScattered: inputs.length, sliceable, inputLabel });

  const call = (...given: unknown[]): Promise<NDArray | NDArray[]> => callImpl(given, undefined);
  const callImpl: CallImpl = async (given, step) => {
    const state = requireState(label);
    refuseSharedStateWrite(updateTargets, label);
    const { args, options } = splitCallArgs(given, names, label);
    if (args.length !== explicit.length) throw new TypeError(`${label}: expected ${explicit.length} input(s) (${listed}), got ${args.length}`);
    const numSlices = assertNumSlices(options.numSlices);
    if (numSlices > 1 && inputs.length === 0 && sliceable.length === 0) {
      throw new RangeError('numSlices: > 1 needs scattered inputs or sliceable shareds to slice');
    }
    if (options.batchS !== undefined && sliceable.length === 0) throw new TypeError('batchS: this function has no sliceableShareds');
    if (options.batch !== undefined && inputs.length === 0) throw new TypeError('batch: this function has no scattered inputs');
    const subset = checkOutputSubset(options.outputSubset, outs.vars.length);
    const datas = args.map((a, i) => toData(a, i));
    const n = state.pool.size;
    // With many nodes the rows are split over every rank of every node; this node's ranks are firstRank .. firstRank + n - 1.
    const layout = nodeLayout(label);
    const ranks = n * layout.nodeCount;
    const firstRank = n * layout.nodeRank;
    const selection = inputs.length > 0 ? scatteredSelection(datas.slice(0, inputs.length), options.batch) : null;
    if (selection) checkSlicesFit(numSlices, rowCount(selection), 'rows in the batch');
    const allSliceRows = resolveBatchS(options.batchS, ranks);
    const sliceRows = allSliceRows.slice(firstRank, firstRank + n);
    if (inputs.length === 0 && options.batchS !== undefined) {
      checkSlicesFit(numSlices, Math.max(...sliceRows.map((r) => (r ? rowCount(r) : 0))), 'rows selected by batchS on any rank');
    }
    checkShapes(datas, subset);
    await distribute();
    // batchS's rows per rank are known here (null: all a rank holds, unknown); with many nodes every
    // node must agree, and another node's batchS is not known here, so any batchS counts as maybe empty.
    const sliceMaybeEmpty = layout.nodeCount > 1 || allSliceRows.some((r) => r === null || rowCount(r) === 0);
    const empty = selection ? someRankEmpty(rowCount(selection), ranks) : sliceable.length > 0 && sliceMaybeEmpty;
    const sync = syncForRank0(shareds);
    const fastEligible = sync.length === 0 && outs.vars.length + checked.updates.length <= MAX_RESULT_ENTRIES;
    if (fastEligible) {
      await sendDataHandles(datas);
      const dataIds = datas.map((d) => d.id);
      const call = {
        fnId: id, numSlices, someRankEmpty: empty, selection, dataIds, outputSubset: subset ? [...subset] : null,
        sliceRows: options.batchS === undefined || sliceable.length === 0 ? [] : sliceRows,
      };
      const entries = await fastCall(call, step);
      if (entries) {
        const results = entries.map((e) => e.value);
        markUpdatedOnRank0(updateTargets);
        return outs.single && !subset ? results[0]! : results;
      }
    }
    const messages: CallMsg[] = [];
    for (let r = 0; r < n; r++) {
      const inputMsgs: InputMsg[] = datas.map((d, i) => {
        if (i >= inputs.length) return { kind: 'whole', data: d.handle() };
        const rows = d.minibatch ? relativeRows(selection!, ranks, firstRank + r) : pieceOf(selection!, ranks, firstRank + r);
        return { kind: 'rows', data: d.handle(), rows };
      });
      messages.push({
        kind: 'call', fnId: id, inputs: inputMsgs, sliceRows: sliceable.map(() => sliceRows[r] ?? null), numSlices,
        outputSubset: subset ? [...subset] : null, someRankEmpty: empty, sync: r === 0 ? sync : [], ...(step ? { planId: step.planId } : {}),
      });
    }
    step?.prepare();
    const replies = (await sendToRanks(messages)) as CallReply[];
    const first = replies[0]!;
    adoptFromRank0(first.changed);
    const results = (first.outputs ?? []).map(fromArrayMsg);
    return outs.single && !subset ? results[0]! : results;
  };

  const localRun = (...arrays: unknown[]): NDArray | NDArray[] => {
    const sliceValues = sliceable.map((s) => s.getValue({ borrow: true }));
    const result = local.call([...arrays, ...sliceValues]);
    return outs.single ? (Array.isArray(result) ? result[0]! : result) : result;
  };
  const buildInputs = (...arrays: unknown[]): Data[] => {
    if (arrays.length !== explicit.length) {
      throw new TypeError(`buildInputs: the function has ${explicit.length} input(s) (${listed}), got ${arrays.length} array(s)`);
    }
    return arrays.map((a, i) => toData(a, i, `buildInputs ${inputLabel(i)}`));
  };
  const f = Object.assign(call, { id, description, local: localRun, buildInputs, graph: () => local.graph() }) as unknown as SynkFn<O>;
  implementations.set(f, callImpl);
  return f;
}
