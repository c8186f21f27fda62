// Prompt release of large shared buffers. A SharedArrayBuffer's memory goes back to the system only
// once every thread that held it has collected its JS object; an idle worker (asleep in Atomics.wait)
// never allocates, so it never collects, and a controller that freed a large Data may not allocate
// again for a long time. So once enough bytes became garbage (GC_THRESHOLD_BYTES) the thread asks
// V8 for a full collection: its cost (milliseconds on a small heap) is paid at most once per
// GC_THRESHOLD_BYTES freed. The collection function is V8's `gc`: the controller turns V8's
// expose-gc flag on while fork() starts its workers (each worker's context then has `gc`), takes
// one for itself from a fresh context meanwhile, and turns the flag off again. The flag is
// process-wide, so it is only ever switched by the main thread (a worker switching it could take it
// away from a context another thread is making); without it nothing is forced.
import v8 from 'node:v8';
import vm from 'node:vm';
import { isMainThread } from 'node:worker_threads';

/** Bytes of freed shared memory after which a thread collects garbage. */
export const GC_THRESHOLD_BYTES = 64 * 2 ** 20;

let collector: (() => void) | null | undefined;

function exposedGc(): (() => void) | null {
  const exposed = (globalThis as { gc?: unknown }).gc;
  return typeof exposed === 'function' ? (exposed as () => void) : null;
}

/** Main thread: turns expose-gc on (unless it is on already); returns how to turn it back off. */
function exposeGc(): () => void {
  if (!isMainThread || exposedGc()) return () => undefined;
  try {
    v8.setFlagsFromString('--expose-gc');
    const found = vm.runInNewContext('gc') as unknown;
    if (typeof found === 'function') collector ??= found as () => void;
  } catch {
    return () => undefined;
  }
  return () => v8.setFlagsFromString('--no-expose-gc');
}

function findCollector(): (() => void) | null {
  if (collector !== undefined && collector !== null) return collector;
  const exposed = exposedGc();
  if (exposed) return (collector = exposed);
  if (isMainThread) exposeGc()();
  return (collector ??= null);
}

/** Runs `start` (which starts worker threads) with `gc` exposed to the contexts made meanwhile. */
export async function withGcForWorkers<T>(start: () => Promise<T>): Promise<T> {
  const restore = exposeGc();
  try {
    return await start();
  } finally {
    restore();
  }
}

/**
 * After a collection, an idle worker collects again after these waits: code V8 was still optimizing
 * in the background can hold the last call's arrays (a closure over an input's view) until the
 * optimized code is installed, which happens only once the thread runs again.
 */
const RECHECK_MS = [10, 50, 250, 1000];

/** Counts bytes that became garbage in this thread and collects once they reach the threshold. */
export class GarbageMeter {
  private bytes = 0;
  private rechecks: number[] = [];

  note(bytes: number): void {
    if (bytes > 0) this.bytes += bytes;
  }

  get due(): boolean {
    return this.bytes >= GC_THRESHOLD_BYTES;
  }

  /** Collects now if due (call it where nothing of the freed memory is referenced any more). */
  collectIfDue(): boolean {
    if (!this.due) return false;
    this.bytes = 0;
    const gc = findCollector();
    gc?.();
    this.rechecks = gc ? [...RECHECK_MS] : [];
    return gc !== null;
  }

  /**
   * For a worker between calls: collects if due (idle false) or once more (idle true, see
   * RECHECK_MS); returns how long to stay idle before the next run, or null when done.
   */
  housekeeping(idle: boolean): number | null {
    if (idle) findCollector()?.();
    else this.collectIfDue();
    const next = this.rechecks[0];
    if (idle) this.rechecks.shift();
    return idle ? this.rechecks[0] ?? null : next ?? null;
  }
}

const controllerMeter = new GarbageMeter();
let scheduled = false;
let urgent = false;
let lastEnd = 0;
let lastCost = 0;

function collectOnController(): void {
  // Unless memory was freed explicitly, at most 1/20 of the time goes to forced collections.
  const wait = urgent ? 0 : lastEnd + 20 * lastCost - performance.now();
  if (wait > 0) {
    setTimeout(collectOnController, wait).unref();
    return;
  }
  scheduled = false;
  urgent = false;
  const t0 = performance.now();
  if (controllerMeter.collectIfDue()) {
    lastEnd = performance.now();
    lastCost = lastEnd - t0;
  }
}

function schedule(bytes: number, explicit: boolean): void {
  controllerMeter.note(bytes);
  // One large buffer is worth a collection at once: its cost is small per byte.
  if (explicit || bytes >= GC_THRESHOLD_BYTES) urgent = true;
  if (!controllerMeter.due || scheduled || !isMainThread) return;
  scheduled = true;
  setImmediate(collectOnController).unref();
}

/**
 * `bytes` of shared memory were let go of explicitly in this (the main) thread (a Data freed or
 * reallocated): once enough were, collects on a later turn of the event loop, when the caller's
 * own references are gone.
 */
export function freedSoon(bytes: number): void {
  schedule(bytes, true);
}

/**
 * `bytes` of new shared memory went to the workers, and may be garbage soon: the controller's
 * temporary copies of call inputs die young, and only a collection tells the workers to let go
 * of them. Counts towards a forced collection like freedSoon, but unless one buffer is that large,
 * such collections take at most 1/20 of the time.
 */
export function maybeGarbageSoon(bytes: number): void {
  schedule(bytes, false);
}
