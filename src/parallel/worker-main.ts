// The script every data-parallel worker thread runs.
import '../build/methods.js';
import { workerData as rawWorkerData } from 'node:worker_threads';
import { serveWorker } from './pool.js';
import { Engine } from './engine.js';
import { createDevice, type DeviceSpec } from '../devices/create.js';
import { registerBuiltinDevices } from '../devices/builtin.js';
import type { Device } from '../devices/device.js';
import type { ControllerMsg } from './protocol.js';
import { CMD_FAST_CALL, CMD_FETCH_SHARED, CMD_SHARED_STEP } from './fast-call.js';
import { CMD_RELEASE_GPU, closeGpuComm, failNcclBootstrap, isNcclBootstrap, joinNcclGroup, setGpuComm, shmAbortProbe } from './gpu-comm.js';
import type { ShmGroupInit } from '../comm/shm.js';
import { flushProfile, profiling } from '../devices/cuda/profile.js';

let engine: Engine | undefined;

/** GPU workers join the fork's NCCL group (every worker of the fork is on a GPU then). */
async function openDevice(spec: DeviceSpec, rank: number, size: number, bootstrap: unknown): Promise<Device> {
  const nccl = spec.kind === 'cuda' && isNcclBootstrap(bootstrap) ? bootstrap : null;
  let device: Device;
  try {
    device = await createDevice(spec);
  } catch (e) {
    if (nccl) failNcclBootstrap(nccl, rank); // the other ranks stop waiting for this one
    throw e;
  }
  if (!nccl) return device;
  try {
    const shm = (rawWorkerData as { synkPool?: { comm?: ShmGroupInit | null } } | null)?.synkPool?.comm ?? null;
    const probe = shmAbortProbe(shm);
    setGpuComm(device, await joinNcclGroup(device, nccl, rank, size, probe ? { abortProbe: probe } : {}));
  } catch (e) {
    device.close();
    throw e;
  }
  return device;
}

function releaseDevice(): number {
  if (!engine) return 0;
  if (profiling) flushProfile();
  closeGpuComm(engine.device);
  engine.device.close();
  return 0;
}

await serveWorker({
  async init(ctx) {
    await registerBuiltinDevices();
    const { devices: specs, arenas, ncclBootstrap } = ctx.workerData as {
      devices: readonly DeviceSpec[]; arenas: { scratch: SharedArrayBuffer; results: SharedArrayBuffer }; ncclBootstrap?: SharedArrayBuffer | null;
    };
    const spec = specs[ctx.rank];
    if (!spec) throw new Error(`rank ${ctx.rank}: no device given`);
    engine = new Engine(ctx.rank, ctx.size, await openDevice(spec, ctx.rank, ctx.size, ncclBootstrap), ctx.comm, arenas);
  },
  message: (msg) => engine!.handle(msg as ControllerMsg),
  // Shared memory this worker let go of is returned now, not whenever this thread next allocates.
  afterCall: (_ctx, idle) => engine?.garbage.housekeeping(idle) ?? null,
  commands: {
    [CMD_FAST_CALL]: (args) => engine!.callFast(args),
    [CMD_FETCH_SHARED]: (args) => engine!.fetchShared(args),
    [CMD_SHARED_STEP]: (args) => engine!.sharedStep(args),
    [CMD_RELEASE_GPU]: () => releaseDevice(),
  },
});
releaseDevice();
