// Where MpiCommunicator.allReduce's time goes against MPI's own call, step by step: the same float32
// in-place sum through MPI_Allreduce (koffi), MPI_Iallreduce + MPI_Wait, MPI_Iallreduce + MPI_Test in a
// tight loop, MPI_Iallreduce polled from the event loop (RequestPoller, no header), the header
// exchange alone (comm.barrier) and the whole comm.allReduce. The variants run interleaved, one
// of each per round after a barrier, so a machine that gets busier slows them all alike; each
// figure is the slowest rank's median.
// Usage: mpiexec.mpich -np 2 node dist/bench/mpi-allreduce-steps.js [--sizes-mb 16,64] [--reps 21] [--spin-us 1000] [--poller-spins 0,50,1000]
//        [--sync mpi|comm] [--order rotate|blocks]
import koffi from 'koffi';
import { MpiCommunicator } from '../src/comm/mpi/mpi-communicator.js';
import { DEFAULT_SPIN_MICROS, RequestPoller } from '../src/comm/mpi/request-poll.js';
import { option as argOption } from './_mpi-driver.js';

const option = (name: string, fallback: string): string => argOption(process.argv.slice(2), name, fallback);
const sizesMb = option('--sizes-mb', '16,64').split(',').map(Number);
const reps = Number(option('--reps', '21'));
const spinMicros = Number(option('--spin-us', String(DEFAULT_SPIN_MICROS)));
// Further spin settings of the bare RequestPoller to compare (microseconds of MPI_Test per event-loop turn).
// How each run starts: after MPI_Ibarrier + MPI_Wait (mpi), or after comm.barrier() as bench/mpi-allreduce.ts does (comm).
const sync = option('--sync', 'mpi');
// rotate: one run of each variant per round; blocks: all runs of one variant, then the next (as bench/mpi-allreduce.ts).
const order = option('--order', 'rotate');
const pollerSpins = option('--poller-spins', String(spinMicros)).split(',').map(Number);

const comm = MpiCommunicator.init({ spinMicros });
const { mpi, rank, size } = comm;
const { commWorld: world, statusIgnore, inPlace, handleType } = mpi.handles;
const float = mpi.handles.datatypes.float32;
const sum = mpi.handles.ops.sum;
// The blocking call and a second MPI_Test binding, bound here only for the comparison.
const lib = koffi.load(mpi.path, { global: true });
const allreduce = lib.func('MPI_Allreduce', 'int', ['intptr_t', 'void *', 'int', handleType, handleType, handleType]);
const pollers = pollerSpins.map((spin) => [spin, new RequestPoller(mpi, rank, size, { spinMicros: spin })] as const);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function tightTest(req: BigInt64Array): void {
  const flag = new Int32Array(1);
  while (!mpi.test(req, flag));
}

for (const mb of sizesMb) {
  const n = (mb * 1024 * 1024) / 4;
  const buf = new Float32Array(new SharedArrayBuffer(n * 4)).fill(1);
  const req = new BigInt64Array(new SharedArrayBuffer(8));
  const pending = { kind: 'allReduce' as const, seq: 0, deadline: Infinity, timeoutMs: 60_000 };
  const variants: [string, () => Promise<void> | void][] = [
    ['MPI_Allreduce (blocking)', () => void mpi.check(allreduce(inPlace, buf, n, float, sum, world), 'MPI_Allreduce')],
    ['MPI_Iallreduce + MPI_Wait', () => {
      mpi.iallreduce(null, buf, n, float, sum, world, req);
      mpi.wait(req);
    }],
    ['MPI_Iallreduce + MPI_Test, tight loop', () => {
      mpi.iallreduce(null, buf, n, float, sum, world, req);
      tightTest(req);
    }],
    ...pollers.map(([spin, poller]): [string, () => Promise<void>] => [
      `MPI_Iallreduce + RequestPoller, spin ${spin} us`,
      () => poller.run(pending, [buf], (r) => mpi.iallreduce(null, buf, n, float, sum, world, r)),
    ]),
    ['header exchange alone (comm.barrier)', () => comm.barrier()],
    ['comm.allReduce', async () => void (await comm.allReduce(buf))],
  ];
  const ms = variants.map(() => [] as number[]);
  const runs: [number, number][] = [];
  for (let i = 0; i <= reps; i++) {
    // Each round starts at another variant, so none always runs right after the same neighbour.
    for (let k = 0; k < variants.length; k++) runs.push(order === 'blocks' ? [k, i] : [(k + i) % variants.length, i]);
  }
  if (order === 'blocks') runs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  {
    for (const [v, i] of runs) {
      if (sync === 'comm') await comm.barrier();
      else {
        mpi.ibarrier(world, req);
        mpi.wait(req);
      }
      const t0 = performance.now();
      await variants[v]![1]();
      if (i > 0) ms[v]!.push(performance.now() - t0);
    }
  }
  const worst = new Float64Array(new SharedArrayBuffer(8 * variants.length));
  ms.forEach((m, v) => (worst[v] = median(m)));
  await comm.allReduce(worst, { op: 'max' });
  if (rank === 0) {
    console.log(`\n${mb} MB, ${size} processes, ${mpi.abi}, median of ${reps} rounds, slowest rank, spin ${spinMicros} us, sync ${sync}, order ${order}`);
    variants.forEach(([name], v) => console.log(`  ${name.padEnd(46)} ${worst[v]!.toFixed(3)} ms`));
  }
}
await comm.finalize();
