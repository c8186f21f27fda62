// Shared values that live on rank 0. After a call that updated shared variables, the controller's
// copies are stale: they are read from rank 0 only when someone asks (getValue), so training loops
// copy nothing back per step. Each stale value is tied to the fork that holds it.
//
// When that fork's rank 0 cannot be asked any more, the controller keeps what it can:
//  - the pool is healthy and idle: the value is read (an error reading it propagates);
//  - a call is in progress: the read is refused (await the call first);
//  - the pool failed (a worker died or hung) or is closing, and rank 0 still runs: the value is
//    read from rank 0 alone (bounded by SALVAGE_MS), so its latest value survives another rank's death;
//  - rank 0 ended, did not answer, or the workers are closed: the controller keeps the last value it
//    had, with a warning (code SYNK_RANK0_VALUE_LOST) that the updates made on the workers since are
//    lost. The variable is then an ordinary controller value: a later fork starts from it.
import type { SharedVariable } from '../tensor/variable.js';
import { NDArray } from '../tensor/ndarray.js';
import { bytesPerElement } from '../tensor/dtype.js';
import type { WorkerPool } from './pool.js';
import { viewResults, writeString } from './fast-call.js';
import { CMD_FETCH_SHARED } from './commands.js';

/** The part of a fork's state that holds its rank 0's values. */
export interface Rank0Values {
  readonly pool: WorkerPool;
  readonly arenas: { readonly scratch: SharedArrayBuffer; readonly results: SharedArrayBuffer; readonly partials: SharedArrayBuffer };
  /** Shared variables whose current value is on rank 0 and not read yet. */
  readonly stale: Set<SharedVariable>;
  /** Why rank 0's values cannot be read any more (set at the first failed attempt), or null. */
  lost: string | null;
}

/** The most bytes of a shared value one synchronous fetch from rank 0 carries. */
const FETCH_PIECE_BYTES = 1 << 26;
/** How long a read waits for rank 0 of a failed or closing pool (it may be finishing an aborted call). */
export const SALVAGE_MS = 2000;
export const VALUE_LOST_CODE = 'SYNK_RANK0_VALUE_LOST';

export function newRank0Values(pool: WorkerPool, arenas: Rank0Values['arenas']): Rank0Values {
  return { pool, arenas, stale: new Set(), lost: null };
}

/** Records that rank 0 of `holder` now has the current values of `shareds`. */
export function markUpdatedOnRank0Of(holder: Rank0Values, shareds: readonly SharedVariable[]): void {
  for (const v of shareds) {
    holder.stale.add(v);
    // Keyed by the holder: a later fork's copy replaces (and releases) this one.
    v.markDeviceCurrent(holder, { value: null, sync: () => readFromRank0(holder, v), release: () => { holder.stale.delete(v); } });
  }
}

function label(v: SharedVariable): string {
  return v.name ?? v.sharedId;
}

function fetch(holder: Rank0Values, v: SharedVariable, run: (command: number, args: number[]) => void): NDArray {
  const length = writeString(holder.arenas.scratch, v.sharedId);
  // In pieces of at most FETCH_PIECE_BYTES, so a value of any size fits the results arena.
  const perPiece = Math.floor(FETCH_PIECE_BYTES / bytesPerElement(v.dtype));
  let out: NDArray | null = null;
  for (let offset = 0; out === null || offset < out.size; offset += perPiece) {
    run(CMD_FETCH_SHARED, [length, offset, perPiece]);
    // Views of the arena, copied into `out` before anything else can write it.
    const [piece, shape] = viewResults(holder.arenas.results);
    out ??= new NDArray(piece!.value.dtype, Array.from(shape!.value.data));
    out.data.set(piece!.value.data as ArrayLike<number>, offset);
    if (out.size === 0) break;
  }
  holder.stale.delete(v);
  return out!;
}

function readFromRank0(holder: Rank0Values, v: SharedVariable): NDArray {
  const pool = holder.pool;
  if (holder.lost === null && pool.idle) {
    try {
      return fetch(holder, v, (command, args) => pool.callSync(command, args));
    } catch (e) {
      if (!pool.failed) throw e; // a healthy pool: the error is real, and the value stays on rank 0
    }
  }
  if (holder.lost === null && !pool.failed && !pool.closed) {
    throw new Error(`shared variable ${label(v)}: the workers are busy (a call or collective is in progress); await it before reading the value`);
  }
  if (holder.lost === null) {
    if (!pool.rank0Alive) holder.lost = pool.closed ? 'the workers were closed' : 'rank 0 has ended';
    else {
      try {
        return fetch(holder, v, (command, args) => { pool.callRank0Sync(command, args, SALVAGE_MS); });
      } catch (e) {
        holder.lost = `rank 0 could not be read: ${(e as Error).message}`;
      }
    }
  }
  return keepControllerValue(holder, v);
}

/** Names collected during readBackAll, warned about once; null: warn per variable. */
let collecting: string[] | null = null;

function keepControllerValue(holder: Rank0Values, v: SharedVariable): NDArray {
  v.discardDeviceCopies(); // releases this copy: the variable is not stale any more
  if (collecting) collecting.push(label(v));
  else warnLost([label(v)], holder.lost ?? 'rank 0 is gone');
  return v.getValue({ borrow: true });
}

function warnLost(names: readonly string[], why: string): void {
  const shown = names.length > 8 ? `${names.slice(0, 8).join(', ')} and ${names.length - 8} more` : names.join(', ');
  process.emitWarning(
    `shared variable${names.length > 1 ? 's' : ''} ${shown}: the current value${names.length > 1 ? 's were' : ' was'} on rank 0, ` +
      `which cannot be read (${why}); ` +
      'the controller keeps the last value it had, and the updates made on the workers since are lost',
    { type: 'SynkWarning', code: VALUE_LOST_CODE },
  );
}

/** Reads every stale value back (before the workers go); what cannot be read is kept as the controller has it, with one warning. */
export function readBackAll(holder: Rank0Values): void {
  collecting = [];
  try {
    for (const v of [...holder.stale]) {
      try {
        v.getValue({ borrow: true });
      } catch (e) {
        holder.lost ??= (e as Error).message;
        keepControllerValue(holder, v);
      }
    }
  } finally {
    const names = collecting;
    collecting = null;
    if (names.length > 0) warnLost(names, holder.lost ?? 'rank 0 is gone');
  }
}
