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
import { adoptFromRank0, distribute, requireState, sendToRanks, syncForRank0 } from './runtime.js';
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
  const n = requireState('scatter').pool.size;
  const parts = arrays.map((a) => {
    const p = splitPoints(a.shape[0]!, n);
    return Array.from({ length: n }, (_, r) => toArrayMsg(takeHostRows(a, { kind: 'range', start: p[r]!, stop: p[r + 1]! }, 'scatter')));
  });
  await run('scatter', list, (r) => ({ values: parts.map((p) => p[r]!) }));
}

/** Every rank's value, stacked along a new axis 0 (ndUp 1, shapes must match) or concatenated (ndUp 0). */
export async function gather(vars: Vars, options?: { ndUp?: 0 | 1 }): Promise<NDArray | NDArray[]> {
  const list = asList(vars, 'gather');
  const ndUp = checkOptions(options, ['ndUp'], 'gather options')['ndUp'] ?? 1;
  if (ndUp !== 0 && ndUp !== 1) throw new RangeError(`gather options.ndUp: expected 0 or 1, got ${describe(ndUp)}`);
  const replies = await run('gather', list, () => ({}));
  const out = list.map((v, i) => {
    const parts = replies.map((rep) => fromArrayMsg(rep.values[i]!));
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

function checkRank(rank: unknown, what: string): number {
  const n = requireState(what).pool.size;
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
  await run('setValue', list, (r) => ({ values: r === r0 ? msgs : list.map(() => null) }));
}

/** The values held by one rank. */
export async function getValue(rank: number, vars: Vars): Promise<NDArray | NDArray[]> {
  const r0 = checkRank(rank, 'getValue');
  const list = asList(vars, 'getValue');
  const marker = toArrayMsg(NDArray.scalar(1));
  const replies = await run('getValue', list, (r) => ({ values: r === r0 ? [marker] : [] }));
  const out = replies[r0]!.values.map((m) => fromArrayMsg(m!).copy());
  return vars instanceof SharedVariable ? out[0]! : out;
}

/** Each rank's shape of each variable: shapes[var][rank]. */
export async function getShapes(vars: Vars): Promise<number[][] | number[][][]> {
  const list = asList(vars, 'getShapes');
  const replies = await run('getShapes', list, () => ({}));
  const out = list.map((_, i) => replies.map((rep) => rep.shapes![i]!));
  return vars instanceof SharedVariable ? out[0]! : out;
}

/** Each rank's length (axis 0) of each variable: lengths[var][rank]. */
export async function getLengths(vars: Vars): Promise<number[] | number[][]> {
  const shapes = await getShapes(vars);
  const lengths = (s: number[][]) => s.map((shape) => shape[0] ?? 1);
  return vars instanceof SharedVariable ? lengths(shapes as number[][]) : (shapes as number[][][]).map(lengths);
}
