// The pool's SharedArrayBuffer control block, and the worker side of the pool (serveWorker).
//
// Layout (Int32 words; the words workers poll and the word they write sit on separate cache lines):
//   0 SEQ (call number; workers wait on it)   1 CMD (command word)   2 ARGC   3 STATE (1 = closing)
//   16 DONE (workers that finished the call; the controller waits on it)
//   32.. STATUS[n] (per rank: 0 pending, 1 ok, 2 failed)
//   then, 64-byte aligned, Float64 words: ARGS[MAX_ARGS], RESULTS[n] (a command's numeric result).
// A call: the controller writes CMD, ARGC, ARGS, zeroes DONE and STATUS, bumps SEQ and notifies.
// Each worker spins briefly on SEQ, then sleeps in Atomics.wait; runs the handler; writes its
// RESULT and STATUS, increments DONE and notifies. The controller awaits DONE == n with
// Atomics.waitAsync, so its event loop never blocks.
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { type ShmGroupInit, ShmCommunicator } from '../comm/shm.js';

export const SEQ = 0;
export const CMD = 1;
export const ARGC = 2;
export const STATE = 3;
export const DONE = 16;
export const STATUS = 32;
export const MAX_ARGS = 64;
export const STATUS_PENDING = 0;
export const STATUS_OK = 1;
export const STATUS_FAILED = 2;
/** Reserved command words (user commands are integers >= 0). */
export const CMD_MESSAGE = -1;
export const CMD_CLOSE = -2;

export interface ControlViews {
  readonly i32: Int32Array;
  readonly args: Float64Array;
  readonly results: Float64Array;
}

function f64Offset(n: number): number {
  return Math.ceil(((STATUS + n) * 4) / 64) * 64;
}

export function createControlBlock(n: number): SharedArrayBuffer {
  return new SharedArrayBuffer(f64Offset(n) + (MAX_ARGS + n) * 8);
}

export function controlViews(block: SharedArrayBuffer, n: number): ControlViews {
  const at = f64Offset(n);
  return { i32: new Int32Array(block), args: new Float64Array(block, at, MAX_ARGS), results: new Float64Array(block, at + MAX_ARGS * 8, n) };
}

/** What the pool puts in each worker's workerData. */
export interface PoolWorkerData {
  readonly synkPool: { rank: number; size: number; control: SharedArrayBuffer; comm: ShmGroupInit | null; spinMicros: number };
  readonly data: unknown;
}

/** Messages from a worker to the controller. */
export type WorkerReport =
  | { type: 'ready'; rank: number }
  | { type: 'reply'; seq: number; rank: number; value: unknown }
  | { type: 'error'; seq: number; rank: number; name: string; message: string; stack: string };

/** What every handler receives about its worker. */
export interface WorkerContext {
  readonly rank: number;
  readonly size: number;
  /** The pool's `workerData` option, as given. */
  readonly workerData: unknown;
  /** This rank of the pool's shared-memory group (null when the pool was started with comm: false). */
  readonly comm: ShmCommunicator | null;
}

export type CommandHandler = (args: Float64Array, ctx: WorkerContext) => number | void | Promise<number | void>;

export interface WorkerHandlers {
  /** Runs once before the worker reports ready (a throw fails WorkerPool.start). */
  init?: (ctx: WorkerContext) => void | Promise<void>;
  /** Fast-path commands by word (callAll); the result, if a number, is returned to the controller. */
  commands?: Readonly<Record<number, CommandHandler>>;
  /** Message calls (broadcastMessage / sendMessages); the result is structured-cloned back. */
  message?: (message: unknown, ctx: WorkerContext) => unknown;
}

function isPoolWorkerData(value: unknown): value is PoolWorkerData {
  const p = (value as { synkPool?: { control?: unknown } } | null)?.synkPool;
  return typeof p === 'object' && p !== null && p.control instanceof SharedArrayBuffer;
}

function errorReport(e: unknown, seq: number, rank: number): WorkerReport {
  const err = e instanceof Error ? e : new Error(`non-Error thrown: ${String(e)}`);
  return { type: 'error', seq, rank, name: err.name, message: err.message, stack: err.stack ?? `${err.name}: ${err.message}` };
}

/**
 * The worker side of a WorkerPool: call it once from the worker script with the handlers. Resolves
 * when the pool closes. Handlers may be async; one runs at a time.
 */
export async function serveWorker(handlers: WorkerHandlers): Promise<void> {
  const port = parentPort;
  if (port === null || !isPoolWorkerData(workerData)) throw new Error('serveWorker: not inside a WorkerPool worker thread');
  const { rank, size, control, comm, spinMicros } = workerData.synkPool;
  const ctx: WorkerContext = { rank, size, workerData: workerData.data, comm: comm ? new ShmCommunicator(comm, rank) : null };
  const { i32, args, results } = controlViews(control, size);
  try {
    await handlers.init?.(ctx);
  } catch (e) {
    port.postMessage(errorReport(e, 0, rank));
    return;
  }
  let seen = Atomics.load(i32, SEQ); // before reporting ready: the first call may follow at once
  port.postMessage({ type: 'ready', rank } satisfies WorkerReport);
  for (;;) {
    waitForChange(i32, seen, spinMicros);
    seen = Atomics.load(i32, SEQ);
    const cmd = Atomics.load(i32, CMD);
    if (cmd === CMD_CLOSE || Atomics.load(i32, STATE) === 1) return;
    let status = STATUS_OK;
    try {
      if (cmd === CMD_MESSAGE) {
        const got = receiveMessageOnPort(port)?.message as { seq: number; payload: unknown } | undefined;
        if (got === undefined || got.seq !== seen) throw new Error(`rank ${rank}: message for call ${seen} is missing (got ${String(got?.seq)})`);
        if (handlers.message === undefined) throw new Error(`rank ${rank}: this worker has no message handler`);
        const value: unknown = await handlers.message(got.payload, ctx);
        port.postMessage({ type: 'reply', seq: seen, rank, value } satisfies WorkerReport);
      } else {
        const handler = handlers.commands?.[cmd];
        if (handler === undefined) throw new Error(`rank ${rank}: no handler for command ${cmd}`);
        const value = await handler(args.slice(0, Atomics.load(i32, ARGC)), ctx);
        results[rank] = typeof value === 'number' ? value : 0;
      }
    } catch (e) {
      status = STATUS_FAILED;
      ctx.comm?.abort('failed'); // peers waiting in a collective for this rank fail at once
      port.postMessage(errorReport(e, seen, rank));
    }
    Atomics.store(i32, STATUS + rank, status);
    Atomics.add(i32, DONE, 1);
    Atomics.notify(i32, DONE);
  }
}

/** Spins up to `spinMicros` for SEQ to leave `seen`, then sleeps in Atomics.wait. */
function waitForChange(i32: Int32Array, seen: number, spinMicros: number): void {
  if (Atomics.load(i32, SEQ) !== seen) return;
  const until = performance.now() + spinMicros / 1000;
  while (performance.now() < until) if (Atomics.load(i32, SEQ) !== seen) return;
  while (Atomics.load(i32, SEQ) === seen) Atomics.wait(i32, SEQ, seen, 10_000);
}

export function positive(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value > 0)) throw new RangeError(`${what}: expected a positive number, got ${String(value)}`);
  return value;
}

/** Base of the pool's errors. */
export class PoolError extends Error {
  override name = 'PoolError';
}

/** The pool was closed (by close() or at process exit). */
export class PoolClosedError extends PoolError {
  override name = 'PoolClosedError';
}

/** A call or the start-up outlived its bound; `ranks` did not finish. */
export class PoolTimeoutError extends PoolError {
  override name = 'PoolTimeoutError';
  constructor(message: string, readonly ranks: readonly number[]) {
    super(message);
  }

  /** The same failure, for a later call on the unusable pool. */
  again(): PoolTimeoutError {
    return new PoolTimeoutError(`WorkerPool is unusable since ${this.message}`, this.ranks);
  }
}

interface Original {
  rank: number;
  ranks: readonly number[];
  name: string;
  message: string;
  stack: string;
  exitCode: number | null;
  died: boolean;
}

/**
 * A worker failed: its handler threw (`died` false; the pool stays usable) or it died (`died`
 * true; the pool is unusable). `rank` is the first rank with an original error (not merely a
 * CommAbortedError caused by another rank's failure); `ranks` lists every rank that failed.
 * The original error's message and stack are kept, and the stack is appended to this one's.
 */
export class WorkerError extends PoolError {
  override name = 'WorkerError';
  readonly rank: number;
  readonly ranks: readonly number[];
  readonly originalName: string;
  readonly originalMessage: string;
  readonly originalStack: string;
  readonly died: boolean;
  readonly exitCode: number | null;

  constructor(message: string, o: Original) {
    const cause = Object.assign(new Error(o.message), { name: o.name, stack: o.stack });
    super(message, { cause });
    this.rank = o.rank;
    this.ranks = o.ranks;
    this.originalName = o.name;
    this.originalMessage = o.message;
    this.originalStack = o.stack;
    this.died = o.died;
    this.exitCode = o.exitCode;
    this.stack = `${this.name}: ${message}\n--- on rank ${o.rank} ---\n${o.stack}`;
  }

  /** The error of a failed call from the workers' reports: the first real failure, naming the other ranks that failed too. */
  static fromReports(reports: readonly WorkerReport[], ranks: readonly number[], what: string): WorkerError {
    const errors = reports.filter((r): r is Extract<WorkerReport, { type: 'error' }> => r.type === 'error');
    const first = errors.find((r) => r.name !== 'CommAbortedError') ?? errors[0];
    if (first === undefined) throw new PoolError(`${what}: ranks ${ranks.join(', ')} failed without a report`);
    const others = ranks.filter((r) => r !== first.rank);
    const tail = others.length > 0 ? ` (rank${others.length > 1 ? 's' : ''} ${others.join(', ')} failed too)` : '';
    return new WorkerError(`${what}: rank ${first.rank} failed: ${first.message}${tail}`, { ...first, ranks, exitCode: null, died: false });
  }

  /** The error for a worker that died or exited while calls were pending. */
  static death(rank: number, cause: Error | null, exitCode: number | null): WorkerError {
    const how = cause ? `died: ${cause.message}` : `exited with code ${exitCode}`;
    const stack = cause?.stack ?? `(rank ${rank} exited with code ${exitCode}; no stack)`;
    const message = `rank ${rank} ${how} (close the pool and start a new one)`;
    return new WorkerError(message, { rank, ranks: [rank], name: cause?.name ?? 'WorkerExit', message: cause?.message ?? how, stack, exitCode, died: true });
  }

  /** The same failure, for a later call on the unusable pool. */
  again(): WorkerError {
    const o = { rank: this.rank, ranks: this.ranks, name: this.originalName, message: this.originalMessage, stack: this.originalStack, exitCode: this.exitCode, died: this.died };
    return new WorkerError(`WorkerPool is unusable since ${this.message}`, o);
  }
}
