// The two halves of every MPI collective that are not the data movement itself: the header all
// ranks exchange first (and the checks that they agree), and the wait for an MPI request.
//
// The wait polls MPI_Test from the event loop: a burst of tests of up to 1 ms (MPI makes progress
// inside them), then setImmediate so timers, I/O and worker messages run in between; after a second
// of waiting, a 1 ms timer instead, so a rank waiting long for a slow peer does not hold a core.
// It never calls a blocking MPI function, so the controller keeps running while data moves.
//
// Why 1 ms and not less: MPICH (without its progress thread) moves data only inside MPI calls (a
// 20 ms pause between MPI_Iallreduce and the first MPI_Test made a 16 MB all-reduce exactly 20 ms
// longer), and the peer's next step waits for this rank's, so every return to the event loop stalls
// both. Against a tight MPI_Test loop (5.35 ms at 16 MB, 2 processes), bursts of 0 / 50 / 1000 us cost
// +16% / +8% / +4% (bench/mpi-poll-trace.ts, BENCHMARKS.md "Polling MPI_Test"). Yielding through a
// timer instead of setImmediate (Node clamps it to 1 ms) made MPICH's all-reduce about 3x slower. The
// longest turn is set by MPI itself either way: one MPI_Test call that reduces half the array took
// 1.5-10 ms (MPICH) and up to 25-45 ms (Open MPI) at 16-64 MB (bench/mpi-event-loop.ts).
import { type DType, DTYPES } from '../../tensor/dtype.js';
import { type CollectiveName, CommAbortedError, CommTimeoutError } from '../communicator.js';
import { type CollectiveArgs, type CollectiveHeader, HEADER_WORDS, agreeOnCall, agreeOnFields, decodeHeader, headerWords } from '../collective-header.js';
import type { MpiLibrary, MpiRequest } from './ffi.js';

/** Ints per rank in the header: seq, collective, dtype, length, root, op, argument status. */
export const HEADER_INTS = HEADER_WORDS;
/** The most elements one MPI call moves (counts and displacements are C ints). */
export const MAX_COUNT = 0x7fffffff;

/** What this rank passes to a collective, as far as the others must agree on it. */
export type Local = CollectiveArgs;
/** One rank's header, decoded. */
export type Header = CollectiveHeader;

/** A collective in flight: its name, sequence number and deadline. */
export interface Pending {
  readonly kind: CollectiveName;
  readonly seq: number;
  /** performance.now() after which the collective has failed. */
  readonly deadline: number;
  readonly timeoutMs: number;
}

/** A collective whose headers every rank has seen and agreed on (same collective, same root). */
export interface Agreed extends Pending {
  readonly headers: readonly Header[];
  readonly root: number;
  /** The dtype every rank named (rank 0's, or the root's for scatter). */
  readonly dtype: DType;
}

/** Default microseconds of MPI_Test per event-loop turn (see the top of this file). */
export const DEFAULT_SPIN_MICROS = 1000;

/** Options of the event-loop polling. */
export interface PollOptions {
  /** Microseconds of MPI_Test calls per event-loop turn before yielding (default 1000). */
  readonly spinMicros?: number;
}

/** This rank's header, in a shared array (MPI reads it after the call returns). */
export function writeHeader(seq: number, kind: CollectiveName, local: Local, invalid: boolean): Int32Array {
  const h = new Int32Array(new SharedArrayBuffer(4 * HEADER_INTS));
  h.set(headerWords(seq, kind, local, invalid));
  return h;
}

/**
 * Decodes every rank's header and throws, on every rank alike, where they disagree: another
 * collective or sequence number (CommMismatchError), a rank's invalid arguments (that rank throws
 * its own `error`, the others CommAbortedError naming it), or another root.
 */
export function readHeaders(all: Int32Array, size: number, rank: number, pending: Pending, error: unknown): Agreed {
  const headers: Header[] = [];
  for (let r = 0; r < size; r++) headers.push(decodeHeader(all, r * HEADER_INTS));
  const { kind, seq } = pending;
  const root = agreeOnCall(headers, rank, kind, `MPI collective #${seq}`, error);
  const dtypeCode = kind === 'scatter' ? headers[root]!.dtype : headers[0]!.dtype;
  return { ...pending, headers, root, dtype: DTYPES[dtypeCode - 1] ?? 'uint8' };
}

/** Throws on every rank unless the named header fields are equal on every rank. */
export function agreeHeaders(a: Agreed, kind: string, fields: readonly ('dtype' | 'length' | 'op')[]): void {
  agreeOnFields(a.headers, kind, fields);
}

/** Starts MPI requests and waits for them from the event loop, each against its collective's deadline. */
export class RequestPoller {
  private broken: string | null = null;
  /** Requests whose deadline passed, with the memory MPI may still write: kept alive until the process ends. */
  private readonly stranded: unknown[] = [];
  private readonly spinMs: number;
  private readonly flag = new Int32Array(1);

  constructor(private readonly mpi: MpiLibrary, private readonly rank: number, private readonly size: number, options: PollOptions = {}) {
    const spin = options.spinMicros ?? DEFAULT_SPIN_MICROS;
    if (!(spin >= 0)) throw new TypeError(`MPI spinMicros: expected a number >= 0, got ${String(spin)}`);
    this.spinMs = spin / 1000;
  }

  /** Why the communicator is unusable (a collective's deadline passed), or null. */
  get brokenBecause(): string | null {
    return this.broken;
  }

  /** Throws CommAbortedError once a deadline has passed (MPI's pending request cannot be taken back). */
  throwIfBroken(kind: CollectiveName, seq: number): void {
    if (this.broken !== null) throw new CommAbortedError(`MPI rank ${this.rank}: ${kind} (collective #${seq}) refused: ${this.broken}`);
  }

  /**
   * Starts one request with `start` and resolves when MPI_Test says it completed; rejects with
   * CommTimeoutError naming the rank, the collective and its sequence number at the deadline.
   * `keep` is the memory MPI reads or writes: referenced until the request completes (or forever).
   */
  run(p: Pending, keep: readonly unknown[], start: (req: MpiRequest) => void): Promise<void> {
    const req: MpiRequest = new BigInt64Array(new SharedArrayBuffer(8));
    start(req);
    const began = performance.now();
    return new Promise<void>((resolve, reject) => {
      const poll = (): void => {
        try {
          const until = performance.now() + this.spinMs;
          do {
            if (this.mpi.test(req, this.flag)) {
              resolve();
              return;
            }
          } while (performance.now() < until);
        } catch (e) {
          reject(e);
          return;
        }
        const now = performance.now();
        if (now > p.deadline) {
          this.broken = `MPI rank ${this.rank} of ${this.size}: ${p.kind} (collective #${p.seq}) did not complete within ${p.timeoutMs} ms`;
          this.stranded.push(req, keep);
          reject(new CommTimeoutError(
            `${this.broken}: another rank has not called it (it skipped it, called another collective, hangs or died); `
              + 'call abort() so the launcher ends the job (MPI_Abort)',
          ));
          return;
        }
        if (now - began > 1000) setTimeout(poll, 1);
        else setImmediate(poll);
      };
      poll();
    });
  }
}
