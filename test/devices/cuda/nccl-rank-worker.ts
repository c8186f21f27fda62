// One NCCL rank in a worker thread (used by ffi-gpu.test.ts): reads the unique id from the
// SharedArrayBuffer rank 0 wrote, joins the communicator on device `rank`, runs an
// all-reduce and an all-gather, and posts what it read back.
import { parentPort, workerData } from 'node:worker_threads';
import { loadCudaDriver, loadNccl } from '../../../src/devices/cuda/ffi/index.js';

interface RankJob {
  readonly rank: number;
  readonly nranks: number;
  readonly id: SharedArrayBuffer;
  readonly count: number;
}

const job = workerData as RankJob;
const cu = loadCudaDriver();
const nccl = loadNccl();
cu.init(0);
const dev = cu.deviceGet(job.rank);
const ctx = cu.primaryCtxRetain(dev);
cu.ctxSetCurrent(ctx);
try {
  const comm = nccl.commInitRank(job.nranks, new Uint8Array(job.id, 0, 128), job.rank);
  const stream = cu.streamCreate();
  const bytes = job.count * 4;
  const buf = cu.memAlloc(bytes);
  const gathered = cu.memAlloc(bytes * job.nranks);
  cu.memcpyHtoD(buf, new Float32Array(job.count).fill(job.rank + 1));
  nccl.allReduce(buf, buf, job.count, 'float32', 'sum', comm, stream);
  nccl.allGather(buf, gathered, job.count, 'float32', comm, stream);
  cu.streamSynchronize(stream);
  const reduced = new Float32Array(job.count);
  cu.memcpyDtoH(reduced, buf);
  const all = new Float32Array(job.count * job.nranks);
  cu.memcpyDtoH(all, gathered);
  const asyncError = nccl.commGetAsyncError(comm);
  const ranks = [nccl.commCount(comm), nccl.commUserRank(comm), nccl.commCuDevice(comm)];
  nccl.commDestroy(comm);
  cu.memFree(buf);
  cu.memFree(gathered);
  cu.streamDestroy(stream);
  parentPort?.postMessage({ rank: job.rank, reduced: [...new Set(reduced)], gathered: [...new Set(all)], asyncError, ranks });
} finally {
  cu.primaryCtxRelease(dev);
}
