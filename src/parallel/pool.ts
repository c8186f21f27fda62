// WorkerPool: n worker threads driven through a SharedArrayBuffer control block (control-block.ts).
//
// Calls are serialized (one control block). A call resolves when every worker has reported done;
// it rejects with a WorkerError naming the rank (original message and stack kept) when a handler
// throws, which leaves the pool usable; with a WorkerError too when a worker dies ('error' or
// 'exit'), which rejects the pending call at once, aborts the comm group and makes every later
// call reject until the pool is closed and a new one started; with a PoolTimeoutError naming the
// ranks that did not finish, which also leaves the pool unusable (those workers may never return).
// Every rejection's stack is the caller's chain of awaits (see atCaller and pool-errors.ts).
//
// Before closing, quiesce() stops the call in progress and waits (bounded) for the workers, so that
// results can still be read back; callRank0Sync reaches rank 0 alone, even on a failed pool.
//
// Liveness: workers are unref'd while idle, so a forgotten pool never keeps the process alive (it
// is closed at exit), and ref'd while a call is pending, so a process awaiting a call stays up.
import { availableParallelism } from 'node:os';
import { type ResourceLimits, Worker } from 'node:worker_threads';
import { type ShmGroupInit, type ShmGroupOptions, abortShmGroup, createShmGroup, resetShmGroup, shmGroupAbortState } from '../comm/shm.js';
import {
  type ControlViews,
  type PoolWorkerData,
  type WorkerReport,
  ARGC,
  CMD,
  DONE,
  INTERRUPT,
  INTERRUPT_ACKS,
  MAX_ARGS,
  SEQ,
  STATE,
  STATUS,
  STATUS_FAILED,
  STATUS_PENDING,
  CallSite,
  PoolClosedError,
  PoolError,
  PoolTimeoutError,
  WorkerError,
  ackIndex,
  controlViews,
  wakeChildren,
  wakeIndex,
  wakeRank,
  createControlBlock,
  positive,
  safeTimeout,
  type SafeTimer,
} from './control-block.js';
import { CMD_CLOSE, CMD_MESSAGE } from './commands.js';

export {
  type CommandHandler,
  type WorkerContext,
  type WorkerHandlers,
  PoolClosedError,
  PoolError,
  PoolTimeoutError,
  WorkerError,
  serveWorker,
} from './control-block.js';

export interface PoolOptions {
  /** Number of worker threads (ranks 0..n-1). */
  n: number;
  /** The worker script; it calls serveWorker(handlers). */
  script: URL | string;
  /** Passed to every worker as ctx.workerData (structured-cloned; SharedArrayBuffers are shared). */
  workerData?: unknown;
  resourceLimits?: ResourceLimits;
  /** Bound on start-up, until every worker reports ready (default 30 s). */
  startTimeoutMs?: number;
  /** Default bound on each call (default 60 s); callAll and the message calls take their own. */
  timeoutMs?: number;
  /** A shared-memory comm group for the workers (ctx.comm), on by default; false for none. */
  comm?: false | (ShmGroupOptions & { arenaBytes?: number });
  /**
   * How long an idle spinning worker polls for the next call before sleeping in Atomics.wait
   * (default 50 us). Waking a sleeping thread costs 10-120 us (a virtual machine's idle core most).
   */
  spinMicros?: number;
  /**
   * How many ranks spin when idle (ranks [0, spinningRanks)); the others sleep at once. Default:
   * every rank while the controller keeps a core of its own (n < cores), else none: 16 spinners on
   * 16 cores starve the controller. n - 1 at n = cores (the sleeping rank's core is the
   * controller's between calls) took the pool's own round trip at 16 workers on 16 cores from 155
   * to 21-33 us, but a synk.fn call's from 218-370 us to a spread of 70-940 us (median 154-541):
   * measured in BENCHMARKS.md, so not the default.
   */
  spinningRanks?: number;
  /**
   * Whether the last rank, when it sleeps between calls, reports done after the others (it waits for
   * them at most 200 us), so that the controller wakes as that rank parks (default: when exactly one
   * rank sleeps and the others spin).
   */
  lastRankNotifies?: boolean;
  /**
   * Fan-out of the wake tree (see control-block.ts): the controller wakes this many ranks and each
   * rank wakes this many more; n or more for a flat wake (the controller wakes every rank, the
   * default: fan-outs 2 and 4 were no faster at 16 workers on 16 cores, BENCHMARKS.md).
   */
  wakeFanout?: number;
  /**
   * How long the controller polls for a call to finish, blocking its thread, before it awaits the
   * workers through its event loop (default 0). Saves the event loop's wake-up on short calls.
   */
  controllerSpinMicros?: number;
  /** Called once when a worker dies (after the pending call was failed): a job of many nodes ends itself there. */
  onWorkerDeath?: (rank: number, error: Error) => void;
}

export interface CallOptions {
  /** Bound on this call in milliseconds (Infinity for none). */
  timeoutMs?: number;
  /** What the caller calls this call ("synk function 'train'"): it prefixes failure messages. */
  label?: string;
}

type WaitAsync = (a: Int32Array, index: number, value: number, timeout?: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

interface DispatchTuning {
  readonly wakeFanout: number;
  readonly controllerSpinMicros: number;
}

const livePools = new Set<WorkerPool>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pool of livePools) void pool.close();
  });
}

export class WorkerPool {
  readonly size: number;
  /** The workers' comm group (null with comm: false), for the controller to abort or inspect. */
  readonly commInit: ShmGroupInit | null;
  private readonly workers: Worker[];
  private readonly views: ControlViews;
  private readonly timeoutMs: number;
  private readonly wakeFanout: number;
  private readonly controllerSpinMicros: number;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: WorkerError | PoolTimeoutError | null = null;
  private closing: Promise<void> | null = null;
  private pending: ((error: Error) => void) | null = null;
  private readonly inbox = new Map<string, WorkerReport>();
  private readonly waiters = new Map<string, { resolve: (report: WorkerReport) => void; reject: (error: Error) => void }>();
  /** Ranks whose thread has ended (they will never answer again). */
  private readonly dead = new Set<number>();
  /** quiesce() is waiting for the call in progress: calls not yet started are refused. */
  private stopping = false;
  private onWorkerDeath: ((rank: number, error: Error) => void) | undefined;

  private constructor(workers: Worker[], views: ControlViews, commInit: ShmGroupInit | null, timeoutMs: number, tuning: DispatchTuning) {
    this.size = workers.length;
    this.wakeFanout = tuning.wakeFanout;
    this.controllerSpinMicros = tuning.controllerSpinMicros;
    this.workers = workers;
    this.views = views;
    this.commInit = commInit;
    this.timeoutMs = timeoutMs;
  }

  /** Starts `n` workers and resolves once every one has reported ready (bounded). */
  static async start(options: PoolOptions): Promise<WorkerPool> {
    const n = options?.n;
    if (!Number.isInteger(n) || n < 1 || n > 4096) throw new RangeError(`WorkerPool.start n: expected an integer in [1, 4096], got ${String(n)}`);
    if (!(options.script instanceof URL) && typeof options.script !== 'string') {
      throw new TypeError(`WorkerPool.start script: expected a URL or a path, got ${String(options.script)}`);
    }
    const startTimeoutMs = positive(options.startTimeoutMs ?? 30_000, 'WorkerPool.start startTimeoutMs');
    const timeoutMs = positive(options.timeoutMs ?? 60_000, 'WorkerPool.start timeoutMs');
    const cores = availableParallelism();
    const spinMicros = options.spinMicros ?? 50;
    if (!(spinMicros >= 0)) throw new RangeError(`WorkerPool.start spinMicros: expected a number >= 0, got ${String(spinMicros)}`);
    const spinningRanks = options.spinningRanks ?? (n < cores ? n : 0);
    if (!Number.isInteger(spinningRanks) || spinningRanks < 0) {
      throw new RangeError(`WorkerPool.start spinningRanks: expected an integer >= 0, got ${String(spinningRanks)}`);
    }
    const lastRankNotifies = options.lastRankNotifies ?? (n > 1 && spinningRanks === n - 1);
    const wakeFanout = options.wakeFanout ?? n;
    if (!Number.isInteger(wakeFanout) || wakeFanout < 1) {
      throw new RangeError(`WorkerPool.start wakeFanout: expected an integer >= 1, got ${String(wakeFanout)}`);
    }
    const controllerSpinMicros = options.controllerSpinMicros ?? 0;
    if (!(controllerSpinMicros >= 0 && controllerSpinMicros <= 10_000)) {
      throw new RangeError(`WorkerPool.start controllerSpinMicros: expected a number in [0, 10000], got ${String(controllerSpinMicros)}`);
    }
    const comm = options.comm === false
      ? null
      : createShmGroup(n, options.comm?.arenaBytes ?? 1 << 20, { timeoutMs, spin: n < cores ? 20000 : 200, ...options.comm });
    const control = createControlBlock(n);
    const workers: Worker[] = [];
    try {
      for (let rank = 0; rank < n; rank++) {
        const spin = rank < spinningRanks ? spinMicros : 0;
        const notifier = rank === n - 1 && spin === 0 && lastRankNotifies;
        const workerData: PoolWorkerData = { synkPool: { rank, size: n, control, comm, spinMicros: spin, wakeFanout, notifier }, data: options.workerData };
        workers.push(new Worker(options.script, { workerData, ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}) }));
      }
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw new TypeError(`WorkerPool.start: cannot start worker ${workers.length}: ${(e as Error).message}`, { cause: e });
    }
    const pool = new WorkerPool(workers, controlViews(control, n), comm, timeoutMs, { wakeFanout, controllerSpinMicros });
    pool.onWorkerDeath = options.onWorkerDeath;
    try {
      await pool.awaitReady(startTimeoutMs);
    } catch (e) {
      await pool.close();
      throw e;
    }
    for (const w of workers) w.unref();
    livePools.add(pool);
    installExitHook();
    return pool;
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  /** Why the pool cannot take calls any more (a dead worker, a timeout), or null. */
  get failed(): Error | null {
    return this.failure;
  }

  /**
   * Runs command `command` (an integer >= 0) with up to 64 numeric args (in the shared block) on
   * every worker; resolves to each rank's result (its handler's number, else 0) in rank order.
   */
  callAll(command: number, args: ArrayLike<number> = [], options: CallOptions = {}): Promise<number[]> {
    return this.enqueue(() => {
      if (!Number.isInteger(command) || command < 0 || command > 0x7fffffff) {
        throw new RangeError(`callAll command: expected an integer in [0, 2^31), got ${String(command)}`);
      }
      if (typeof args !== 'object' || args === null || !(args.length <= MAX_ARGS)) {
        throw new RangeError(`callAll args: expected at most ${MAX_ARGS} numbers, got ${String(args)}`);
      }
      for (let i = 0; i < args.length; i++) {
        if (typeof args[i] !== 'number') throw new TypeError(`callAll args[${i}]: expected a number, got ${typeof args[i]}`);
      }
      return this.run(command, args, null, `command ${command}`, options);
    }) as Promise<number[]>;
  }

  /**
   * callAll whose arguments are made, and whose results are read, inside its own turn of the queue:
   * an arena the call reads or writes is never touched by a queued call in between (concurrent
   * calls of several functions). `makeArgs` returning null skips the call and resolves to null.
   */
  callAllWith<T>(command: number, makeArgs: () => ArrayLike<number> | null, readBack: () => T, options: CallOptions = {}): Promise<T | null> {
    return this.enqueue(async () => {
      const args = makeArgs();
      if (args === null) return null;
      if (!(args.length <= MAX_ARGS)) throw new RangeError(`callAll args: expected at most ${MAX_ARGS} numbers, got ${args.length}`);
      await this.run(command, args, null, `command ${command}`, options);
      return readBack();
    });
  }

  /** Posts `message` to every worker and resolves to their replies in rank order. */
  broadcastMessage(message: unknown, options: CallOptions = {}): Promise<unknown[]> {
    return this.sendMessages(new Array<unknown>(this.size).fill(message), options);
  }

  /** Posts messages[r] to rank r and resolves to the replies in rank order. */
  sendMessages(messages: readonly unknown[], options: CallOptions = {}): Promise<unknown[]> {
    return this.enqueue(() => {
      if (!Array.isArray(messages) || messages.length !== this.size) {
        throw new RangeError(
          `sendMessages messages: expected an array of ${this.size} messages, got ${Array.isArray(messages) ? messages.length : String(messages)}`,
        );
      }
      return this.run(CMD_MESSAGE, [], messages, 'message call', options);
    }) as Promise<unknown[]>;
  }

  /**
   * Runs every live worker's interrupt handler (serveWorker's `interrupt`) and waits for them, up to
   * `boundMs`, blocking this thread: meant for the moment the job is being aborted, when nothing else
   * is to run. Idle workers run it at once, a worker inside a call when the call ends (abort the comm
   * group first to end it); one that does not answer in time is left behind. Returns how many answered.
   */
  interrupt(boundMs: number): { answered: number; of: number; ms: number } {
    const t0 = performance.now();
    const { i32 } = this.views;
    const of = this.size - this.dead.size;
    if (this.closing || of === 0) return { answered: 0, of, ms: 0 };
    const before = Atomics.load(i32, INTERRUPT_ACKS);
    const n = Atomics.add(i32, INTERRUPT, 1) + 1;
    // Every rank's WAKE word changes (to a value no call number takes, so a later call's store still
    // changes it) before the notify: a rank about to park sees the new word and does not sleep.
    for (let r = 0; r < this.size; r++) {
      const at = wakeIndex(this.size, r);
      Atomics.store(i32, at, -n);
      Atomics.notify(i32, at);
    }
    for (;;) {
      const acks = Atomics.load(i32, INTERRUPT_ACKS);
      const left = boundMs - (performance.now() - t0);
      if (acks - before >= of || left <= 0) return { answered: Math.min(of, acks - before), of, ms: performance.now() - t0 };
      Atomics.wait(i32, INTERRUPT_ACKS, acks, left);
    }
  }

  /** Terminates one worker as a crash would (fault injection; the pool becomes unusable). */
  async terminateWorker(rank: number): Promise<void> {
    const w = this.workers[rank];
    if (w === undefined) throw new RangeError(`terminateWorker rank: expected an integer in [0, ${this.size}), got ${String(rank)}`);
    await w.terminate();
  }

  /** Terminates every worker; idempotent; pending and later calls reject with PoolClosedError. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    livePools.delete(this);
    const { i32 } = this.views;
    Atomics.store(i32, STATE, 1);
    Atomics.store(i32, CMD, CMD_CLOSE);
    const seq = Atomics.add(i32, SEQ, 1) + 1;
    for (let r = 0; r < this.size; r++) wakeRank(i32, this.size, r, seq); // every rank directly: a dead one would cut a subtree off
    if (this.commInit) abortShmGroup(this.commInit, 'closed');
    this.fail(new PoolClosedError('WorkerPool: pool is closed'));
    const bounded = (w: Worker): Promise<unknown> => Promise.race([w.terminate(), new Promise((r) => setTimeout(r, 5000).unref())]);
    this.closing = Promise.all(this.workers.map(bounded)).then(() => undefined);
    return this.closing;
  }

  /** True when no call is queued or running (so callSync may use the control block). */
  get idle(): boolean {
    return this.busy === 0 && !this.closing && !this.failure;
  }

  /**
   * Runs a command on every worker and BLOCKS the calling thread until they finish (bounded by
   * timeoutMs). Only for short commands while the pool is idle, e.g. reading a value from rank 0
   * inside a synchronous getter. A worker failure gives an error naming the rank.
   */
  callSync(command: number, args: ArrayLike<number>, timeoutMs = 10_000): number[] {
    if (!this.idle) {
      throw new PoolError(
        this.closing ? 'WorkerPool: pool is closed' : this.failure ? this.failure.message : 'WorkerPool: a call is in progress; await it first',
      );
    }
    const { i32 } = this.views;
    if (this.commInit && shmGroupAbortState(this.commInit)) resetShmGroup(this.commInit);
    this.publish(this.writeCall(command, args, true));
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(i32, DONE);
      if (done >= this.size) break;
      const left = deadline - performance.now();
      if (left <= 0) {
        const error = new PoolTimeoutError(`callSync(${command}): timed out after ${timeoutMs} ms (the pool is now unusable)`, []);
        this.failure = error;
        throw error;
      }
      Atomics.wait(i32, DONE, done, left);
    }
    for (let r = 0; r < this.size; r++) {
      if (Atomics.load(i32, STATUS + r) === STATUS_FAILED) throw new PoolError(`callSync(${command}): rank ${r} failed (its report follows asynchronously)`);
    }
    return Array.from(this.views.results);
  }

  /**
   * Gets the pool ready for a close that reads results back first: refuses calls not started yet,
   * stops the call in progress (its collectives are aborted, so ranks waiting for each other return
   * at once; a call that finishes anyway resolves as usual) and waits at most `graceMs` for it.
   * Resolves true when every worker is back waiting (the pool is idle: callSync works); false when
   * not (the call is rejected and the pool marked failed; callRank0Sync may still reach rank 0).
   */
  async quiesce(graceMs: number): Promise<boolean> {
    if (this.closing) return false;
    this.stopping = true;
    try {
      if (this.busy > 0 && this.commInit) abortShmGroup(this.commInit, 'closed');
      const deadline = performance.now() + graceMs;
      while (this.busy > 0) {
        const left = deadline - performance.now();
        if (left <= 0) break;
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([this.queue, new Promise<void>((r) => { timer = setTimeout(r, left); })]);
        clearTimeout(timer);
      }
      if (this.busy === 0) return this.failure === null && !this.closing;
      const { i32 } = this.views;
      const late: number[] = [];
      for (let r = 0; r < this.size; r++) if (Atomics.load(i32, STATUS + r) === STATUS_PENDING) late.push(r);
      const still = `rank${late.length > 1 ? 's' : ''} ${late.join(', ')} still running`;
      this.failure ??= new PoolTimeoutError(`the call in progress did not stop within ${graceMs} ms of close (${still})`, late);
      this.fail(new PoolClosedError('WorkerPool: the pool closed during the call'));
      return false;
    } finally {
      this.stopping = false;
    }
  }

  /** Whether rank 0's thread is alive and the pool not closed (callRank0Sync may reach it). */
  get rank0Alive(): boolean {
    return !this.closing && !this.dead.has(0);
  }

  /**
   * Runs a short command on rank 0 alone and BLOCKS until it is done (bounded by timeoutMs):
   * first until rank 0 has finished the last call, then until it has run this one. For reading
   * rank 0's values when the pool failed (another rank died or hung) or no longer takes calls;
   * the other ranks may run the command too, or not, or late: its handler must ignore them.
   */
  callRank0Sync(command: number, args: ArrayLike<number>, timeoutMs: number): number {
    if (this.closing) throw new PoolClosedError('WorkerPool: pool is closed');
    if (this.dead.has(0)) throw new PoolError('rank 0 has ended');
    if (this.busy > 0 && !this.failure) throw new PoolError('WorkerPool: a call is in progress; await it first');
    // A healthy idle pool runs it on every rank: a late rank must not count towards the next call.
    if (!this.failure) return this.callSync(command, args, timeoutMs)[0]!;
    const { i32 } = this.views;
    const ack = ackIndex(this.size, 0);
    const deadline = performance.now() + timeoutMs;
    const awaitAck = (seq: number, what: string): void => {
      for (;;) {
        const done = Atomics.load(i32, DONE);
        if (Atomics.load(i32, ack) === seq) return;
        const left = deadline - performance.now();
        if (left <= 0) throw new PoolTimeoutError(`rank 0 did not ${what} within ${timeoutMs} ms`, [0]);
        Atomics.wait(i32, DONE, done, Math.min(left, 20));
      }
    };
    awaitAck(this.seq, 'finish its last call'); // until then it may still read the arguments
    const seq = this.writeCall(command, args, false);
    this.publish(seq);
    awaitAck(seq, `answer command ${command}`);
    if (Atomics.load(i32, STATUS) === STATUS_FAILED) throw new PoolError(`rank 0 failed command ${command} (its report follows asynchronously)`);
    return this.views.results[0]!;
  }

  /**
   * Writes a call into the control block: its arguments and command, and PENDING statuses for every
   * rank (and a zero DONE count), or for rank 0 alone. Returns its sequence number; nothing runs
   * until {@link publish}.
   */
  private writeCall(command: number, args: ArrayLike<number>, everyRank: boolean): number {
    const { i32, args: argv } = this.views;
    const seq = ++this.seq;
    for (let i = 0; i < args.length; i++) argv[i] = args[i]!;
    Atomics.store(i32, ARGC, args.length);
    Atomics.store(i32, CMD, command);
    if (everyRank) {
      for (let r = 0; r < this.size; r++) Atomics.store(i32, STATUS + r, STATUS_PENDING);
      Atomics.store(i32, DONE, 0);
    } else {
      Atomics.store(i32, STATUS, STATUS_PENDING);
    }
    return seq;
  }

  /** Starts the call written with sequence number `seq`: the workers wake and run it. */
  private publish(seq: number): void {
    const { i32 } = this.views;
    Atomics.store(i32, SEQ, seq);
    const [first, end] = wakeChildren(-1, this.size, this.wakeFanout);
    for (let r = first; r < end; r++) wakeRank(i32, this.size, r, seq);
  }

  private busy = 0;

  private enqueue<T>(body: () => Promise<T>): Promise<T> {
    this.busy++;
    const next = this.queue.then(() => {
      if (this.closing) throw new PoolClosedError('WorkerPool: pool is closed; start a new pool');
      if (this.stopping) throw new PoolClosedError('WorkerPool: the pool is closing; the call was not started');
      if (this.failure) throw this.failure.again();
      return body();
    });
    // The count drops before the queue moves on, so whoever awaits the queue sees it settled.
    const settled = (): void => { this.busy--; };
    this.queue = next.then(settled, settled);
    return this.atCaller(next);
  }

  /**
   * Each caller gets its own error object, whose stack is its own call's: taken when the rejection
   * reaches this async function, its async frames are the chain of awaits that leads to the call
   * (the user's own functions included), at no cost to calls that succeed.
   */
  private async atCaller<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (e) {
      throw e instanceof PoolError ? e.at(new CallSite(this.atCaller)) : e;
    }
  }

  private async run(cmd: number, args: ArrayLike<number>, messages: readonly unknown[] | null, internal: string, options: CallOptions): Promise<unknown[]> {
    const what = options?.label ?? internal;
    const timeoutMs = positive(options?.timeoutMs ?? this.timeoutMs, `${what} options.timeoutMs`);
    const { i32 } = this.views;
    if (this.commInit && shmGroupAbortState(this.commInit)) resetShmGroup(this.commInit); // no rank is inside a collective now
    const seq = this.writeCall(cmd, args, true);
    messages?.forEach((payload, r) => this.workers[r]!.postMessage({ seq, payload }));
    for (const w of this.workers) w.ref();
    try {
      this.publish(seq);
      await this.awaitDone(what, timeoutMs);
      const deadline = performance.now() + Math.max(1000, timeoutMs);
      const failed: number[] = [];
      for (let r = 0; r < this.size; r++) if (Atomics.load(i32, STATUS + r) === STATUS_FAILED) failed.push(r);
      if (failed.length > 0) {
        if (this.stopping) throw new PoolClosedError(`${what}: stopped because the pool is closing`);
        const reports = await Promise.all(failed.map((r) => this.take('error', seq, r, deadline)));
        throw WorkerError.fromReports(reports, failed, options?.label ?? null);
      }
      if (messages === null) return Array.from(this.views.results);
      const replies = await Promise.all(this.workers.map((_, r) => this.take('reply', seq, r, deadline)));
      return replies.map((x) => (x.type === 'reply' ? x.value : undefined));
    } finally {
      if (!this.failure && !this.closing) for (const w of this.workers) w.unref();
    }
  }

  /**
   * Resolves when DONE reaches n; rejects on a death, close, or the timeout. The wait itself has no
   * timeout: V8 keeps ~300 bytes per Atomics.waitAsync with a finite one (a million calls grew the
   * process by 360 MB), so the bound is a timer of ours that wakes the wait when it expires.
   */
  private awaitDone(what: string, timeoutMs: number): Promise<void> {
    const { i32 } = this.views;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let timer: SafeTimer | null = null;
      const settle = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        timer?.clear();
        this.pending = null;
        if (error) reject(error);
        else resolve();
      };
      this.pending = settle;
      const expire = (): void => {
        if (settled) return;
        if (Atomics.load(i32, DONE) >= this.size) return settle(null);
        const late: number[] = [];
        for (let r = 0; r < this.size; r++) if (Atomics.load(i32, STATUS + r) === STATUS_PENDING) late.push(r);
        const ranks = `rank${late.length > 1 ? 's' : ''} ${late.join(', ')}`;
        const error = new PoolTimeoutError(
          `${what}: timed out after ${timeoutMs} ms; ${ranks} did not finish (the pool is now unusable: close it and start a new one)`,
          late,
        );
        this.failure = error;
        if (this.commInit) abortShmGroup(this.commInit, 'timeout');
        for (const w of this.workers) w.unref();
        settle(error);
        Atomics.notify(i32, DONE); // wakes the dangling waitAsync
      };
      const poll = (): void => {
        for (;;) {
          if (settled) return;
          const done = Atomics.load(i32, DONE);
          if (done >= this.size) return settle(null);
          const r = waitAsync(i32, DONE, done);
          if (r.async) {
            void (r.value as Promise<string>).then(poll);
            return;
          }
        }
      };
      if (this.controllerSpinMicros > 0) {
        const until = performance.now() + this.controllerSpinMicros / 1000;
        while (Atomics.load(i32, DONE) < this.size && performance.now() < until) { /* a short call ends without an event-loop wake-up */ }
        if (Atomics.load(i32, DONE) >= this.size) return settle(null);
      }
      if (Number.isFinite(timeoutMs)) timer = safeTimeout(expire, timeoutMs);
      poll();
    });
  }

  /** A worker's report for (seq, rank), waiting for it when it is still in the message queue. */
  private take(type: 'error' | 'reply', seq: number, rank: number, deadline: number): Promise<WorkerReport> {
    const key = `${type}:${seq}:${rank}`;
    const ready = this.inbox.get(key);
    if (ready) {
      this.inbox.delete(key);
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => {
      const timer = safeTimeout(() => {
        this.waiters.delete(key);
        reject(new PoolTimeoutError(`rank ${rank} finished call ${seq} but its ${type} report never arrived`, [rank]));
      }, Math.max(0, deadline - performance.now()));
      this.waiters.set(key, {
        resolve: (report) => {
          timer.clear();
          resolve(report);
        },
        reject: (error) => {
          timer.clear();
          reject(error);
        },
      });
    });
  }

  private onReport(report: WorkerReport): void {
    if (report.type === 'ready') return;
    const key = `${report.type}:${report.seq}:${report.rank}`;
    const waiter = this.waiters.get(key);
    if (waiter) {
      this.waiters.delete(key);
      waiter.resolve(report);
    } else if (report.seq === this.seq) this.inbox.set(key, report);
  }

  /** A worker died: the pool is unusable; the pending call and the comm group are aborted now. */
  private onDeath(rank: number, error: WorkerError): void {
    if (this.closing || this.failure) return;
    this.failure = error;
    if (this.commInit) abortShmGroup(this.commInit, 'died', rank);
    for (const w of this.workers) w.unref();
    this.fail(error);
    this.onWorkerDeath?.(rank, error);
  }

  private fail(error: Error): void {
    this.pending?.(error);
    Atomics.notify(this.views.i32, DONE); // wakes the dangling waitAsync
    for (const [key, waiter] of this.waiters) {
      this.waiters.delete(key);
      waiter.reject(error);
    }
  }

  private awaitReady(timeoutMs: number): Promise<void> {
    const ready = new Set<number>();
    return new Promise<void>((resolve, reject) => {
      const timer = safeTimeout(() => {
        const late = this.workers.map((_, r) => r).filter((r) => !ready.has(r));
        reject(new PoolTimeoutError(
          `WorkerPool.start: rank${late.length > 1 ? 's' : ''} ${late.join(', ')} did not report ready within ${timeoutMs} ms`,
          late,
        ));
      }, timeoutMs);
      const failStart = (error: Error): void => {
        timer.clear();
        reject(error);
      };
      this.workers.forEach((w, rank) => {
        let cause: Error | null = null;
        w.on('message', (m: WorkerReport) => {
          if (m.type === 'ready') {
            ready.add(rank);
            if (ready.size === this.size) {
              timer.clear();
              resolve();
            }
          } else if (m.type === 'error' && m.seq === 0) failStart(WorkerError.fromReports([m], [rank], 'WorkerPool.start (init)'));
          else this.onReport(m);
        });
        w.on('error', (e: Error) => {
          cause = e;
          this.dead.add(rank);
          const error = WorkerError.death(rank, e, null);
          if (ready.size < this.size) failStart(error);
          this.onDeath(rank, error);
        });
        w.on('exit', (code: number) => {
          this.dead.add(rank);
          const error = WorkerError.death(rank, cause, code);
          if (ready.size < this.size) failStart(error);
          this.onDeath(rank, error);
        });
      });
    });
  }
}
