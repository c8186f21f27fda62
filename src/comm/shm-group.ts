// The shared state of a shared-memory communicator group: its control block, its arena, the
// abort word and the barrier. The collectives themselves are in shm.ts.
//
// Control block (Int32Array words; three cache lines apart where threads spin or write often):
//   0 ABORT (0 = fine, else 1 + index in ABORT_REASONS)   1 ABORT_RANK   2 EPOCH
//   16 COUNT (arrivals at the current barrier)   32 GEN (barrier generation; waiters sleep on it)
//   48.. headers [parity 2][rank size][8 words]: seq, kind, dtype, length, root, op, status, -
//   then the scatter table [parity 2][rank size]: lengths of the root's parts.
// Small slots (a SharedArrayBuffer of their own, [parity 2][rank size][SMALL_BYTES]): a reduction
// of at most SMALL_BYTES per rank travels there with the header, so it needs one barrier, not three.
//
// Barrier: a central counter with a generation word (the sense-reversing barrier with the sense
// replaced by a counter). The last rank to arrive zeroes COUNT, bumps GEN and notifies; the others
// spin `spin` polls on GEN, then sleep in Atomics.wait for at most 1 s at a time, checking the ABORT
// word and their deadline at every wake-up. abortShmGroup notifies GEN, so sleepers wake at once.
import { CommAbortedError, CommTimeoutError, DEFAULT_COMM_TIMEOUT_MS, assertTimeout } from './communicator.js';

export const ABORT = 0;
export const ABORT_RANK = 1;
export const EPOCH = 2;
export const COUNT = 16;
export const GEN = 32;
export const HDR = 48;
export const HDR_WORDS = 8;
export const MAX_ELEMENTS = 2 ** 31 - 1;
/** Bytes per rank and parity of the small slots (16 float64: a call's summed scalars and their weights). */
export const SMALL_BYTES = 128;
/** Node 20 caps a growable SharedArrayBuffer at 4 GiB. */
const ARENA_LIMIT = 2 ** 32;

export type AbortReason = 'failed' | 'died' | 'timeout' | 'closed' | 'aborted';
const ABORT_REASONS: readonly AbortReason[] = ['failed', 'died', 'timeout', 'closed', 'aborted'];

export interface ShmGroupOptions {
  /** Largest the arena may grow to (default 1 GiB, at most 4 GiB); beyond it data moves in rounds. */
  maxArenaBytes?: number;
  /** Default bound on every wait (default 60 s); each call may pass its own. */
  timeoutMs?: number;
  /** Polls of the barrier word before sleeping in Atomics.wait (default 200). */
  spin?: number;
}

/** What each rank needs to join the group: structured-cloneable (send it in workerData). */
export interface ShmGroupInit {
  readonly size: number;
  readonly control: SharedArrayBuffer;
  readonly arena: SharedArrayBuffer;
  /** The small slots (see the layout above). */
  readonly small: SharedArrayBuffer;
  readonly maxArenaBytes: number;
  readonly timeoutMs: number;
  readonly spin: number;
}

export interface Growable {
  readonly growable?: boolean;
  grow?(newLength: number): void;
}
const GrowableSAB = SharedArrayBuffer as unknown as new (length: number, options?: { maxByteLength: number }) => SharedArrayBuffer;

export const align8 = (n: number): number => Math.ceil(n / 8) * 8;

function positiveInt(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new RangeError(`${what}: expected an integer in [1, ${max}], got ${String(value)}`);
  }
  return value as number;
}

/** Creates the shared state of a group of `size` ranks, in the controller. */
export function createShmGroup(size: number, arenaBytes = 1 << 20, options: ShmGroupOptions = {}): ShmGroupInit {
  positiveInt(size, 'createShmGroup size', 4096);
  positiveInt(arenaBytes, 'createShmGroup arenaBytes', ARENA_LIMIT);
  const maxArenaBytes = options.maxArenaBytes === undefined
    ? Math.max(1 << 30, arenaBytes)
    : positiveInt(options.maxArenaBytes, 'createShmGroup options.maxArenaBytes', ARENA_LIMIT);
  if (maxArenaBytes < arenaBytes) {
    throw new RangeError(`createShmGroup options.maxArenaBytes: expected at least arenaBytes (${arenaBytes}), got ${maxArenaBytes}`);
  }
  const timeoutMs = options.timeoutMs === undefined ? DEFAULT_COMM_TIMEOUT_MS : assertTimeout(options.timeoutMs, 'createShmGroup options.timeoutMs');
  const spin = options.spin ?? 200;
  if (!Number.isInteger(spin) || spin < 0) throw new RangeError(`createShmGroup options.spin: expected an integer >= 0, got ${String(spin)}`);
  const initial = Math.max(align8(arenaBytes), 64 * size);
  const max = Math.max(initial, Math.floor(maxArenaBytes / 8) * 8);
  let arena: SharedArrayBuffer;
  try {
    arena = max > initial ? new GrowableSAB(initial, { maxByteLength: max }) : new SharedArrayBuffer(initial);
  } catch {
    arena = new SharedArrayBuffer(initial); // no growable buffers here: collectives run in rounds
  }
  const words = HDR + 2 * size * HDR_WORDS + 2 * size;
  const small = new SharedArrayBuffer(2 * size * SMALL_BYTES);
  return { size, control: new SharedArrayBuffer(words * 4), arena, small, maxArenaBytes: max, timeoutMs, spin };
}

/**
 * Marks the group aborted and wakes every waiting rank, which throws CommAbortedError. The first
 * reason wins. Safe from any thread at any time (the pool calls it when a worker dies).
 */
export function abortShmGroup(init: ShmGroupInit, reason: AbortReason, rank = -1): void {
  const ctl = new Int32Array(init.control);
  if (Atomics.compareExchange(ctl, ABORT, 0, ABORT_REASONS.indexOf(reason) + 1) === 0) Atomics.store(ctl, ABORT_RANK, rank);
  Atomics.notify(ctl, GEN);
}

/** Why the group was aborted, or null. */
export function shmGroupAbortState(init: ShmGroupInit): { reason: AbortReason; rank: number } | null {
  const ctl = new Int32Array(init.control);
  const reason = ABORT_REASONS[Atomics.load(ctl, ABORT) - 1];
  return reason === undefined ? null : { reason, rank: Atomics.load(ctl, ABORT_RANK) };
}

/**
 * Makes an aborted group usable again. Only when no rank is inside a collective (the pool does it
 * between calls, once every worker has finished): clears the abort and the barrier count and
 * starts a new epoch, in which every rank's collective sequence starts again from 0.
 */
export function resetShmGroup(init: ShmGroupInit): void {
  const ctl = new Int32Array(init.control);
  Atomics.store(ctl, COUNT, 0);
  Atomics.add(ctl, EPOCH, 1);
  Atomics.store(ctl, ABORT_RANK, 0);
  Atomics.store(ctl, ABORT, 0);
}

export function describeAbort(reason: AbortReason, rank: number): string {
  const who = rank >= 0 ? `rank ${rank}` : 'the controller';
  switch (reason) {
    case 'failed':
      return `communicator aborted: ${who} failed`;
    case 'died':
      return `communicator aborted: ${who} died`;
    case 'timeout':
      return `communicator aborted: ${who} timed out in a collective`;
    case 'closed':
      return 'communicator aborted: the group was closed';
    case 'aborted':
      return `communicator aborted by ${who}`;
    default:
      return reason satisfies never;
  }
}


/** Throws CommAbortedError if the group is aborted. */
export function throwIfAborted(init: ShmGroupInit, rank: number): void {
  const state = shmGroupAbortState(init);
  if (state) throw new CommAbortedError(`rank ${rank}: ${describeAbort(state.reason, state.rank)}`);
}

/** Waits until all `init.size` ranks have arrived, or throws (aborted group, or past `deadline`). */
export function groupBarrier(init: ShmGroupInit, rank: number, deadline: number, seq: number): void {
  const ctl = new Int32Array(init.control);
  if (init.size === 1) return throwIfAborted(init, rank);
  const gen = Atomics.load(ctl, GEN);
  if (Atomics.add(ctl, COUNT, 1) === init.size - 1) {
    Atomics.store(ctl, COUNT, 0);
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    return;
  }
  let spins = init.spin;
  while (Atomics.load(ctl, GEN) === gen) {
    if (spins-- > 0) continue;
    throwIfAborted(init, rank);
    const left = deadline - performance.now();
    if (left <= 0) {
      abortShmGroup(init, 'timeout', rank);
      throw new CommTimeoutError(`rank ${rank}: timed out waiting for the other ranks in a collective (collective #${seq})`);
    }
    Atomics.wait(ctl, GEN, gen, Math.min(left, 1000));
  }
}
