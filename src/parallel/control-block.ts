// The pool's SharedArrayBuffer control block, and the worker side of the pool (serveWorker).
//
// Layout (Int32 words; the words workers poll and the word they write sit on separate cache lines):
//   0 SEQ (call number; spinning workers poll it)   1 CMD (command word)   2 ARGC   3 STATE (1 = closing)
//   4 INTERRUPT (how many interrupts the controller asked for)   5 INTERRUPT_ACKS (workers that ran the last one)
//   16 DONE (workers that finished the call; the controller waits on it)
//   32.. STATUS[n] (per rank: 0 pending, 1 ok, 2 failed), then ACK[n] (per rank: the last call it finished)
//   then, 16-word aligned, one cache line per rank: WAKE (the last call it was woken for; a parked
//   worker sleeps on it) and PARKED (1 while it sleeps or is about to)
//   then, 64-byte aligned, Float64 words: ARGS[MAX_ARGS], RESULTS[n] (a command's numeric result).
// A call: the controller writes CMD, ARGC, ARGS, zeroes DONE and STATUS, bumps SEQ, then wakes its
// children in the wake tree (wakeChildren). Each worker spins briefly on SEQ, then parks on its
// own WAKE word; once it sees the new SEQ it first wakes its own children (a log-depth fan-out: no
// thread issues more than `fanout` futex wake-ups, and the wake-ups of one level run in parallel),
// then runs the handler; writes its RESULT, STATUS and ACK and increments DONE; the last to finish
// notifies. The controller awaits DONE == n with Atomics.waitAsync, so its event loop never blocks.
// An interrupt (WorkerPool.interrupt, when the job is being aborted) bumps INTERRUPT and wakes every
// rank: each runs its interrupt handler once, at its next wait for a call (at once when idle), and
// counts itself in INTERRUPT_ACKS; a rank inside a call gets there when its call ends.
// Wakers notify only parked workers (a spinning worker sees SEQ by itself: no system call).
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { type ShmGroupInit, ShmCommunicator } from '../comm/shm.js';
import { CMD_CLOSE, CMD_MESSAGE } from './commands.js';

export const SEQ = 0;
export const CMD = 1;
export const ARGC = 2;
export const STATE = 3;
export const INTERRUPT = 4;
export const INTERRUPT_ACKS = 5;
export const DONE = 16;
export const STATUS = 32;
/** ACK + rank: the SEQ of the last call that rank finished (lets the controller talk to rank 0 alone). */
export function ackIndex(n: number, rank: number): number {
  return STATUS + n + rank;
}
export const MAX_ARGS = 64;
export const STATUS_PENDING = 0;
export const STATUS_OK = 1;
export const STATUS_FAILED = 2;

export interface ControlViews {
  readonly i32: Int32Array;
  readonly args: Float64Array;
  readonly results: Float64Array;
}

const LINE_WORDS = 16;
/** WAKE word of a rank (its PARKED flag follows it), on a cache line of its own. */
export function wakeIndex(n: number, rank: number): number {
  return Math.ceil((STATUS + 2 * n) / LINE_WORDS) * LINE_WORDS + rank * LINE_WORDS;
}

function f64Offset(n: number): number {
  return wakeIndex(n, n) * 4;
}

/**
 * Ranks woken by `waker` (-1: the controller) in a wake tree of the given fan-out over n ranks:
 * the controller wakes ranks [0, fanout), rank r wakes [fanout (r + 1), fanout (r + 2)). A fan-out
 * of n or more is flat (the controller wakes every rank).
 */
export function wakeChildren(waker: number, n: number, fanout: number): [number, number] {
  const from = fanout * (waker + 1);
  return [Math.min(from, n), Math.min(from + fanout, n)];
}

/** Tells `rank` that call `seq` is out: stores its WAKE word and notifies it when it is parked. */
export function wakeRank(i32: Int32Array, n: number, rank: number, seq: number): void {
  const at = wakeIndex(n, rank);
  Atomics.store(i32, at, seq);
  if (Atomics.load(i32, at + 1) !== 0) Atomics.notify(i32, at, 1);
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
  readonly synkPool: {
    rank: number; size: number; control: SharedArrayBuffer; comm: ShmGroupInit | null; spinMicros: number; wakeFanout: number; notifier: boolean;
  };
  readonly data: unknown;
}

import type { WorkerReport } from './pool-errors.js';
export type { WorkerReport };

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
  /**
   * Housekeeping after each call has been reported done (`idle` false), e.g. collecting garbage. A
   * number returned asks for another run after that many milliseconds without a call (`idle` true;
   * the worker's event loop gets one turn first), and so on until it returns null.
   */
  afterCall?: (ctx: WorkerContext, idle: boolean) => number | null | void;
  /**
   * The controller's interrupt (WorkerPool.interrupt: the job is being aborted), run once per
   * interrupt at the worker's next wait for a call; synchronous, since the controller waits for it.
   */
  interrupt?: (ctx: WorkerContext) => void;
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
  const { rank, size, control, comm, spinMicros, wakeFanout, notifier } = workerData.synkPool;
  const notifiesLast = notifier && size > 1;
  const ctx: WorkerContext = { rank, size, workerData: workerData.data, comm: comm ? new ShmCommunicator(comm, rank) : null };
  const { i32, args, results } = controlViews(control, size);
  try {
    await handlers.init?.(ctx);
  } catch (e) {
    port.postMessage(errorReport(e, 0, rank));
    return;
  }
  let seen = Atomics.load(i32, SEQ); // before reporting ready: the first call may follow at once
  const interrupts = { seen: Atomics.load(i32, INTERRUPT) }; // so may an interrupt
  port.postMessage({ type: 'ready', rank } satisfies WorkerReport);
  const runCall = async (cmd: number, seq: number): Promise<number> => {
    try {
      if (cmd === CMD_MESSAGE) {
        const got = receiveMessageOnPort(port)?.message as { seq: number; payload: unknown } | undefined;
        if (got === undefined || got.seq !== seq) throw new Error(`rank ${rank}: message for call ${seq} is missing (got ${String(got?.seq)})`);
        if (handlers.message === undefined) throw new Error(`rank ${rank}: this worker has no message handler`);
        const value: unknown = await handlers.message(got.payload, ctx);
        port.postMessage({ type: 'reply', seq, rank, value } satisfies WorkerReport);
      } else {
        const handler = handlers.commands?.[cmd];
        if (handler === undefined) throw new Error(`rank ${rank}: no handler for command ${cmd}`);
        const value = await handler(args.slice(0, Atomics.load(i32, ARGC)), ctx);
        results[rank] = typeof value === 'number' ? value : 0;
      }
      return STATUS_OK;
    } catch (e) {
      ctx.comm?.abort('failed'); // peers waiting in a collective for this rank fail at once
      port.postMessage(errorReport(e, seq, rank));
      return STATUS_FAILED;
    }
  };
  let again: number | null = null; // housekeeping asked to run again after this idle time
  const housekeeping = (idle: boolean): void => {
    try {
      again = handlers.afterCall?.(ctx, idle) ?? null;
    } catch {
      again = null; // housekeeping only: a failure here must not take the worker down
    }
  };
  const wake = wakeIndex(size, rank);
  const [firstChild, endChild] = wakeChildren(rank, size, wakeFanout);
  for (;;) {
    if (again !== null) {
      if (!waitForChange(i32, seen, wake, spinMicros, again, interrupts.seen)) {
        await new Promise((resolve) => setImmediate(resolve)); // lets the thread's pending tasks run
        housekeeping(true);
        continue;
      }
    } else waitForChange(i32, seen, wake, spinMicros, Infinity, interrupts.seen);
    if (Atomics.load(i32, INTERRUPT) !== interrupts.seen) {
      interrupts.seen = Atomics.load(i32, INTERRUPT);
      try { handlers.interrupt?.(ctx); } catch { /* the controller is ending the job: it only waits for the count */ }
      Atomics.add(i32, INTERRUPT_ACKS, 1);
      Atomics.notify(i32, INTERRUPT_ACKS);
      if (Atomics.load(i32, SEQ) === seen) continue;
    }
    seen = Atomics.load(i32, SEQ);
    for (let c = firstChild; c < endChild; c++) wakeRank(i32, size, c, seen); // before the call: the subtree starts at once
    const cmd = Atomics.load(i32, CMD);
    if (cmd === CMD_CLOSE || Atomics.load(i32, STATE) === 1) return;
    // In a function of its own: the message and its reply are unreachable once it returns, so the
    // housekeeping below can collect them (a loop variable would keep the last message alive).
    const status = await runCall(cmd, seen);
    Atomics.store(i32, STATUS + rank, status);
    Atomics.store(i32, ackIndex(size, rank), seen);
    // Only the last rank to finish wakes the controller: one wake-up per call, not one per rank
    // (each wakes its event loop, and at 16 workers on 16 cores those queued for a core each).
    // A sleeping rank that is to wake the controller first waits (bounded) for the others: then it
    // notifies and parks at once, and its core is free for the controller (the others spin).
    if (notifiesLast) waitForOthers(i32, size - 1, NOTIFIER_WAIT_MICROS);
    if (Atomics.add(i32, DONE, 1) + 1 >= size) Atomics.notify(i32, DONE);
    housekeeping(false);
  }
}

/** How long the notifying rank waits for the others before it reports done anyway. */
const NOTIFIER_WAIT_MICROS = 200;

function waitForOthers(i32: Int32Array, others: number, micros: number): void {
  if (Atomics.load(i32, DONE) >= others) return;
  const until = performance.now() + micros / 1000;
  while (Atomics.load(i32, DONE) < others && performance.now() < until) { /* the call is in progress: the controller sleeps */ }
}

/**
 * Spins up to `spinMicros` for SEQ to leave `seen` (or INTERRUPT `interrupts`), then parks on this
 * rank's WAKE word (index `wake`, PARKED after it) in Atomics.wait; false if `ms` passed first.
 */
function waitForChange(i32: Int32Array, seen: number, wake: number, spinMicros: number, ms: number, interrupts: number): boolean {
  const changed = (): boolean => Atomics.load(i32, SEQ) !== seen || Atomics.load(i32, INTERRUPT) !== interrupts;
  if (changed()) return true;
  if (spinMicros > 0) {
    const until = performance.now() + spinMicros / 1000;
    while (performance.now() < until) if (changed()) return true;
  }
  const deadline = performance.now() + ms;
  // PARKED is set before SEQ is read again: a waker that stores WAKE after that read sees the flag
  // and notifies; one that stored it before changed the word, so the wait returns at once.
  Atomics.store(i32, wake + 1, 1);
  try {
    for (;;) {
      const word = Atomics.load(i32, wake);
      if (changed()) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(i32, wake, word, Math.min(left, 10_000));
    }
  } finally {
    Atomics.store(i32, wake + 1, 0);
  }
}

export { PoolError, PoolClosedError, PoolTimeoutError, WorkerError, CallSite, positive, safeTimeout, type SafeTimer } from './pool-errors.js';
