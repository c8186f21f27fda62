// Whether the controller's event loop stays responsive while MpiCommunicator.allReduce moves large
// arrays: a 1 ms interval timer records how late each tick fires during back-to-back all-reduces, with
// the given spin setting (microseconds of MPI_Test per event-loop turn; one setting per job). Also reports the all-reduce's
// median time and the longest single MPI_Test call (MPI does its work inside MPI_Test, so no spin
// setting can make a turn shorter than that), and the same timer with no collective running.
// Usage: mpiexec.mpich -np 2 node dist/bench/mpi-event-loop.js [--sizes-mb 16,64] [--spin-us 1000] [--calls 20]
import { MpiCommunicator } from '../src/comm/mpi/mpi-communicator.js';
import type { MpiRequest } from '../src/comm/mpi/ffi.js';
import { DEFAULT_SPIN_MICROS } from '../src/comm/mpi/request-poll.js';
import { lateness, quantile } from './_lateness.js';
import { option as argOption } from './_mpi-driver.js';

const option = (name: string, fallback: string): string => argOption(process.argv.slice(2), name, fallback);
const sizesMb = option('--sizes-mb', '16,64').split(',').map(Number);
const calls = Number(option('--calls', '20'));
const median = (xs: readonly number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5);

// MPI initializes once per process: one spin setting per job.
const spinMicros = Number(option('--spin-us', String(DEFAULT_SPIN_MICROS)));
const comm = MpiCommunicator.init({ spinMicros });
const { mpi, rank, size } = comm;
// The longest MPI_Test call, measured by wrapping the library's method (benchmark only).
let longestTest = 0;
const test = mpi.test.bind(mpi);
mpi.test = (req: MpiRequest, flag: Int32Array): boolean => {
  const t0 = performance.now();
  const done = test(req, flag);
  longestTest = Math.max(longestTest, performance.now() - t0);
  return done;
};

const rows: string[] = [];
const idle = await lateness(() => new Promise((r) => setTimeout(r, 300)));
rows.push(`| idle | - | - | ${quantile(idle, 0.5).toFixed(2)} | ${quantile(idle, 0.99).toFixed(2)} | ${idle.at(-1)!.toFixed(2)} | - |`);
for (const mb of sizesMb) {
  const buf = new Float32Array(new SharedArrayBuffer(mb * 1024 * 1024)).fill(1);
  for (let i = 0; i < 3; i++) await comm.allReduce(buf);
  longestTest = 0;
  const ms: number[] = [];
  const late = await lateness(async () => {
    for (let i = 0; i < calls; i++) {
      const t0 = performance.now();
      await comm.allReduce(buf);
      ms.push(performance.now() - t0);
    }
  });
  const worst = new Float64Array(new SharedArrayBuffer(8 * 5));
  worst.set([median(ms), quantile(late, 0.5), quantile(late, 0.99), late.at(-1) ?? NaN, longestTest]);
  await comm.allReduce(worst, { op: 'max' });
  const [t, p50, p99, max, longest] = Array.from(worst, (x) => x.toFixed(2));
  rows.push(`| ${spinMicros} | ${mb} | ${t} | ${p50} | ${p99} | ${max} | ${longest} |`);
}
if (rank === 0) {
  console.log(`event-loop lateness of a 1 ms timer during ${calls} back-to-back MpiCommunicator.allReduce calls, ${size} processes, ${mpi.abi};`
    + ' slowest rank\n');
  console.log('| spin us | MB | all-reduce ms (median) | lateness median ms | p99 ms | max ms | longest MPI_Test ms |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
}
await comm.finalize();
