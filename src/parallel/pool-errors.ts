// The worker pool's errors, the call site a rejection points at, and timers that accept any bound.
//
// A rejection is made for one caller: its stack is the caller's (captured where the rejection reaches
// the caller's chain of awaits, so it reaches the user's own code through async frames), and a
// worker's failure keeps the worker's frames at the end of that stack. Each fact is printed once: the message names the rank and repeats
// the worker's message; the worker's name, message and stack stay readable (originalName, ...) but are
// not own enumerable properties, and there is no `cause` that would print the same message again.

/** Messages from a worker to the controller (the errors are built from them, hence their home here). */
export type WorkerReport =
  | { type: 'ready'; rank: number }
  | { type: 'reply'; seq: number; rank: number; value: unknown }
  | { type: 'error'; seq: number; rank: number; name: string; message: string; stack: string };

/** Frames in this folder are the runtime's plumbing; a rejection's stack leaves them out. */
const INTERNAL_DIR = new URL('.', import.meta.url).href;

/** The stack of a caller (its chain of awaits when captured in an async function), for a rejection to point at. */
export class CallSite {
  private readonly holder: { stack?: string } = {};

  /** `above`: the entry point whose frame and callees are left out (e.g. the public method called). */
  constructor(above: (...args: never[]) => unknown) {
    Error.captureStackTrace(this.holder, above);
  }

  /** The caller's frames as "\n    at ..." lines, the runtime's own frames left out. */
  frames(): string {
    const lines = (this.holder.stack ?? '').split('\n').slice(1);
    const outside = lines.filter((l) => !l.includes(INTERNAL_DIR));
    const kept = outside.length > 0 ? outside : lines;
    return kept.length > 0 ? `\n${kept.join('\n')}` : '';
  }
}

/** Base of the pool's errors. */
export class PoolError extends Error {
  override name = 'PoolError';

  /** A copy of this error whose stack is the caller's (`site`), any worker's frames kept at the end. */
  at(site: CallSite): this {
    const copy = Object.create(Object.getPrototypeOf(this) as object) as this;
    const descriptors = Object.getOwnPropertyDescriptors(this) as Record<string, PropertyDescriptor>;
    delete descriptors['stack'];
    Object.defineProperties(copy, descriptors);
    Object.defineProperty(copy, 'stack', { value: `${this.name}: ${this.message}${site.frames()}${this.stackTail()}`, writable: true, configurable: true });
    return copy;
  }

  /** What follows the caller's frames in the stack (a worker's frames). */
  protected stackTail(): string {
    return '';
  }
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
    return new PoolTimeoutError(`the pool is unusable since ${this.message}`, this.ranks);
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

/** The frames of a worker's stack (its header lines, which repeat the message, left out). */
function workerFrames(stack: string): string {
  const lines = stack.split('\n');
  const first = lines.findIndex((l) => /^\s+at /.test(l));
  return first >= 0 ? lines.slice(first).join('\n') : `    ${stack}`;
}

/**
 * A worker failed: its handler threw (`died` false; the pool stays usable) or it died (`died`
 * true; the pool is unusable). `rank` is the first rank with an original error (not merely a
 * CommAbortedError caused by another rank's failure); `ranks` lists every rank that failed.
 * The message reads "rank R: <the worker's message>"; the worker's frames end the stack.
 */
export class WorkerError extends PoolError {
  override name = 'WorkerError';
  readonly rank: number;
  readonly ranks: readonly number[];
  readonly died: boolean;
  readonly exitCode: number | null;
  declare private readonly original: { readonly name: string; readonly message: string; readonly stack: string };

  constructor(message: string, o: Original) {
    super(message);
    this.rank = o.rank;
    this.ranks = o.ranks;
    this.died = o.died;
    this.exitCode = o.exitCode;
    // Not enumerable: util.inspect (an uncaught rejection) would print the worker's message again.
    Object.defineProperty(this, 'original', { value: { name: o.name, message: o.message, stack: o.stack }, enumerable: false });
    this.stack = `${this.name}: ${message}${this.stackTail()}`;
  }

  /** The worker's error's name (e.g. 'RangeError'). */
  get originalName(): string {
    return this.original.name;
  }

  get originalMessage(): string {
    return this.original.message;
  }

  /** The worker's own stack, as the worker printed it. */
  get originalStack(): string {
    return this.original.stack;
  }

  protected override stackTail(): string {
    return `\n    --- ${this.original.name} on rank ${this.rank}, in the worker ---\n${workerFrames(this.original.stack)}`;
  }

  /** `label` (e.g. the function called) prefixes the message when given. */
  static fromReports(reports: readonly WorkerReport[], ranks: readonly number[], label: string | null): WorkerError {
    const errors = reports.filter((r): r is Extract<WorkerReport, { type: 'error' }> => r.type === 'error');
    const first = errors.find((r) => r.name !== 'CommAbortedError') ?? errors[0];
    const prefix = label ? `${label}: ` : '';
    if (first === undefined) throw new PoolError(`${prefix}ranks ${ranks.join(', ')} failed without a report`);
    const others = ranks.filter((r) => r !== first.rank);
    const tail = others.length > 0 ? ` (rank${others.length > 1 ? 's' : ''} ${others.join(', ')} failed too)` : '';
    return new WorkerError(`${prefix}rank ${first.rank}: ${first.message}${tail}`, { ...first, ranks, exitCode: null, died: false });
  }

  /** The error for a worker that died or exited while calls were pending. */
  static death(rank: number, cause: Error | null, exitCode: number | null): WorkerError {
    const how = cause ? `died: ${cause.message}` : `exited with code ${exitCode}`;
    const stack = cause?.stack ?? `(rank ${rank} exited with code ${exitCode}; no stack)`;
    const message = `rank ${rank} ${how} (the pool is unusable: close it and start a new one)`;
    return new WorkerError(message, { rank, ranks: [rank], name: cause?.name ?? 'WorkerExit', message: cause?.message ?? how, stack, exitCode, died: true });
  }

  /** The same failure, for a later call on the unusable pool. */
  again(): WorkerError {
    const o = { rank: this.rank, ranks: this.ranks, ...this.original, exitCode: this.exitCode, died: this.died };
    return new WorkerError(`the pool is unusable since ${this.message}`, o);
  }
}

/** A bound in milliseconds: a positive number, Infinity for none. */
export function positive(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value > 0)) {
    throw new RangeError(`${what}: expected a positive number of milliseconds (Infinity for no bound), got ${String(value)}`);
  }
  return value;
}

/** Node's timers hold at most this many milliseconds; a longer delay would fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SafeTimer {
  clear(): void;
  /** Lets the process exit while the timer waits. */
  unref(): SafeTimer;
}

/** setTimeout for any delay: a delay past MAX_TIMER_MS is waited in several steps; Infinity never fires. */
export function safeTimeout(fire: () => void, ms: number): SafeTimer {
  const due = performance.now() + ms;
  let handle: ReturnType<typeof setTimeout> | null = null;
  let cleared = false;
  let unref = false;
  const arm = (): void => {
    if (cleared || !Number.isFinite(due)) return;
    const left = Math.max(0, due - performance.now());
    const step = Math.min(left, MAX_TIMER_MS);
    handle = setTimeout(() => (left > MAX_TIMER_MS ? arm() : fire()), step);
    if (unref) handle.unref();
  };
  arm();
  const timer: SafeTimer = {
    clear() {
      cleared = true;
      if (handle) clearTimeout(handle);
    },
    unref() {
      unref = true;
      handle?.unref();
      return timer;
    },
  };
  return timer;
}
