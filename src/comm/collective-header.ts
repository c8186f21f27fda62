// The header every rank exchanges before a collective's data moves, for every transport that
// checks agreement itself (shared memory, MPI): which collective, its sequence number, and the
// arguments all ranks must agree on. A rank's bad argument is held back until every rank has
// arrived, so all of them fail at the same collective instead of some hanging in it; ranks that
// call different collectives, or the same one with other roots, dtypes, lengths or ops, get a
// CommMismatchError on every rank, never a hang.
import { type DType, DTYPES } from '../tensor/dtype.js';
import { type CollectiveName, COLLECTIVES, CommAbortedError, CommMismatchError, assertRoot, assertTimeout } from './communicator.js';
import { type ReduceOp, reduceOpCode } from './reduce-ops.js';

/** What this rank passes to a collective, as far as the others must agree on it. */
export interface CollectiveArgs {
  dtype?: DType;
  length?: number;
  root?: number;
  op?: ReduceOp;
}

/** One rank's header, decoded. */
export interface CollectiveHeader {
  seq: number;
  kind: number;
  dtype: number;
  length: number;
  root: number;
  op: number;
  status: number;
}

/** 32-bit words per rank in a header: seq, collective, dtype, length, root, op, argument status. */
export const HEADER_WORDS = 7;

/**
 * Checks a collective's options and this rank's arguments (`check` returns them). A failure is
 * returned as `error`, not thrown: the rank still writes its header (marked invalid) and meets the
 * others, and every rank raises at the same collective.
 */
export function checkCall(
  kind: CollectiveName, options: unknown, check: () => CollectiveArgs, size: number, maxElements: number, defaultTimeoutMs: number,
): { timeoutMs: number; args: CollectiveArgs; error: unknown } {
  let timeoutMs = defaultTimeoutMs;
  let args: CollectiveArgs = {};
  try {
    if (options === null || typeof options !== 'object') throw new TypeError(`${kind} options: expected an object, got ${String(options)}`);
    const t = (options as { timeoutMs?: unknown }).timeoutMs;
    if (t !== undefined) timeoutMs = assertTimeout(t, `${kind} options.timeoutMs`);
    args = check();
    if (args.root !== undefined) assertRoot(args.root, size, `${kind} options.root`);
    if (args.length !== undefined && args.length > maxElements) throw new RangeError(`${kind}: at most ${maxElements} elements, got ${args.length}`);
  } catch (e) {
    return { timeoutMs, args, error: e };
  }
  return { timeoutMs, args, error: null };
}

/** This rank's header words (`invalid`: its arguments failed `checkCall`). */
export function headerWords(seq: number, kind: CollectiveName, args: CollectiveArgs, invalid: boolean): number[] {
  return [
    seq, COLLECTIVES.indexOf(kind) + 1, args.dtype === undefined ? 0 : DTYPES.indexOf(args.dtype) + 1,
    args.length ?? 0, args.root ?? 0, args.op ? reduceOpCode(args.op) : 0, invalid ? 1 : 0,
  ];
}

/** Rank r's header from the words of every rank (HEADER_WORDS each, from `base`). */
export function decodeHeader(words: ArrayLike<number>, base: number): CollectiveHeader {
  const w = (i: number): number => words[base + i]!;
  return { seq: w(0), kind: w(1), dtype: w(2), length: w(3), root: w(4), op: w(5), status: w(6) };
}

/**
 * Throws, on every rank alike, where the headers disagree: another collective or sequence number
 * (CommMismatchError), a rank's invalid arguments (that rank throws its own `error`, the others
 * CommAbortedError naming it), or another root. Returns the agreed root. `label` names the
 * collective in messages (e.g. "collective #3", "MPI collective #3").
 */
export function agreeOnCall(headers: readonly CollectiveHeader[], rank: number, kind: CollectiveName, label: string, error: unknown): number {
  const me = headers[rank]!;
  const odd = headers.findIndex((x) => x.seq !== me.seq || x.kind !== me.kind);
  if (odd >= 0) {
    const other = headers[odd]!;
    const name = (k: number): string => COLLECTIVES[k - 1] ?? 'nothing';
    throw new CommMismatchError(
      `${label}: rank ${rank} called ${kind} but rank ${odd} called ${name(other.kind)} (as its #${other.seq}); `
        + 'every rank must call the same collectives in the same order',
    );
  }
  if (error) throw error;
  const bad = headers.findIndex((x) => x.status !== 0);
  if (bad >= 0) throw new CommAbortedError(`${kind} (${label}): rank ${rank} stops because rank ${bad} passed invalid arguments (see its error)`);
  const root = headers[0]!.root;
  const otherRoot = headers.findIndex((x) => x.root !== root);
  if (otherRoot >= 0) throw new CommMismatchError(`${kind}: rank 0 names root ${root} but rank ${otherRoot} names root ${headers[otherRoot]!.root}`);
  return root;
}

/** Throws on every rank unless the named header fields are equal on every rank. */
export function agreeOnFields(headers: readonly CollectiveHeader[], kind: string, fields: readonly ('dtype' | 'length' | 'op')[]): void {
  for (const f of fields) {
    const odd = headers.findIndex((x) => x[f] !== headers[0]![f]);
    if (odd < 0) continue;
    const show = (h: CollectiveHeader): string => (f === 'dtype'
      ? DTYPES[h.dtype - 1] ?? '?'
      : f === 'op' ? String(['?', 'sum', 'avg', 'prod', 'max', 'min'][h.op]) : String(h.length));
    throw new CommMismatchError(`${kind}: ranks disagree on the ${f}: rank 0 has ${show(headers[0]!)}, rank ${odd} has ${show(headers[odd]!)}`);
  }
}
