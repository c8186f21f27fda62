// Every Communicator transport the suite in communicator-suite.ts runs over, one entry each: the
// shared-memory group of a WorkerPool, and NCCL (one rank per worker thread, each on its GPU) where
// a GPU and libnccl are found, and MPI (one rank per process: every run is one mpirun job) under each
// launcher found (Open MPI, MPICH). A later transport (another GPU library, sockets between hosts) is one
// more entry in TRANSPORTS: a way to start groups of ranks that each run a Task on its Communicator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { WorkerPool } from '../../src/parallel/pool.js';
import { cudaAvailable } from '../../src/devices/cuda/ffi/driver.js';
import { createNcclBootstrap } from '../../src/parallel/gpu-comm.js';
import type { Task, TaskResult } from './fixtures/collective-steps.js';
import type { NcclRankJob, NcclRankReply, NcclRankRequest } from './fixtures/nccl-task-worker.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { type FlavorProbe, type MpiFlavor, mpiRun, probeMpich, probeOpenMpi } from './mpi-launch.js';

/** A started group of ranks: each rank runs its own Task on its Communicator; results in rank order. */
export interface CommGroup {
  readonly size: number;
  run(task: (rank: number) => Task): Promise<TaskResult[]>;
  close(): Promise<void>;
}

/** One group the suite runs every case on (the label names what differs: rank count, buffer sizes). */
export interface GroupConfig {
  readonly label: string;
  readonly size: number;
  /** Multiplies the cases' buffer lengths (large enough to exercise rounds and growth where a transport has them). */
  readonly scale: number;
  /** Why this group cannot run here (too few GPUs), or undefined. */
  readonly skip?: string;
  start(): Promise<CommGroup>;
  /** Checks of this transport's own, declared after the shared cases and run on the same group. */
  readonly extraTests?: () => void;
}

export interface Transport {
  readonly name: string;
  /** Why the transport cannot run on this machine (printed as the skip reason), or null. */
  readonly unavailable: string | null;
  /**
   * Whether a NaN on one rank propagates through max and min (NumPy's maximum and the reference
   * combineInto do). NCCL's float max and min are fmax and fmin, which drop it: its cases put NaN
   * only into sum, prod and avg, where IEEE arithmetic propagates it on every transport.
   */
  readonly nanThroughMaxMin: boolean;
  readonly configs: readonly GroupConfig[];
}

// ---- shared memory ---------------------------------------------------------------------------

const shmScript = new URL('./fixtures/shm-worker.js', import.meta.url);

function shmConfig(n: number, arenaBytes: number, maxArenaBytes: number, scale: number): GroupConfig {
  let pool: WorkerPool | undefined;
  return {
    label: `${n} rank${n > 1 ? 's' : ''}, arena ${arenaBytes}..${maxArenaBytes} bytes`,
    size: n,
    scale,
    async start() {
      const started = await WorkerPool.start({ n, script: shmScript, comm: { arenaBytes, maxArenaBytes, timeoutMs: 10_000 }, timeoutMs: 15_000 });
      pool = started;
      return {
        size: n,
        run: async (task) => (await started.sendMessages(Array.from({ length: n }, (_, r) => task(r)))) as TaskResult[],
        close: () => started.close(),
      };
    },
    extraTests: () => {
      test('the arena grew only as far as allowed', () => {
        const bytes = pool!.commInit!.arena.byteLength;
        assert.ok(bytes <= Math.max(maxArenaBytes, 64 * n), `arena ${bytes} bytes`);
        if (n > 1 && scale > 1) assert.ok(bytes > arenaBytes, `arena ${bytes} bytes did not grow`);
      });
    },
  };
}

const shm: Transport = {
  name: 'shared memory (ShmCommunicator)',
  unavailable: null,
  nanThroughMaxMin: true,
  configs: [
    shmConfig(1, 256, 1 << 20, 1),
    shmConfig(2, 256, 1 << 20, 40), // grows from 256 bytes
    shmConfig(3, 256, 1 << 20, 40),
    shmConfig(4, 256, 1 << 20, 40),
    shmConfig(3, 256, 512, 40), // cannot grow past 512 bytes: everything moves in rounds
    shmConfig(4, 1 << 16, 1 << 16, 1), // fixed arena, no growth needed
  ],
};

// ---- NCCL ------------------------------------------------------------------------------------

const cuda = cudaAvailable();

async function ncclUnavailable(): Promise<string | null> {
  if (!cuda.ok) return `no usable CUDA device: ${cuda.reason.split('\n')[0]}`;
  try {
    (await import('../../src/devices/cuda/nccl-communicator.js')).findNccl();
    return null;
  } catch (e) {
    return `libnccl not loadable: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** Resolves with the worker's next reply; rejects when it fails, exits, or does not answer within `ms`. */
function nextReply(worker: Worker, rank: number, ms: number): Promise<NcclRankReply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`NCCL rank ${rank} did not answer within ${ms} ms`)); }, ms);
    const onMessage = (m: NcclRankReply): void => { cleanup(); resolve(m); };
    const onError = (e: Error): void => { cleanup(); reject(e); };
    const onExit = (code: number): void => { cleanup(); reject(new Error(`NCCL rank ${rank} exited with code ${code}`)); };
    const cleanup = (): void => {
      clearTimeout(timer);
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    };
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
  });
}

const replyError = (reply: NcclRankReply, rank: number): Error | null =>
  'error' in reply ? Object.assign(new Error(`NCCL rank ${rank}: ${reply.error.message}`), { name: reply.error.name }) : null;

/** One worker thread per entry of `gpus` (the GPU of each rank), joined into one NCCL group. */
async function startNcclGroup(gpus: readonly number[]): Promise<CommGroup> {
  const bootstrap = createNcclBootstrap();
  const script = new URL('./fixtures/nccl-task-worker.js', import.meta.url);
  const workers = gpus.map((index, rank) => new Worker(script, { workerData: { rank, size: gpus.length, index, bootstrap } satisfies NcclRankJob }));
  const terminate = (): Promise<unknown> =>
    Promise.all(workers.map((w) => Promise.race([w.terminate(), new Promise((r) => setTimeout(r, 5000).unref())])));
  try {
    const ready = await Promise.all(workers.map((w, rank) => nextReply(w, rank, 120_000)));
    ready.forEach((reply, rank) => { const e = replyError(reply, rank); if (e) throw e; });
  } catch (e) {
    await terminate();
    throw e;
  }
  const ask = async (requests: readonly NcclRankRequest[], ms: number): Promise<NcclRankReply[]> => {
    const replies = workers.map((w, rank) => nextReply(w, rank, ms));
    workers.forEach((w, rank) => w.postMessage(requests[rank]));
    return Promise.all(replies);
  };
  return {
    size: gpus.length,
    async run(task) {
      const replies = await ask(gpus.map((_, rank) => ({ task: task(rank) })), 120_000);
      return replies.map((reply, rank) => {
        const e = replyError(reply, rank);
        if (e) throw e;
        if (!('result' in reply)) throw new Error(`NCCL rank ${rank}: unexpected reply ${JSON.stringify(reply)}`);
        return reply.result;
      });
    },
    async close() {
      try {
        await ask(gpus.map(() => ({ close: true })), 30_000);
      } finally {
        await terminate();
      }
    },
  };
}

const gpuCount = cuda.ok ? cuda.deviceCount : 0;
const nccl: Transport = {
  name: 'NCCL (NcclCommunicator, host buffers)',
  unavailable: await ncclUnavailable(),
  nanThroughMaxMin: false,
  configs: [
    { label: '1 rank on GPU 0', size: 1, scale: 40, start: () => startNcclGroup([0]) },
    {
      label: 'one rank per GPU',
      size: gpuCount,
      scale: 40,
      ...(gpuCount < 2 ? { skip: `needs 2+ GPUs, found ${gpuCount}` } : {}),
      start: () => startNcclGroup(Array.from({ length: gpuCount }, (_, i) => i)),
    },
  ],
};

// ---- MPI ---------------------------------------------------------------------------------------

/** A group of `n` MPI processes: each run() is one job of `n` ranks, each running its Task (mpi-task-runner.ts). */
function mpiGroup(flavor: MpiFlavor, n: number): CommGroup {
  const runner = new URL('./fixtures/mpi-task-runner.js', import.meta.url);
  return {
    size: n,
    async run(task) {
      const dir = mkdtempSync(join(tmpdir(), 'synk-mpi-suite-'));
      try {
        const file = join(dir, 'tasks.bin');
        writeFileSync(file, serialize(Array.from({ length: n }, (_, r) => task(r))));
        const job = await mpiRun(flavor, n, runner, [file, dir]);
        if (job.code !== 0) throw new Error(`mpirun -np ${n} exited with ${job.code ?? job.signal}:\n${job.out}`);
        return Array.from({ length: n }, (_, r) => deserialize(readFileSync(join(dir, `${r}.bin`))) as TaskResult);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    close: async () => undefined,
  };
}

function mpiTransport(probe: FlavorProbe, name: string): Transport {
  const flavor = probe.flavor;
  return {
    name: `MPI (MpiCommunicator, ${flavor?.name ?? name})`,
    unavailable: probe.unavailable,
    // MPI_MAX / MPI_MIN on floats are C comparisons, which drop a NaN depending on its side.
    nanThroughMaxMin: false,
    configs: flavor === null ? [] : [1, 2, 3].map((n) => ({
      label: `${n} process${n > 1 ? 'es' : ''}`,
      size: n,
      scale: 40,
      start: async () => mpiGroup(flavor, n),
    })),
  };
}

export const TRANSPORTS: readonly Transport[] = [shm, nccl, mpiTransport(probeOpenMpi(), 'Open MPI'), mpiTransport(probeMpich(), 'MPICH')];
