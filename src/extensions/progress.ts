// Progress of a long loop (training steps, minibatches): a cli-progress bar on a terminal; without one
// (a log file, CI, a pipe) a plain line every few seconds, because a redrawn bar there is either
// invisible or a flood of control characters.
import cliProgress from 'cli-progress';
import { describe } from '../tensor/ndarray.js';

/** What progress writes to: process.stdout, or anything with write (and isTTY for a terminal). */
export interface ProgressStream {
  /** Writes text as it is (no newline added). */
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/** How progress is shown: the total, a label, the stream and (for tests) a clock. */
export interface ProgressOptions {
  /** Printed first on every line, e.g. 'epoch 2/5'. */
  readonly label: string;
  /** The value that means done (a count of steps, rows, ...). */
  readonly total: number;
  /** What is counted, plural (default 'steps'). */
  readonly unit?: string;
  /** Default process.stdout. */
  readonly stream?: ProgressStream;
  /** Draw a bar (default: whether the stream is a terminal). */
  readonly tty?: boolean;
  /** Without a terminal: milliseconds between two plain lines (default 5000). */
  readonly intervalMs?: number;
  /** The clock in milliseconds (default performance.now; tests pass their own). */
  readonly now?: () => number;
}

/** A running progress display: a bar on a terminal, a plain line every few seconds otherwise. */
export interface Progress {
  /** `done` of `total` so far; `info` (e.g. 'loss 0.4321, 5,120 samples/s') joins the line. */
  update(done: number, info?: string): void;
  /** Ends the bar (it is cleared from the terminal: the caller prints its own summary line). */
  stop(): void;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(0)} s`;

function checkOptions(o: ProgressOptions): void {
  if (typeof o !== 'object' || o === null) throw new TypeError(`progress: options must be an object, got ${describe(o)}`);
  if (typeof o.label !== 'string') throw new TypeError(`progress: label must be a string, got ${describe(o.label)}`);
  if (typeof o.total !== 'number' || !Number.isFinite(o.total) || o.total < 0) {
    throw new RangeError(`progress: total must be a finite number >= 0, got ${describe(o.total)}`);
  }
  if (o.unit !== undefined && typeof o.unit !== 'string') throw new TypeError(`progress: unit must be a string, got ${describe(o.unit)}`);
  if (o.intervalMs !== undefined && !(typeof o.intervalMs === 'number' && o.intervalMs > 0 && Number.isFinite(o.intervalMs))) {
    throw new RangeError(`progress: intervalMs must be a positive number of milliseconds, got ${describe(o.intervalMs)}`);
  }
  if (o.stream !== undefined && typeof (o.stream as { write?: unknown }).write !== 'function') {
    throw new TypeError(`progress: stream must have a write method, got ${describe(o.stream)}`);
  }
  if (o.now !== undefined && typeof o.now !== 'function') throw new TypeError(`progress: now must be a function, got ${describe(o.now)}`);
}

/**
 * Starts showing the progress of a loop of `total` units. On a terminal: a bar redrawn in place.
 * Otherwise: `label: done/total unit (p%), info, t s` once every intervalMs, nothing in between.
 */
export function startProgress(options: ProgressOptions): Progress {
  checkOptions(options);
  const { label, total } = options;
  const unit = options.unit ?? 'steps';
  const stream = options.stream ?? process.stdout;
  const now = options.now ?? (() => performance.now());
  const checkDone = (done: number): void => {
    if (typeof done !== 'number' || !Number.isFinite(done)) throw new TypeError(`progress.update: done must be a finite number, got ${describe(done)}`);
  };
  if (options.tty ?? stream.isTTY === true) {
    const bar = new cliProgress.SingleBar({
      stream: stream as NodeJS.WritableStream,
      format: `${label} |{bar}| {percentage}% | {value}/{total} ${unit} | {info}{duration_formatted}`,
      clearOnComplete: true,
      hideCursor: true,
      barsize: 30,
      gracefulExit: true,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { info: '' });
    return {
      update(done, info) { checkDone(done); bar.update(done, { info: info ? `${info} | ` : '' }); },
      stop() { bar.stop(); },
    };
  }
  const interval = options.intervalMs ?? 5000;
  const start = now();
  let last = start;
  let stopped = false;
  return {
    update(done, info) {
      checkDone(done);
      if (stopped) return;
      const t = now();
      if (t - last < interval) return;
      last = t;
      const percent = total > 0 ? Math.floor((100 * done) / total) : 100;
      stream.write(`${label}: ${done}/${total} ${unit} (${percent}%)${info ? `, ${info}` : ''}, ${seconds(t - start)}\n`);
    },
    stop() { stopped = true; },
  };
}
