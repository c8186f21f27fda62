// One NCCL rank in a worker thread (used by nccl.test.ts): joins the group through the fork
// bootstrap on GPU `index`, runs every collective with rank-dependent values and posts the results
// (or the error it got, with its name and message).
import { parentPort, workerData } from 'node:worker_threads';
import { CudaDevice } from '../../src/devices/cuda/cuda-device.js';
import { CudaArray } from '../../src/devices/cuda/cuda-array.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { joinNcclGroup } from './fixtures/join-nccl.js';

interface Job { readonly rank: number; readonly size: number; readonly index: number; readonly bootstrap: SharedArrayBuffer }
const { rank, size, index, bootstrap } = workerData as Job;

async function main(): Promise<Record<string, number[] | number[][] | null>> {
  const device = new CudaDevice({ index, cacheDir: null });
  const comm = await joinNcclGroup(device, bootstrap, rank, size, { timeoutMs: 20_000, joinTimeoutMs: 30_000 });
  try {
    const out: Record<string, number[] | number[][] | null> = {};
    const base = () => Float32Array.from([1, 2, 3, 4, 5], (v) => v * (rank + 1));
    for (const op of ['sum', 'avg', 'prod', 'max', 'min'] as const) out[`f32 ${op}`] = [...await comm.allReduce(base(), { op })];
    out['f64 sum'] = [...await comm.allReduce(Float64Array.from([rank, 0.5]), { op: 'sum' })];
    out['i32 sum'] = [...await comm.allReduce(Int32Array.from([rank, -rank, 7]), { op: 'sum' })];
    out['u8 max'] = [...await comm.allReduce(Uint8Array.from([rank, 200]), { op: 'max' })];
    out['bool sum'] = [...await comm.allReduce(Uint8Array.from([rank === 0 ? 1 : 0, 0]), { op: 'sum', dtype: 'bool' })];
    out['bool prod'] = [...await comm.allReduce(Uint8Array.from([rank === 0 ? 1 : 0, 1]), { op: 'prod', dtype: 'bool' })];
    out['reduce'] = [...await comm.reduce(base(), { op: 'sum', root: 0 })];
    out['broadcast'] = [...await comm.broadcast(Float32Array.from([rank, rank]), { root: size - 1 })];
    out['allGather'] = (await comm.allGather(new Int32Array(rank).fill(rank))).map((a) => [...a]);
    const g = await comm.gather(Float64Array.from([rank * 10]), { root: size - 1 });
    out['gather'] = g ? g.map((a) => [...a]) : null;
    const parts = rank === 0 ? Array.from({ length: size }, (_, r) => new Int32Array(r + 2).fill(r * 10)) : null;
    out['scatter'] = [...await comm.scatter(parts, { root: 0 })];
    await comm.barrier();
    const arr = device.upload(new NDArray('float32', [2], Float32Array.from([rank, 1]))) as CudaArray;
    const avg = await comm.allReduceDevice(arr, 'avg');
    out['device avg'] = [...device.download(avg).data];
    const rows = device.upload(new NDArray('float32', [rank + 1, 2], new Float32Array(2 * (rank + 1)).fill(rank))) as CudaArray;
    const gathered = await comm.allGatherDevice(rows);
    out['device allGather shape'] = [...gathered.shape];
    out['device allGather'] = [...device.download(gathered).data];
    out['device broadcast'] = [...device.download(await comm.broadcastDevice(arr, { root: size - 1 })).data];
    return out;
  } finally {
    comm.close();
    device.close();
  }
}

main().then(
  (results) => parentPort?.postMessage({ rank, results }),
  (e: unknown) => parentPort?.postMessage({ rank, error: { name: (e as Error)?.name ?? 'Error', message: (e as Error)?.message ?? String(e) } }),
);
