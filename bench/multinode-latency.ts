// Round trip of one synk.fn call whose output is reduced across every node (a cross-node
// reduction through the node leaders), against the same call's local part: where a step's
// per-call overhead over many nodes goes. Run under a launcher with virtual nodes on one host:
//   SYNK_VIRTUAL_NODES=1 mpirun -np 2 -x SYNK_VIRTUAL_NODES node dist/bench/multinode-latency.js [--workers 1] [--calls 200]
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { MpiCommunicator } from '../src/comm/mpi/mpi-communicator.js';
import { currentJob } from '../src/parallel/nodes.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const workers = arg('--workers', 1);
const calls = arg('--calls', 200);
const x = T.matrix('x');
const f = synk.fn({ inputs: [x], outputs: [[T.sum(x), 'sum']] });
const rows = synk.data(T.NDArray.full([64, 8], 1, 'float32'));
await synk.fork({ n: workers, devices: 'cpu' });
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function time(op: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 10; i++) await op();
  const ms: number[] = [];
  for (let i = 0; i < calls; i++) { const t0 = performance.now(); await op(); ms.push(performance.now() - t0); }
  return median(ms);
}
const call = await time(() => f(rows));
const job = currentJob();
const mpi: MpiCommunicator | null = job?.mpi ?? null;
const small = new Float32Array(new SharedArrayBuffer(4));
const controllerAllReduce = mpi ? await time(() => mpi.allReduce(small)) : NaN;
const info = synk.nodeInfo();
if (info.nodeRank === 0) {
  console.log(`${info.nodeCount} nodes x ${workers} workers: synk.fn call with a reduced output ${call.toFixed(3)} ms; `
    + `one MpiCommunicator allReduce of 4 bytes from the controller ${controllerAllReduce.toFixed(3)} ms (median of ${calls})`);
}
await synk.close();
