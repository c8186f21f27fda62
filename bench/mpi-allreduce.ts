// All-reduce time of the MPI communicator (MpiCommunicator.allReduce: header exchange, MPI_Iallreduce
// in place on SharedArrayBuffer memory, MPI_Test polled from the event loop) against MPI's own
// non-blocking all-reduce called through the same binding and waited for in C (MPI_Iallreduce +
// MPI_Wait: no header, no event loop), for float32 arrays of 1 MB to 64 MB, median of --reps runs
// each, every run starting after a barrier. Rank 0 prints a markdown table; busbw is the NCCL-tests
// convention (bytes x 2(n-1)/n / time). For MPI's own figure in C, see bench/c/mpi_allreduce.c.
// Usage: mpirun -np 2 node dist/bench/mpi-allreduce.js [--reps 11] [--max-mb 64] [--spin-us 1000]
//        (Open MPI as root: add --allow-run-as-root; MPICH: mpiexec.mpich -np 2 ...)
// Without a launcher it is the driver: it builds bench/c/mpi_allreduce.c with the MPI's mpicc, runs
// itself and the C program under that MPI's launcher for each process count, and prints one table:
//   node dist/bench/mpi-allreduce.js [--mpi openmpi|mpich] [--np 2,4] [--reps 11] [--max-mb 256] [--rounds 1] [--spin-us N]
//   [--c-binary PATH] (a build of the C program made elsewhere, for a machine without mpicc: see bench/device-mpi.sh)
import { MpiCommunicator } from '../src/comm/mpi/mpi-communicator.js';
import { detectLauncher } from '../src/comm/mpi/find-mpi.js';
import { DEFAULT_SPIN_MICROS } from '../src/comm/mpi/request-poll.js';
import { runDriver } from './_mpi-driver.js';

if (detectLauncher() === null) {
  await runDriver(process.argv.slice(2), new URL(import.meta.url));
  process.exit(0);
}

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  const v = i >= 0 ? Number(argv[i + 1]) : fallback;
  if (!(v > 0) && !(name === '--spin-us' && v === 0)) throw new Error(`${name}: expected a positive number, got ${argv[i + 1]}`);
  return v;
};
const reps = flag('--reps', 11);
const maxMb = flag('--max-mb', 64);
const spinMicros = flag('--spin-us', DEFAULT_SPIN_MICROS);

const comm = MpiCommunicator.init({ spinMicros });
const { mpi, rank, size } = comm;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median ms of `reps` runs of `op` (after one warm-up run), each after a barrier. */
async function time(op: () => Promise<void> | void): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i <= reps; i++) {
    await comm.barrier();
    const t0 = performance.now();
    await op();
    if (i > 0) ms.push(performance.now() - t0);
  }
  // Every rank reports the slowest rank's time of each size (the collective ends when the last rank does).
  const worst = new Float64Array(new SharedArrayBuffer(8));
  worst[0] = median(ms);
  await comm.allReduce(worst, { op: 'max' });
  return worst[0]!;
}

const rows: string[] = [];
const float = mpi.handles.datatypes.float32;
const sum = mpi.handles.ops.sum;
const world = mpi.handles.commWorld;
for (let mb = 1; mb <= maxMb; mb *= 2) {
  const n = (mb * 1024 * 1024) / 4;
  const buf = new Float32Array(new SharedArrayBuffer(n * 4)).fill(1);
  const ours = await time(async () => {
    await comm.allReduce(buf);
  });
  const req = new BigInt64Array(new SharedArrayBuffer(8));
  const own = await time(() => {
    mpi.iallreduce(null, buf, n, float, sum, world, req);
    mpi.wait(req);
  });
  const busbw = (ms: number): string => ((mb * 1024 * 1024 * 2 * (size - 1)) / size / (ms / 1000) / 1e9).toFixed(2);
  rows.push(`| ${mb} | ${ours.toFixed(3)} | ${own.toFixed(3)} | ${((own / ours) * 100).toFixed(0)}% | ${busbw(ours)} | ${busbw(own)} |`);
}
if (rank === 0) {
  console.log(`MPI all-reduce, float32 sum in place, ${size} processes, ${mpi.abi} (${mpi.path}): ${mpi.libraryVersion().split('\n')[0]}`);
  console.log(`median of ${reps} runs; spin ${spinMicros} us per event-loop turn\n`);
  console.log('| MB | MpiCommunicator ms | MPI_Iallreduce+MPI_Wait ms | ours / MPI speed | busbw GB/s ours | busbw GB/s MPI |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
  for (const r of rows) console.log(`ROW ${r}`); // for the driver
}
await comm.finalize();
