// Collectives on shared variables, controller side: synk.broadcast(vars), synk.allReduce(vars), ...
// Each takes one shared variable or a list; values for the controller come back as NDArrays.
// Every argument (each variable, each value, each option) is checked before anything changes.
import { NDArray, describe, shapeToString } from '../tensor/ndarray.js';
import { isFloat } from '../tensor/dtype.js';
import { conformValue } from '../tensor/conform.js';
import { SharedVariable } from '../tensor/variable.js';
import type { ArrayInput } from '../compile/fn-types.js';
import { assertReduceOp, type ReduceOp } from '../comm/reduce-ops.js';
import { concatRows } from './accumulate.js';
import { splitPoints } from './split.js';
import { takeHostRows } from '../devices/rows.js';
import { checkBoolean, checkOptions } from './call-args.js';
import { adoptFromRank0, distribute, forkJob, nodeLayout, requireState, sendToRanks, syncForRank0 } from './runtime.js';
import { allGatherArrays } from './nodes.js';
import { commitSharedState, isHeldInSharedMemory, refuseSharedStateWrite } from './shared-state.js';
import { fromArrayMsg, toArrayMsg, type ArrayMsg, type CollectiveKind, type CollectiveMsg, type CollectiveReply } from './protocol.js';

type Vars = SharedVariable | readonly SharedVariable[];
/** For one variable its value; for a list, one value per variable. */
type Values = ArrayInput | readonly ArrayInput[];

export interface CastOptions {
  /** Convert values even when that loses information (down-casts, float to integer); default false. */
  forceCast?: boolean;
}

function asList(vars: Vars, what: string): SharedVariable[] {
  const list = vars instanceof SharedVariable ? [vars] : Array.isArray(vars) ? [...(vars as readonly unknown[])] : null;
  if (!list || list.length === 0) throw new TypeError(`${what}: expected a shared variable or a non-empty list of them, got ${describe(vars)}`);
  list.forEach((v, i) => {
    if (!(v instanceof SharedVariable)) throw new TypeError(`${what}: item ${i} is not a shared variable (got ${describe(v)})`);
    const first = list.indexOf(v);
    if (first !== i) throw new TypeError(`${what}: item ${i} is the same shared variable as item ${first} (${v.label()})`);
  });
  return list as SharedVariable[];
}

/** One value per variable: a single variable takes the value itself, a list takes a list. */
function valueList(vars: Vars, values: unknown, n: number, what: string): unknown[] {
  if (vars instanceof SharedVariable) return [values];
  if (!Array.isArray(values) || values.length !== n) throw new TypeError(`${what}: expected ${n} values (one per variable), got ${describe(values)}`);
  return values;
}

function castOption(options: unknown, what: string): boolean {
  return checkBoolean(checkOptions(options, ['forceCast'], `${what} options`)['forceCast'], `${what} options.forceCast`) === true;
}

/** The one cast rule (tensor/conform.ts), then the variable's ndim and broadcastable axes. */
function conform(v: SharedVariable, value: unknown, what: string, forceCast: boolean): NDArray {
  const a = conformValue(value, v.dtype, { what, forceCast });
  if (a.ndim !== v.ndim) throw new TypeError(`${what}: expected ndim ${v.ndim} for ${v.label()}, got shape ${shapeToString(a.shape)}`);
  v.broadcastable.forEach((b, ax) => {
    if (b && a.shape[ax] !== 1) {
      throw new TypeError(`${what}: axis ${ax} of ${v.label()} is broadcastable and must have size 1, got shape ${shapeToString(a.shape)}`);
    }
  });
  return a;
}

/** Every value checked (and converted) before the caller changes anything. */
function conformAll(vars: Vars, list: readonly SharedVariable[], values: unknown, what: string, forceCast: boolean): NDArray[] {
  return valueList(vars, values, list.length, `${what} values`).map((v, i) => conform(list[i]!, v, `${what} values[${i}]`, forceCast));
}

type Reply = CollectiveReply & { shapes?: number[][] };

async function run(op: CollectiveKind, list: SharedVariable[], perRank: (r: number) => Partial<CollectiveMsg>): Promise<Reply[]> {
  const state = requireState(op);
  await distribute(list);
  const sync = syncForRank0(list);
  const messages: CollectiveMsg[] = [];
  const sharedIds = list.map((v) => v.sharedId);
  for (let r = 0; r < state.pool.size; r++) messages.push({ kind: 'collective', op, sharedIds, sync: r === 0 ? sync : [], ...perRank(r) });
  const replies = (await sendToRanks(messages)) as Reply[];
  adoptFromRank0(replies[0]!.changed);
  return replies;
}

/** Copies the controller's values (or the given ones, which become the controller's too) to every worker. */
export async function broadcast(vars: Vars, values?: Values, options?: CastOptions): Promise<void> {
  const list = asList(vars, 'broadcast');
  const forceCast = castOption(options, 'broadcast');
  const given = values === undefined ? null : conformAll(vars, list, values, 'broadcast', forceCast);
  requireState('broadcast');
  // Each value passed the variable's own checks above, so none of these can fail half-way.
  given?.forEach((g, i) => list[i]!.setValue(g));
  // With many nodes, node 0's controller values go to every node's controller first.
  const job = forkJob('broadcast');
  if (job) {
    const fromNode0 = (await allGatherArrays(job, job.mpi.rank === 0 ? list.map((v) => v.getValue({ borrow: true })) : []))[0]!;
    if (job.mpi.rank !== 0) fromNode0.forEach((value, i) => list[i]!.setValue(value));
  }
  // State held in shared memory has one copy for every rank: the controller's value goes into it.
  for (const v of list) commitSharedState(v);
  const copied = list.filter((v) => !isHeldInSharedMemory(v));
  if (copied.length === 0) return;
  const msgs: ArrayMsg[] = copied.map((v) => toArrayMsg(v.getValue({ borrow: true })));
  await run('broadcast', copied, () => ({ values: msgs }));
}

/** Splits each value along axis 0 as evenly as possible; rank r gets part r. */
export async function scatter(vars: Vars, values: Values, options?: CastOptions): Promise<void> {
  const list = asList(vars, 'scatter');
  refuseSharedStateWrite(list, 'scatter');
  const arrays = conformAll(vars, list, values, 'scatter', castOption(options, 'scatter'));
  arrays.forEach((a, i) => { if (a.ndim === 0) throw new TypeError(`scatter values[${i}]: a scalar cannot be split along axis 0`); });
  const { nodeRank, nodeCount, localWorkers: n } = nodeLayout('scatter');
  // Split over every rank of every node; this node's workers take parts first .. first + n - 1.
  const first = nodeRank * n;
  const parts = arrays.map((a) => {
    const p = splitPoints(a.shape[0]!, n * nodeCount);
    return Array.from({ length: n }, (_, r) => toArrayMsg(takeHostRows(a, { kind: 'range', start: p[first + r]!, stop: p[first + r + 1]! }, 'scatter')));
  });
  await run('scatter', list, (r) => ({ values: parts.map((p) => p[r]!) }));
}

/** Every rank's value, stacked along a new axis 0 (ndUp 1, shapes must match) or concatenated (ndUp 0). */
export async function gather(vars: Vars, options?: { ndUp?: 0 | 1 }): Promise<NDArray | NDArray[]> {
  const list = asList(vars, 'gather');
  const ndUp = checkOptions(options, ['ndUp'], 'gather options')['ndUp'] ?? 1;
  if (ndUp !== 0 && ndUp !== 1) throw new RangeError(`gather options.ndUp: expected 0 or 1, got ${describe(ndUp)}`);
  const replies = await run('gather', list, () => ({}));
  const perRank = await acrossNodes('gather', list.map((_, i) => replies.map((rep) => fromArrayMsg(rep.values[i]!))));
  const out = list.map((v, i) => {
    const parts = perRank[i]!;
    if (ndUp === 0) return concatRows(parts, `gather of ${v.label()}`);
    const first = parts[0]!;
    parts.forEach((p, r) => {
      if (shapeToString(p.shape) === shapeToString(first.shape)) return;
      throw new RangeError(`gather of ${v.label()}: rank ${r} has shape ${shapeToString(p.shape)}, rank 0 has ${shapeToString(first.shape)}; `
        + 'stacking needs equal shapes (use ndUp: 0 to concatenate)');
    });
    return concatRows(parts.map((p) => p.reshape([1, ...p.shape])), `gather of ${v.label()}`);
  });
  return vars instanceof SharedVariable ? out[0]! : out;
}

/** Every rank's value becomes the concatenation (along axis 0) of all ranks' values. */
export async function allGather(vars: Vars): Promise<void> {
  const list = asList(vars, 'allGather');
  refuseSharedStateWrite(list, 'allGather');
  list.forEach((v) => { if (v.ndim === 0) throw new TypeError(`allGather: ${v.label()} is a scalar; gather it with synk.gather`); });
  await run('allGather', list, () => ({}));
}

/**
 * With many nodes, every node's per-rank values (values[var][local rank]) become every rank's of
 * every node (values[var][global rank]); on one node they are returned as they are.
 */
async function acrossNodes(what: string, values: NDArray[][]): Promise<NDArray[][]> {
  const job = forkJob(what);
  if (!job) return values;
  const nodes = await allGatherArrays(job, values.flat());
  const n = values[0]?.length ?? 0;
  return values.map((_, i) => nodes.flatMap((arrays) => arrays.slice(i * n, (i + 1) * n)));
}

function checkOp(op: unknown, list: SharedVariable[], what: string): ReduceOp {
  const checked = assertReduceOp(op ?? 'avg', `${what} options.op`);
  if (checked === 'avg') {
    list.forEach((v) => { if (!isFloat(v.dtype)) throw new TypeError(`${what}: 'avg' needs float variables, ${v.label()} is ${v.dtype}`); });
  }
  return checked;
}

/** Combines all ranks' values into rank 0 (the controller's copy, when inPlace) and returns the result. */
export async function reduce(vars: Vars, options?: { op?: ReduceOp; inPlace?: boolean }): Promise<NDArray | NDArray[]> {
  const list = asList(vars, 'reduce');
  const o = checkOptions(options, ['op', 'inPlace'], 'reduce options');
  const reduceOp = checkOp(o['op'], list, 'reduce');
  const inPlace = checkBoolean(o['inPlace'], 'reduce options.inPlace') ?? true;
  if (inPlace) refuseSharedStateWrite(list, 'reduce (inPlace)');
  const replies = await run('reduce', list, () => ({ reduceOp, inPlace }));
  const out = replies[0]!.values.map((m) => fromArrayMsg(m!).copy());
  return vars instanceof SharedVariable ? out[0]! : out;
}

/** Combines all ranks' values; every rank (and the controller) gets the result. */
export async function allReduce(vars: Vars, options?: { op?: ReduceOp }): Promise<void> {
  const list = asList(vars, 'allReduce');
  refuseSharedStateWrite(list, 'allReduce');
  const reduceOp = checkOp(checkOptions(options, ['op'], 'allReduce options')['op'], list, 'allReduce');
  await run('allReduce', list, () => ({ reduceOp }));
}

/** A rank of every node's workers (global rank = node * workers per node + local rank). */
function checkRank(rank: unknown, what: string): number {
  const { localWorkers, nodeCount } = nodeLayout(what);
  const n = localWorkers * nodeCount;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 0 || rank >= n) {
    throw new RangeError(`${what}: rank must be an integer in [0, ${n}), got ${describe(rank)}`);
  }
  return rank;
}

/** Sets the values on one rank only (rank 0's is also the controller's). */
export async function setValue(rank: number, vars: Vars, values: Values, options?: CastOptions): Promise<void> {
  const r0 = checkRank(rank, 'setValue');
  const list = asList(vars, 'setValue');
  refuseSharedStateWrite(list, `setValue(rank ${r0})`);
  const arrays = conformAll(vars, list, values, 'setValue', castOption(options, 'setValue'));
  const msgs = arrays.map(toArrayMsg);
  // Every node runs the call (same steps everywhere); only the node holding global rank r0 sets a value.
  const { localWorkers, nodeRank } = nodeLayout('setValue');
  const local = r0 - nodeRank * localWorkers;
  await run('setValue', list, (r) => ({ values: r === local ? msgs : list.map(() => null) }));
}

/** The values held by one rank. */
export async function getValue(rank: number, vars: Vars): Promise<NDArray | NDArray[]> {
  const r0 = checkRank(rank, 'getValue');
  const list = asList(vars, 'getValue');
  const marker = toArrayMsg(NDArray.scalar(1));
  const { localWorkers, nodeRank } = nodeLayout('getValue');
  const local = r0 - nodeRank * localWorkers;
  const owner = Math.floor(r0 / localWorkers);
  const replies = await run('getValue', list, (r) => ({ values: r === local ? [marker] : [] }));
  let out = owner === nodeRank ? replies[local]!.values.map((m) => fromArrayMsg(m!).copy()) : [];
  const job = forkJob('getValue');
  if (job) out = (await allGatherArrays(job, out))[owner]!; // the owning node's values reach every node
  return vars instanceof SharedVariable ? out[0]! : out;
}

/** Each rank's shape of each variable: shapes[var][rank]. */
export async function getShapes(vars: Vars): Promise<number[][] | number[][][]> {
  const list = asList(vars, 'getShapes');
  const replies = await run('getShapes', list, () => ({}));
  const local = list.map((_, i) => replies.map((rep) => new NDArray('float64', [rep.shapes![i]!.length], Float64Array.from(rep.shapes![i]!))));
  const out = (await acrossNodes('getShapes', local)).map((ranks) => ranks.map((a) => Array.from(a.data as Float64Array)));
  return vars instanceof SharedVariable ? out[0]! : out;
}

/** Each rank's length (axis 0) of each variable: lengths[var][rank]. */
export async function getLengths(vars: Vars): Promise<number[] | number[][]> {
  const shapes = await getShapes(vars);
  const lengths = (s: number[][]) => s.map((shape) => shape[0] ?? 1);
  return vars instanceof SharedVariable ? lengths(shapes as number[][]) : (shapes as number[][][]).map(lengths);
}
