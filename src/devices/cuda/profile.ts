// Per-op timing of CUDA programs, Theano's `profile=True` for this device: with
// SYNK_CUDA_PROFILE=1 every step waits for the stream and its wall time is added to its op's
// total; the table (by total time) is printed to stderr when the thread exits. Off by default:
// waiting after each step removes the overlap between host and GPU that normal runs rely on.
// SYNK_CUDA_PROFILE=gpu instead records an event pair around every step and reads them when the
// run ends: GPU time without a wait per step (where the host falls behind, its gaps count too),
// the figure to set beside a torch.profiler kernel table.
import { threadId } from 'node:worker_threads';
import { config } from '../config.js';
import type { CudaDriver } from './ffi/driver.js';
import type { CUevent, CUstream } from './ffi/types.js';

export const profileMode = config().cudaProfile;
export const profiling = profileMode !== 'off';

interface OpTime { calls: number; ms: number }
const totals = new Map<string, OpTime>();
let registered = false;

/** Adds one step's time (the caller synchronized the stream before reading the clock). */
export function recordStep(op: string, ms: number): void {
  let t = totals.get(op);
  if (!t) totals.set(op, (t = { calls: 0, ms: 0 }));
  t.calls++;
  t.ms += ms;
  if (!registered) {
    registered = true;
    process.on('exit', flushProfile);
  }
}

/** Prints the table once (worker threads call it when they release their GPU: they may not see 'exit'). */
export function flushProfile(): void {
  if (totals.size === 0) return;
  process.stderr.write(profileTable());
  totals.clear();
}

/** Forgets the times recorded so far (e.g. the warm-up's, which include compiling). */
export function resetProfile(): void {
  totals.clear();
}

/** The table of recorded times, largest total first. */
export function profileTable(): string {
  const rows = [...totals].sort((a, b) => b[1].ms - a[1].ms);
  const all = rows.reduce((s, [, t]) => s + t.ms, 0);
  const lines = rows.map(([op, t]) =>
    `${op.padEnd(20)} ${String(t.calls).padStart(8)} ${t.ms.toFixed(2).padStart(10)} ` +
    `${(t.ms / t.calls * 1000).toFixed(1).padStart(10)} ${(100 * t.ms / all).toFixed(1).padStart(6)}%`);
  return [`\ncuda profile (thread ${threadId}): op, calls, total ms, us/call, share`, ...lines, ''].join('\n');
}

interface PendingStep { op: string; start: CUevent; end: CUevent }
const pending: PendingStep[] = [];
const spareEvents: CUevent[] = [];

function event(cu: CudaDriver): CUevent {
  return spareEvents.pop() ?? cu.eventCreate(0);
}

/** 'gpu' mode: records the start of a step on the stream; the returned function records its end. */
export function markStep(cu: CudaDriver, stream: CUstream, op: string): () => void {
  const start = event(cu);
  cu.eventRecord(start, stream);
  return () => {
    const end = event(cu);
    cu.eventRecord(end, stream);
    pending.push({ op, start, end });
  };
}

/** 'gpu' mode, at the end of a run: waits for its last event and adds every marked step's time (the events are kept for reuse). */
export function collectSteps(cu: CudaDriver): void {
  const last = pending.at(-1);
  if (!last) return;
  cu.eventSynchronize(last.end);
  for (const s of pending) {
    recordStep(s.op, cu.eventElapsedTime(s.start, s.end));
    spareEvents.push(s.start, s.end);
  }
  pending.length = 0;
}
