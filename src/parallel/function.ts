// synk.fn: a compiled function whose inputs are scattered over the workers and whose outputs are
// reduced, with batch / batchS / numSlices / outputSubset; f.local runs it on the controller alone.
import { NDArray, describe } from '../tensor/ndarray.js';
import { isFloat } from '../tensor/dtype.js';
import { SharedVariable, Variable } from '../tensor/variable.js';
import * as B from '../tensor/build.js';
import { CompiledFunction, describeFunction, getDefaultDevice, type FunctionDescription } from '../compile/function.js';
import type { Givens } from '../compile/build-program.js';
import { Data, data as makeData } from './data.js';
import { isOutputOp, OUTPUT_OPS, UPDATE_OPS, type OutputOp, type UpdateOp } from './accumulate.js';
import { pieceOf, relativeRows, rowCount, type Rows } from './split.js';
import { asInputData, assertNumSlices, isCallOptions, isPlainObject, resolveBatch, resolveBatchS, someRankEmpty, type CallOptions } from './call-args.js';
import { adoptFromRank0, distribute, fastCall, markUpdatedOnRank0, registerFunction, requireState, sendDataHandles, sendToRanks, syncForRank0 } from './runtime.js';
import { MAX_RESULT_ENTRIES } from './fast-call.js';
import { fromArrayMsg, type CallMsg, type CallReply, type FunctionSpec, type InputMsg } from './protocol.js';

/**
 * An output of {@link fn}: a variable (its results averaged over the workers, weighted by their rows) or
 * `[variable, op]` with op one of `avg`, `sum`, `prod`, `max`, `min`, `gather` (concatenated in rank order) or `none`
 * (rank 0's result).
 */
export type OutputSpec = Variable | readonly [Variable, OutputOp];
/**
 * An update of {@link fn}: `[shared, newValue]`, applied on each worker locally, or `[shared, newValue, op]`, where op
 * says how the update accumulates over `numSlices` pieces.
 */
export type UpdateSpec = readonly [SharedVariable, unknown] | readonly [SharedVariable, unknown, UpdateOp];

/** What {@link fn} compiles for the workers. */
export interface SynkFnSpec {
  /** Scattered along axis 0 over the workers. */
  inputs?: readonly Variable[];
  /** Sent whole to every worker. */
  bcastInputs?: readonly Variable[];
  /** One output (the call resolves to one array) or a list; each with its reduce op. */
  outputs?: OutputSpec | readonly OutputSpec[] | null;
  /** New values of shared variables, computed and applied on every worker. */
  updates?: readonly UpdateSpec[];
  /** Replacements of graph variables by other expressions, applied before compiling. */
  givens?: Givens;
  /** Shared variables whose rows `batchS` selects on each worker. */
  sliceableShareds?: readonly SharedVariable[];
  name?: string;
}

let nextId = 1;

/**
 * A data-parallel function, as {@link fn} returns it: `await f(...inputs, options?)` scatters the `inputs` over the
 * workers along axis 0 (plain arrays are copied into shared memory once; {@link Data} is read in place), sends
 * `bcastInputs` whole, runs every worker and reduces the outputs. The options ({@link CallOptions}) select rows
 * (`batch`), split each worker's part into pieces (`numSlices`), pick rows of sliceable shared variables (`batchS`)
 * or compute only some outputs (`outputSubset`).
 */
export type SynkFn = ((...args: unknown[]) => Promise<NDArray | NDArray[]>) & {
  readonly id: number;
  readonly description: FunctionDescription;
  /** Runs the plain function on the controller alone (the original's as_theano). */
  local(...arrays: unknown[]): NDArray | NDArray[];
  /** Makes a Data (shared memory) for each input from the given arrays. */
  buildInputs(...arrays: unknown[]): Data[];
  /** The optimised program each worker runs, one op per line. */
  graph(): string;
};

function normalizeOutputs(outputs: SynkFnSpec['outputs']): { vars: Variable[]; ops: OutputOp[]; single: boolean } {
  if (outputs === undefined || outputs === null) return { vars: [], ops: [], single: false };
  const isPair = (o: unknown): o is readonly [Variable, OutputOp] => Array.isArray(o) && o.length === 2 && o[0] instanceof Variable && typeof o[1] === 'string';
  const single = outputs instanceof Variable || isPair(outputs);
  const list = (single ? [outputs] : outputs) as readonly unknown[];
  const vars: Variable[] = [];
  const ops: OutputOp[] = [];
  list.forEach((o, i) => {
    const [v, op] = o instanceof Variable ? [o, 'avg'] : isPair(o) ? o : [undefined, undefined];
    if (!(v instanceof Variable)) throw new TypeError(`synk.fn: outputs[${i}] must be a variable or [variable, op], got ${describe(o)}`);
    if (!isOutputOp(op)) throw new TypeError(`synk.fn: outputs[${i}] has reduce op ${JSON.stringify(op)}; expected one of ${OUTPUT_OPS.join(', ')}`);
    if (op === 'avg' && !isFloat(v.dtype)) throw new TypeError(`synk.fn: outputs[${i}] (${v.label()}) is not a float, so 'avg' does not apply; use 'sum', 'max', 'min', 'gather' or 'none'`);
    if (op === 'gather' && v.ndim === 0) throw new TypeError(`synk.fn: outputs[${i}] is a scalar; 'gather' concatenates along axis 0 and needs ndim >= 1`);
    vars.push(v);
    ops.push(op);
  });
  return { vars, ops, single };
}

/**
 * Builds a data-parallel function (the original's synk.function): inputs scattered along axis 0 over the workers,
 * outputs reduced, updates applied on each worker. It may be built before or after {@link fork}; it is sent to the
 * workers on first use. `f.local(...)` runs the same function on the controller alone.
 *
 * @example
 * ```ts
 * import * as synk from 'synkhronos';
 * const { T } = synk;
 * const x = T.matrix('x');
 * const y = T.matrix('y');
 * const f = synk.fn({ inputs: [x], bcastInputs: [y], outputs: T.mean(x.dot(y), 0) });
 * await synk.fork({ n: 2 });
 * try {
 *   const xs = [[1, 2], [3, 4], [5, 6]];
 *   const ys = [[1, 0], [0, 1]];
 *   console.log((await f(xs, ys) as synk.T.NDArray).toArray(), (f.local(xs, ys) as synk.T.NDArray).toArray()); // equal
 *   await f(xs, ys, { batch: { start: 0, stop: 2 }, numSlices: 2 });
 * } finally {
 *   await synk.close();
 * }
 * ```
 */
export function fn(spec: SynkFnSpec): SynkFn {
  if (typeof spec !== 'object' || spec === null) throw new TypeError(`synk.fn: expected an options object, got ${describe(spec)}`);
  const inputs = [...(spec.inputs ?? [])];
  const bcast = [...(spec.bcastInputs ?? [])];
  inputs.forEach((v, i) => { if (v instanceof Variable && v.ndim === 0) throw new TypeError(`synk.fn: inputs[${i}] (${v.label()}) is a scalar and cannot be scattered; put it in bcastInputs`); });
  const sliceable = [...(spec.sliceableShareds ?? [])];
  sliceable.forEach((s, i) => {
    if (!(s instanceof SharedVariable)) throw new TypeError(`synk.fn: sliceableShareds[${i}] must be a shared variable, got ${describe(s)}`);
    if (s.ndim === 0) throw new TypeError(`synk.fn: sliceableShareds[${i}] is a scalar and has no rows`);
  });
  const outs = normalizeOutputs(spec.outputs);
  const updateOps: UpdateOp[] = [];
  const updates = (spec.updates ?? []).map((u, i) => {
    if (!Array.isArray(u) || u.length < 2 || u.length > 3) throw new TypeError(`synk.fn: updates[${i}] must be [shared, expr] or [shared, expr, op]`);
    const op = (u[2] ?? 'avg') as UpdateOp;
    if (!(UPDATE_OPS as readonly string[]).includes(op)) throw new TypeError(`synk.fn: updates[${i}] has op ${JSON.stringify(op)}; expected one of ${UPDATE_OPS.join(', ')}`);
    if (op === 'avg' && u[0] instanceof SharedVariable && !isFloat(u[0].dtype)) throw new TypeError(`synk.fn: updates[${i}] targets an integer shared variable; 'avg' does not apply`);
    updateOps.push(op);
    return [u[0], u[1]] as const;
  });
  // Sliceable shareds become hidden trailing inputs: each worker passes its selected rows.
  const sliceVars = sliceable.map((s) => B.tensor({ dtype: s.dtype, broadcastable: s.broadcastable, ...(s.name !== undefined ? { name: `${s.name}[batchS]` } : {}) }));
  const userGivens = spec.givens instanceof Map ? [...spec.givens] : [...(spec.givens ?? [])];
  const description = describeFunction({
    inputs: [...inputs, ...bcast, ...sliceVars],
    outputs: outs.vars,
    updates,
    givens: [...userGivens, ...sliceable.map((s, i) => [s, sliceVars[i]!] as const)],
    ...(spec.name !== undefined ? { name: spec.name } : {}),
  });
  const id = nextId++;
  // Update ops follow the program's update order (same as given).
  // Updates the compiler added (random-stream states) advance identically in every slice: 'max'.
  while (updateOps.length < description.program.updates.length) updateOps.push('max');
  const fspec: FunctionSpec = { id, description, nScattered: inputs.length, nBroadcast: bcast.length, sliceableIds: sliceable.map((s) => s.sharedId), outputOps: outs.ops, updateOps };
  const local = new CompiledFunction(description, getDefaultDevice());
  const shareds = [...local.shareds, ...sliceable];
  registerFunction({ spec: fspec, shareds });
  const names = [...inputs, ...bcast].map((v) => v.name);
  const updateTargets = description.program.updates.map((u) => shareds.find((s) => s.sharedId === u.sharedId)!).filter((s) => s !== undefined);

  const call = async (...args: unknown[]): Promise<NDArray | NDArray[]> => {
    const state = requireState(spec.name ?? 'synk function');
    let options: CallOptions = {};
    if (args.length > 0 && isCallOptions(args[args.length - 1])) options = args.pop() as CallOptions;
    if (args.length === 1 && names.length > 0 && isPlainObject(args[0]) && !(args[0] instanceof Data)) {
      const named = args[0];
      const unknown = Object.keys(named).filter((k) => !names.includes(k));
      if (unknown.length) throw new TypeError(`${spec.name ?? 'synk function'}: unknown input name(s) ${unknown.join(', ')}; inputs are ${names.join(', ')}`);
      args = names.map((n, i) => { if (n === undefined || !(n in named)) throw new TypeError(`${spec.name ?? 'synk function'}: input ${i} ${n ?? ''} missing`); return named[n]; });
    }
    const nExplicit = inputs.length + bcast.length;
    if (args.length !== nExplicit) throw new TypeError(`${spec.name ?? 'synk function'}: expected ${nExplicit} input(s) (${names.map((n, i) => n ?? `#${i}`).join(', ')}), got ${args.length}`);
    const numSlices = assertNumSlices(options.numSlices);
    if (numSlices > 1 && inputs.length === 0 && sliceable.length === 0) throw new RangeError('numSlices: > 1 needs scattered inputs or sliceable shareds to slice');
    if (options.batchS !== undefined && sliceable.length === 0) throw new TypeError('batchS: this function has no sliceableShareds');
    if (options.batch !== undefined && inputs.length === 0) throw new TypeError('batch: this function has no scattered inputs');
    const subset = options.outputSubset;
    if (subset !== undefined) {
      if (!Array.isArray(subset) || subset.some((k) => !Number.isInteger(k) || k < 0 || k >= outs.vars.length) || new Set(subset).size !== subset.length) throw new RangeError(`outputSubset: expected distinct output indices in [0, ${outs.vars.length}), got ${JSON.stringify(subset)}`);
    }
    const datas = args.map((a, i) => {
      const v = [...inputs, ...bcast][i]!;
      return asInputData(a, `input ${i}${v.name !== undefined ? ` '${v.name}'` : ''}`, v.dtype, v.ndim);
    });
    const n = state.pool.size;
    // The selection of rows, applied to every scattered input (minibatch Data is indexed from 0).
    let selection: Rows | null = null;
    if (inputs.length > 0) {
      const full = datas.slice(0, inputs.length).filter((d) => !d.minibatch);
      // With only minibatch Data the whole data set's length is unknown: the batch just has to fit the minibatch.
      const length = full.length ? Math.min(...full.map((d) => d.length)) : Number.MAX_SAFE_INTEGER;
      if (options.batch === undefined && full.some((d) => d.length !== length)) throw new RangeError(`scattered inputs have different lengths (${datas.slice(0, inputs.length).map((d) => d.length).join(', ')}); pass batch to select rows`);
      selection = resolveBatch(options.batch, length);
      const count = rowCount(selection);
      datas.slice(0, inputs.length).forEach((d, i) => { if (d.minibatch && d.length < count) throw new RangeError(`input ${i}: minibatch Data has ${d.length} rows, the batch needs ${count}`); });
    }
    const sliceRows = options.batchS === undefined ? new Array<Rows | null>(n).fill(null) : resolveBatchS(options.batchS, n);
    await distribute();
    const empty = selection ? someRankEmpty(rowCount(selection), n) : sliceable.length > 0 || inputs.length === 0 ? sliceable.length > 0 : false;
    const sync = syncForRank0(shareds);
    const fastEligible = sync.length === 0 && options.batchS === undefined && outs.vars.length + updates.length <= MAX_RESULT_ENTRIES;
    if (fastEligible) {
      await sendDataHandles(datas);
      const entries = await fastCall({ fnId: id, numSlices, someRankEmpty: empty, selection, dataIds: datas.map((d) => d.id), outputSubset: subset ? [...subset] : null });
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
        const rows = d.minibatch ? relativeRows(selection!, n, r) : pieceOf(selection!, n, r);
        return { kind: 'rows', data: d.handle(), rows };
      });
      messages.push({ kind: 'call', fnId: id, inputs: inputMsgs, sliceRows: sliceable.map(() => sliceRows[r] ?? null), numSlices, outputSubset: subset ? [...subset] : null, someRankEmpty: empty, sync: r === 0 ? sync : [] });
    }
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
  return Object.assign(call, {
    id,
    description,
    local: localRun,
    buildInputs: (...arrays: unknown[]) => arrays.map((a, i) => {
      const v = [...inputs, ...bcast][i];
      if (!v) throw new TypeError(`buildInputs: the function has ${nExplicit()} inputs, got ${arrays.length} arrays`);
      return a instanceof Data ? a : makeData(NDArray.from(a, { dtype: v.dtype, what: `buildInputs input ${i}` }), { ...(v.name !== undefined ? { name: v.name } : {}) });
    }),
    graph: () => local.graph(),
  });
  function nExplicit(): number { return inputs.length + bcast.length; }
}
