// All-reduce bandwidth through our NCCL bindings on every visible GPU (issue #7), float32 sum on
// device buffers, 1 MiB to 1 GiB. Three ways, each labelled in its JSON line's "impl":
//   synk-nccl-direct   ncclAllReduce through our koffi bindings on the communicator's own handle,
//                      out of place, back to back on the device stream, one CUDA event pair per
//                      call (the nccl-tests method: no host work between calls)
//   synk-communicator  NcclCommunicator.allReduceDevice, one awaited call at a time, wall clock
//                      (adds the length check, the output allocation and the bounded stream wait)
//   synk-runtime       synk.allReduce(sharedVariable, { op: 'sum' }) from the controller after
//                      synk.fork with one worker per GPU, wall clock (adds the controller round
//                      trip and rank 0 sending the result back to the controller)
// The first two run in worker threads of this script (one rank per GPU, one communicator); the third
// through the public runtime. Every figure is the median over the iterations of one rank, then the
// slowest rank. busBW = algBW * 2(n-1)/n (nccl-tests); with one GPU busBW is undefined (null) and
// algBW = bytes / time is the only figure. One JSON line per size and impl ({"bench":"allreduce",...})
// for bench/device-multigpu.sh; the PyTorch peer is bench/multi-gpu/allreduce_torch.py.
// Usage: node dist/bench/multi-gpu/allreduce.js [--sizes 1,4,16,64,256,1024] (MiB) [--gpus N]
//                                               [--iters 20] [--no-direct] [--no-runtime]
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Command } from 'commander';
import * as synk from '../../src/index.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import { CudaDevice } from '../../src/devices/cuda/cuda-device.js';
import type { CudaArray } from '../../src/devices/cuda/cuda-array.js';
import type { CudaContext } from '../../src/devices/cuda/context.js';
import type { NcclComm } from '../../src/devices/cuda/ffi/types.js';
import { type Nccl, NCCL_UNIQUE_ID_BYTES, decodeNcclVersion } from '../../src/devices/cuda/ffi/nccl.js';
import { cudaAvailable } from '../../src/devices/cuda/ffi/driver.js';
import { NcclCommunicator, findNccl } from '../../src/devices/cuda/nccl-communicator.js';
import type { DeviceSpec } from '../../src/devices/create.js';

const MIB = 1 << 20;
const WARMUP = 3;

interface Job {
  readonly rank: number;
  readonly size: number;
  readonly bootstrap: SharedArrayBuffer;
  readonly sizes: readonly number[];
  readonly maxIters: number;
}
type RankMsg =
  | { kind: 'info'; rank: number; device: string; ncclVersion: number }
  | { kind: 'result'; rank: number; impl: string; bytes: number; iters: number; ms: number; checked: boolean }
  | { kind: 'error'; rank: number; message: string }
  | { kind: 'done'; rank: number };

const median = (xs: readonly number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN; };

/** Fewer iterations for big buffers: maxIters up to 64 MiB, then fewer, never below 5. */
function itersFor(bytes: number, maxIters: number): number {
  return Math.max(5, Math.min(maxIters, Math.round((maxIters * 64 * MIB) / bytes)));
}

// ---- one rank (worker thread) -------------------------------------------------------------------

// Bootstrap layout: int32 [0] state (0 waiting, 1 id written, 2 a rank failed), id bytes from 16.
const ID_OFFSET = 16;

/** Rank 0 publishes a unique id; every rank joins with it (ncclCommInitRank blocks until all have). */
function joinRaw(nccl: Nccl, job: Job): NcclComm {
  const state = new Int32Array(job.bootstrap, 0, 4);
  const id = new Uint8Array(job.bootstrap, ID_OFFSET, NCCL_UNIQUE_ID_BYTES);
  if (job.rank === 0) {
    nccl.getUniqueId(id);
    Atomics.store(state, 0, 1);
    Atomics.notify(state, 0);
  } else {
    const deadline = performance.now() + 120_000;
    while (Atomics.load(state, 0) === 0) {
      if (performance.now() > deadline) throw new Error(`rank ${job.rank}: rank 0 did not publish the NCCL id within 120 s`);
      Atomics.wait(state, 0, 0, 50);
    }
    if (Atomics.load(state, 0) === 2) throw new Error(`rank ${job.rank}: another rank failed before joining`);
  }
  return nccl.commInitRank(job.size, id, job.rank);
}

/** Median ms of ncclAllReduce issued back to back, one event pair around each call. */
async function directMs(ctx: CudaContext, nccl: Nccl, comm: NcclComm, send: bigint, recv: bigint, count: number, iters: number): Promise<number> {
  const cu = ctx.cu;
  for (let i = 0; i < WARMUP; i++) nccl.allReduce(send, recv, count, 'float32', 'sum', comm, ctx.stream);
  await cu.streamSynchronizeAsync(ctx.stream);
  const starts = Array.from({ length: iters }, () => cu.eventCreate(0));
  const ends = Array.from({ length: iters }, () => cu.eventCreate(0));
  for (let i = 0; i < iters; i++) {
    cu.eventRecord(starts[i]!, ctx.stream);
    nccl.allReduce(send, recv, count, 'float32', 'sum', comm, ctx.stream);
    cu.eventRecord(ends[i]!, ctx.stream);
  }
  await cu.streamSynchronizeAsync(ctx.stream);
  const times = starts.map((a, i) => cu.eventElapsedTime(a, ends[i]!));
  for (const e of [...starts, ...ends]) cu.eventDestroy(e);
  return median(times);
}

/** Median wall-clock ms of one awaited allReduceDevice (a new output array each call, freed after). */
async function communicatorMs(comm: NcclCommunicator, array: CudaArray, iters: number): Promise<number> {
  for (let i = 0; i < WARMUP; i++) (await comm.allReduceDevice(array, 'sum')).release();
  const times: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    const out = await comm.allReduceDevice(array, 'sum');
    times.push(performance.now() - t0);
    out.release();
  }
  return median(times);
}

/** Every element of the sum of (rank + 1) over n ranks is n(n+1)/2: first and last 256 checked. */
function checkSum(ctx: CudaContext, out: CudaArray, size: number): boolean {
  const want = (size * (size + 1)) / 2;
  const k = Math.min(256, out.size);
  const head = new Float32Array(k);
  const tail = new Float32Array(k);
  ctx.cu.memcpyDtoH(head, out.ptr, 4 * k);
  ctx.cu.memcpyDtoH(tail, out.ptr + BigInt(4 * (out.size - k)), 4 * k);
  return [...head, ...tail].every((v) => v === want);
}

async function rankMain(job: Job): Promise<void> {
  const post = (m: RankMsg) => parentPort!.postMessage(m);
  const device = new CudaDevice({ index: job.rank });
  let comm: NcclCommunicator | null = null;
  try {
    const ctx = device.context;
    const nccl = findNccl();
    const raw = joinRaw(nccl, job);
    comm = new NcclCommunicator(nccl, raw, ctx, job.rank, job.size, { timeoutMs: 120_000 });
    post({ kind: 'info', rank: job.rank, device: device.name, ncclVersion: nccl.version() });
    for (const bytes of job.sizes) {
      const count = bytes / 4;
      const iters = itersFor(bytes, job.maxIters);
      const send = device.upload(new NDArray('float32', [count], new Float32Array(count).fill(job.rank + 1))) as CudaArray;
      const recv = ctx.alloc('float32', [count]);
      try {
        const first = await comm.allReduceDevice(send, 'sum');
        const checked = checkSum(ctx, first, job.size);
        first.release();
        await comm.barrier();
        ctx.makeCurrent();
        const direct = await directMs(ctx, nccl, raw, send.ptr, recv.ptr, count, iters);
        post({ kind: 'result', rank: job.rank, impl: 'synk-nccl-direct', bytes, iters, ms: direct, checked });
        await comm.barrier();
        const viaComm = await communicatorMs(comm, send, iters);
        post({ kind: 'result', rank: job.rank, impl: 'synk-communicator', bytes, iters, ms: viaComm, checked });
      } finally {
        send.release();
        recv.release();
      }
    }
  } finally {
    comm?.close();
    device.close();
  }
}

// ---- the controller -----------------------------------------------------------------------------

function printLine(impl: string, gpus: number, bytes: number, iters: number, ms: number, extra: Record<string, unknown> = {}): void {
  const algbw = bytes / ms / 1e6; // GB/s
  const busbw = gpus > 1 ? (algbw * 2 * (gpus - 1)) / gpus : null;
  console.log(JSON.stringify({ bench: 'allreduce', impl, gpus, bytes, iters, ms, algbw_gbps: algbw, busbw_gbps: busbw, ...extra }));
  const bw = busbw === null ? `algBW ${algbw.toFixed(1)} GB/s (1 GPU: busBW undefined)` : `busBW ${busbw.toFixed(1)} GB/s`;
  console.error(`  ${impl.padEnd(18)} ${String(bytes / MIB).padStart(5)} MiB: ${ms.toFixed(3)} ms, ${bw}`);
}

/** Runs one rank per GPU in worker threads; prints a line once every rank reported a figure. */
async function runDirect(gpus: number, sizes: readonly number[], maxIters: number, timeoutMs: number): Promise<void> {
  const bootstrap = new SharedArrayBuffer(ID_OFFSET + NCCL_UNIQUE_ID_BYTES);
  const pending = new Map<string, Extract<RankMsg, { kind: 'result' }>[]>();
  const workers = Array.from(
    { length: gpus },
    (_, rank) => new Worker(new URL(import.meta.url), { workerData: { rank, size: gpus, bootstrap, sizes, maxIters } satisfies Job }),
  );
  const finished = new Promise<void>((resolve, reject) => {
    let ended = 0;
    let failure: Error | null = null;
    const end = () => { if (++ended === gpus) { clearTimeout(timer); if (failure) reject(failure); else resolve(); } };
    // A rank stuck inside NCCL cannot be terminated: give up here and let the caller exit the process.
    const timer = setTimeout(() => reject(failure ?? new Error(`the direct runs did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
    for (const w of workers) {
      w.on('message', (m: RankMsg) => {
        if (m.kind === 'info') {
          if (m.rank === 0) {
            const v = decodeNcclVersion(m.ncclVersion);
            console.error(`NCCL ${v.major}.${v.minor}.${v.patch}; rank 0 on ${m.device}; ${gpus} rank(s)`);
          }
          return;
        }
        if (m.kind === 'done') { end(); return; }
        if (m.kind === 'error') { failure ??= new Error(`rank ${m.rank}: ${m.message}`); end(); return; }
        const key = `${m.impl}|${m.bytes}`;
        const got = [...(pending.get(key) ?? []), m];
        pending.set(key, got);
        if (got.length < gpus) return;
        pending.delete(key);
        const slowest = Math.max(...got.map((r) => r.ms));
        printLine(
          m.impl,
          gpus,
          m.bytes,
          m.iters,
          slowest,
          { checked: got.every((r) => r.checked), rank_ms: got.sort((a, b) => a.rank - b.rank).map((r) => r.ms) },
        );
      });
      w.on('error', (e) => { failure ??= e; end(); });
    }
  });
  try {
    await finished;
  } finally {
    // Every rank has closed its communicator and device (or failed); nothing is left to wait for.
    await Promise.all(workers.map((w) => Promise.race([w.terminate(), new Promise((r) => setTimeout(r, 5000).unref())])));
  }
}

async function runRuntime(gpus: number, sizes: readonly number[], maxIters: number): Promise<void> {
  const devices: DeviceSpec[] = Array.from({ length: gpus }, (_, index) => ({ kind: 'cuda', index }));
  await synk.fork({ devices });
  try {
    for (const bytes of sizes) {
      const count = bytes / 4;
      const iters = Math.min(10, itersFor(bytes, maxIters));
      const v = synk.T.shared(new NDArray('float32', [count], new Float32Array(count).fill(1)), { name: `allreduce ${bytes / MIB} MiB` });
      // The first call also sends the value to every worker and uploads it: a warm-up.
      await synk.allReduce(v, { op: 'sum' });
      const after = v.getValue({ borrow: true }).data;
      const checked = after[0] === gpus && after[count - 1] === gpus;
      await synk.allReduce(v, { op: 'sum' });
      const times: number[] = [];
      for (let i = 0; i < iters; i++) {
        const t0 = performance.now();
        await synk.allReduce(v, { op: 'sum' });
        times.push(performance.now() - t0);
      }
      printLine('synk-runtime', gpus, bytes, iters, median(times), { checked });
      v.setValue(new NDArray('float32', [1])); // the controller lets go of its copy
    }
  } finally {
    await synk.close();
  }
}

async function controllerMain(): Promise<void> {
  const list = (v: string): number[] => v.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`expected a comma-separated list of positive integers, got ${JSON.stringify(v)}`);
    return n;
  });
  const o = new Command().name('bench-allreduce')
    .description('All-reduce bandwidth (float32 sum, device buffers) through our NCCL bindings, communicator and runtime.')
    .option('--sizes <MiB list>', 'buffer sizes in MiB', list, [1, 4, 16, 64, 256, 1024])
    .option('--gpus <n>', 'ranks (default: every visible GPU)', (v) => Number(v))
    .option('--iters <n>', 'timed iterations up to 64 MiB (fewer above, at least 5)', (v) => Number(v), 20)
    .option('--timeout <s>', 'bound on the worker-thread runs', (v) => Number(v), 100)
    .option('--no-direct', 'skip the direct and communicator runs')
    .option('--no-runtime', 'skip the synk.allReduce runs')
    .parse()
    .opts<{ sizes: number[]; gpus?: number; iters: number; timeout: number; direct: boolean; runtime: boolean }>();
  // NVLink multicast stays off (issue #7); set before any NCCL library loads, in every thread's env.
  process.env['NCCL_NVLS_ENABLE'] ??= '0';
  const found = cudaAvailable();
  if (!found.ok) {
    console.error(`allreduce: no CUDA device is present here, nothing measured (${found.reason.split('\n')[0]})`);
    process.exit(1);
  }
  const gpus = o.gpus ?? found.deviceCount;
  if (!Number.isInteger(gpus) || gpus < 1 || gpus > found.deviceCount) {
    throw new RangeError(`--gpus must be in [1, ${found.deviceCount}], got ${String(o.gpus)}`);
  }
  const sizes = o.sizes.map((m) => m * MIB);
  console.error(`all-reduce, float32 sum, ${gpus} GPU(s), sizes ${o.sizes.join(', ')} MiB; NCCL_NVLS_ENABLE=${process.env['NCCL_NVLS_ENABLE']}`);
  if (gpus === 1) console.error('one GPU: busBW = 2(n-1)/n * algBW is undefined for n = 1; algBW (bytes / time) is reported');
  if (o.direct) await runDirect(gpus, sizes, o.iters, o.timeout * 1000);
  if (o.runtime) await runRuntime(gpus, sizes, o.iters);
}

if (isMainThread) {
  try {
    await controllerMain();
  } catch (e) {
    console.error(`allreduce: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1); // also ends worker threads stuck in NCCL
  }
} else {
  const job = workerData as Job;
  await rankMain(job).then(() => parentPort!.postMessage({ kind: 'done', rank: job.rank } satisfies RankMsg), (e: unknown) => {
    // Ranks still waiting for the NCCL id stop at once instead of waiting out their bound.
    const state = new Int32Array(job.bootstrap, 0, 4);
    Atomics.store(state, 0, 2);
    Atomics.notify(state, 0);
    parentPort!.postMessage({ kind: 'error', rank: job.rank, message: e instanceof Error ? e.message : String(e) } satisfies RankMsg);
  });
}
