// How late a 1 ms interval timer fires while some work runs: the event-loop responsiveness measure of
// bench/event-loop-lateness.ts (data-parallel calls) and bench/mpi-event-loop.ts (MPI collectives).

/** The q-quantile of an ascending array (NaN when empty). */
export const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

/** Runs `body` while a 1 ms interval records each tick's lateness (ms past when it was due), sorted. */
export async function lateness(body: () => Promise<void>): Promise<number[]> {
  const late: number[] = [];
  let due = performance.now() + 1;
  const timer = setInterval(() => {
    const now = performance.now();
    late.push(Math.max(0, now - due));
    due = now + 1;
  }, 1);
  try {
    await body();
  } finally {
    clearInterval(timer);
  }
  return late.sort((a, b) => a - b);
}
