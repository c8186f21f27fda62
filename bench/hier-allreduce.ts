// The hierarchical all-reduce across nodes, end to end: synk.allReduce of a float32 shared variable
// on every worker of every node (the node's shared-memory reduction, MPI between the nodes' leaders
// through their controllers, the node's broadcast), with the vector cut into pieces of --chunk-mb
// (commChunkBytes) that pipeline, against one piece (--chunk-mb 0: the whole vector at once, as
// before pieces existed). Median of --reps calls per size, node 0's controller's wall time.
// Usage (virtual nodes on one host):
//   mpirun --oversubscribe -np 2 node dist/bench/hier-allreduce.js [--workers 1] [--sizes-mb 8,32,64] [--chunk-mb 4,0] [--reps 7]
//   (MPICH: mpiexec.mpich -np 2 ...; OPENBLAS_NUM_THREADS=1 on a small machine)
import * as synk from '../src/index.js';
import { T } from '../src/index.js';
import { NDArray } from '../src/tensor/ndarray.js';

const argv = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const list = (name: string, fallback: string): number[] => opt(name, fallback).split(',').map((v) => {
  const n = Number(v);
  if (!(n >= 0)) throw new Error(`${name}: expected numbers >= 0, got ${v}`);
  return n;
});
const workers = Number(opt('--workers', '1'));
const sizes = list('--sizes-mb', '8,32,64');
const chunks = list('--chunk-mb', '4,0');
const reps = Number(opt('--reps', '7'));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const rows: string[] = [];
for (const chunkMb of chunks) {
  const biggest = Math.max(...sizes);
  const commChunkBytes = chunkMb === 0 ? Math.ceil((biggest * 1024 * 1024 + 64) / 64) * 64 : chunkMb * 1024 * 1024;
  await synk.fork({ n: workers, devices: 'cpu', virtualNodes: true, commChunkBytes });
  const info = synk.nodeInfo();
  for (const mb of sizes) {
    const n = (mb * 1024 * 1024) / 4;
    const v = T.shared(new NDArray('float32', [n]), { name: `v${mb}` });
    await synk.distribute([v]);
    const ms: number[] = [];
    for (let i = 0; i <= reps; i++) {
      const t0 = performance.now();
      await synk.allReduce(v, { op: 'sum' });
      if (i > 0) ms.push(performance.now() - t0);
    }
    const label = chunkMb === 0 ? 'one piece' : `${chunkMb} MB pieces`;
    rows.push(`| ${info.nodeCount} x ${info.localWorkers} | ${mb} | ${label} | ${Math.ceil(mb / (chunkMb || biggest))} | ${median(ms).toFixed(1)} |`);
  }
  await synk.close();
}
if (synk.isForked() === false && Number(process.env['OMPI_COMM_WORLD_RANK'] ?? process.env['PMI_RANK'] ?? '0') === 0) {
  console.log(`hierarchical all-reduce (synk.allReduce, float32 sum), median of ${reps} calls, node 0's wall time\n`);
  console.log('| nodes x workers | MB | pieces | count | ms |');
  console.log('| --- | ---: | --- | ---: | ---: |');
  for (const r of rows) console.log(r);
}
