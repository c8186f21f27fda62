// Where the time of one polled MPI_Iallreduce goes: every MPI_Test call is timed, so each run reports
// how many calls it took, the time spent inside them, the time between them (the event loop's turns)
// and the longest call and gap. A "sleep" variant starts the all-reduce, makes no MPI call for
// --sleep-ms (Atomics.wait) and then polls: if it still takes as long after the sleep, MPI made no
// progress on its own (no progress thread; MPICH without MPIR_CVAR_ASYNC_PROGRESS). One size per
// run of --sizes-mb, one poller setting per --spin-us entry (RequestPoller, which yields with setImmediate,
// and the same bursts yielding with setTimeout), all interleaved round by round.
// Usage: mpiexec.mpich -np 2 node dist/bench/mpi-poll-trace.js [--sizes-mb 16,64] [--reps 15] [--spin-us 0,50,1000] [--sleep-ms 20]
//        [--thread multiple] (with MPIR_CVAR_ASYNC_PROGRESS=1 for MPICH's progress thread)
import { MpiCommunicator } from '../src/comm/mpi/mpi-communicator.js';
import type { MpiRequest } from '../src/comm/mpi/ffi.js';
import { RequestPoller } from '../src/comm/mpi/request-poll.js';
import { option as argOption } from './_mpi-driver.js';

const option = (name: string, fallback: string): string => argOption(process.argv.slice(2), name, fallback);
const sizesMb = option('--sizes-mb', '16,64').split(',').map(Number);
const reps = Number(option('--reps', '15'));
const spins = option('--spin-us', '0,50,1000').split(',').map(Number);
const sleepMs = Number(option('--sleep-ms', '20'));
const thread = option('--thread', 'funneled') as 'funneled' | 'multiple';

const comm = MpiCommunicator.init({ threadLevel: thread });
const { mpi, rank, size } = comm;
const { commWorld: world } = mpi.handles;
const float = mpi.handles.datatypes.float32;
const sum = mpi.handles.ops.sum;

/** One run's trace: MPI_Test calls, ms inside them, ms between them, longest call and gap. */
interface Trace { total: number; calls: number; inside: number; between: number; longestCall: number; longestGap: number }
let trace: Trace = { total: 0, calls: 0, inside: 0, between: 0, longestCall: 0, longestGap: 0 };
let lastEnd = 0;
const test = mpi.test.bind(mpi);
mpi.test = (req: MpiRequest, flag: Int32Array): boolean => {
  const t0 = performance.now();
  const done = test(req, flag);
  const t1 = performance.now();
  trace.calls++;
  trace.inside += t1 - t0;
  trace.longestCall = Math.max(trace.longestCall, t1 - t0);
  if (lastEnd > 0) {
    trace.between += t0 - lastEnd;
    trace.longestGap = Math.max(trace.longestGap, t0 - lastEnd);
  }
  lastEnd = t1;
  return done;
};

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const FIELDS = ['total', 'calls', 'inside', 'between', 'longestCall', 'longestGap'] as const;

for (const mb of sizesMb) {
  const n = (mb * 1024 * 1024) / 4;
  const buf = new Float32Array(new SharedArrayBuffer(n * 4)).fill(1);
  const pending = { kind: 'allReduce' as const, seq: 0, deadline: Infinity, timeoutMs: 60_000 };
  const start = (r: MpiRequest): void => mpi.iallreduce(null, buf, n, float, sum, world, r);
  const variants: [string, () => Promise<void> | void][] = [
    ['tight MPI_Test loop', () => {
      const req = new BigInt64Array(new SharedArrayBuffer(8));
      const flag = new Int32Array(1);
      start(req);
      while (!mpi.test(req, flag));
    }],
    [`no MPI call for ${sleepMs} ms, then tight loop`, () => {
      const req = new BigInt64Array(new SharedArrayBuffer(8));
      const flag = new Int32Array(1);
      start(req);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, sleepMs);
      while (!mpi.test(req, flag));
    }],
    // The same bursts as RequestPoller, but yielding through a timer: Node clamps setTimeout to >= 1 ms.
    ...spins.map((spin): [string, () => Promise<void>] => [`burst ${spin} us, then setTimeout(0)`, () => new Promise<void>((resolve) => {
      const req = new BigInt64Array(new SharedArrayBuffer(8));
      const flag = new Int32Array(1);
      start(req);
      const poll = (): void => {
        const until = performance.now() + spin / 1000;
        do if (mpi.test(req, flag)) return resolve(); while (performance.now() < until);
        setTimeout(poll, 0);
      };
      poll();
    })]),
    ...spins.map((spin): [string, () => Promise<void>] => {
      const poller = new RequestPoller(mpi, rank, size, { spinMicros: spin });
      return [`RequestPoller, spin ${spin} us`, () => poller.run(pending, [buf], start)];
    }),
  ];
  const traces = variants.map(() => [] as Trace[]);
  for (let i = 0; i <= reps; i++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (k + i) % variants.length;
      const req = new BigInt64Array(new SharedArrayBuffer(8));
      mpi.ibarrier(world, req);
      mpi.wait(req);
      trace = { total: 0, calls: 0, inside: 0, between: 0, longestCall: 0, longestGap: 0 };
      lastEnd = 0;
      const t0 = performance.now();
      await variants[v]![1]();
      trace.total = performance.now() - t0;
      if (i > 0) traces[v]!.push(trace);
    }
  }
  // Each rank's medians, gathered so rank 0 prints one line per rank and variant.
  const mine = new Float64Array(new SharedArrayBuffer(8 * FIELDS.length * variants.length));
  traces.forEach((ts, v) => FIELDS.forEach((f, j) => (mine[v * FIELDS.length + j] = median(ts.map((t) => t[f])))));
  const all = await comm.allGather(mine);
  if (rank === 0) {
    console.log(`\n${mb} MB, ${size} processes, ${mpi.abi}, thread level ${thread}, medians of ${reps} runs per rank`);
    console.log('| variant | rank | total ms | MPI_Test calls | ms inside | ms between | longest call ms | longest gap ms |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    variants.forEach(([name], v) => all.forEach((a, r) => {
      const x = FIELDS.map((_, j) => a[v * FIELDS.length + j]!);
      const cells = [x[0]!.toFixed(2), x[1]!.toFixed(0), x[2]!.toFixed(2), x[3]!.toFixed(2), x[4]!.toFixed(2), x[5]!.toFixed(3)];
      console.log(`| ${name} | ${r} | ${cells.join(' | ')} |`);
    }));
  }
}
await comm.finalize();
