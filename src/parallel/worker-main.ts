// The script every data-parallel worker thread runs.
import '../build/methods.js';
import { workerData as rawWorkerData } from 'node:worker_threads';
import { serveWorker } from './pool.js';
import { Engine, type EngineArenas } from './engine.js';
import { createDevice, type DeviceSpec } from '../devices/create.js';
import type { Device } from '../devices/device.js';
import type { ControllerMsg } from './protocol.js';
import { CMD_FAST_CALL, CMD_FETCH_SHARED, CMD_RELEASE_DEVICE, CMD_SHARED_STEP } from './commands.js';
import { failNcclBootstrap, isNcclBootstrap, joinDeviceGroup, shmAbortProbe } from './gpu-comm.js';
import { deviceGroupOf, type DeviceCommunicator } from '../comm/device-groups.js';
import type { ShmGroupInit } from '../comm/shm.js';
import type { Communicator } from '../comm/communicator.js';
import { HierarchicalCommunicator } from '../comm/hierarchical.js';
import { NodeLink } from '../comm/node-link.js';

/** What a worker of a fork over many nodes is told: the node's link to the controller, and the job's shape. */
interface NodesData { readonly channel: string; readonly nodeRank: number; readonly nodeCount: number; readonly chunkBytes: number }

let link = null as NodeLink | null;

/** The job-wide group over the node's shared-memory group; the node's rank 0 reaches the other nodes through the controller. */
function spanNodes(local: Communicator | null, nodes: NodesData | null | undefined): Communicator | null {
  if (!nodes || !local) return local;
  link = local.rank === 0 ? new NodeLink(nodes.channel, nodes.nodeRank, nodes.nodeCount) : null;
  return new HierarchicalCommunicator(local, link, { nodeRank: nodes.nodeRank, nodeCount: nodes.nodeCount }, { chunkBytes: nodes.chunkBytes });
}

let engine: Engine | undefined;

/** Workers whose devices form a group join the fork's (every worker of the fork is of that kind then). */
async function openDevice(
  spec: DeviceSpec, rank: number, size: number, bootstrap: unknown, nodes: NodesData | null | undefined,
): Promise<{ device: Device; comm: DeviceCommunicator | null }> {
  const shared = isNcclBootstrap(bootstrap) ? bootstrap : null;
  let device: Device;
  let group: Awaited<ReturnType<typeof deviceGroupOf>>;
  try {
    group = shared ? await deviceGroupOf(spec.kind) : undefined;
    device = await createDevice(spec);
  } catch (e) {
    if (shared) failNcclBootstrap(shared, rank); // the other ranks stop waiting for this one
    throw e;
  }
  if (!shared || !group) return { device, comm: null };
  try {
    const shm = (rawWorkerData as { synkPool?: { comm?: ShmGroupInit | null } } | null)?.synkPool?.comm ?? null;
    const probe = shmAbortProbe(shm);
    // With many nodes one group spans every GPU of every node; node 0's rank 0 makes its id.
    const span = nodes ? { globalRank: nodes.nodeRank * size + rank, globalSize: nodes.nodeCount * size, createsId: nodes.nodeRank === 0 && rank === 0 } : null;
    return { device, comm: await joinDeviceGroup(group, device, shared, rank, size, { ...(probe ? { abortProbe: probe } : {}), ...(span ? { span } : {}) }) };
  } catch (e) {
    device.close();
    throw e;
  }
}

function releaseDevice(): number {
  if (!engine) return 0;
  try { engine.deviceComm?.close(); } catch { /* closing anyway */ }
  engine.deviceComm = null;
  engine.device.close();
  return 0;
}

/** The job is being aborted (the controller's interrupt): the device group goes first, so no GPU rank stays inside a collective. */
function abortDeviceGroup(): void {
  engine?.deviceComm?.abort('the job is being aborted (the node\'s controller interrupted its workers)');
}

await serveWorker({
  async init(ctx) {
    const { devices: specs, arenas, ncclBootstrap, nodes } = ctx.workerData as {
      devices: readonly DeviceSpec[]; arenas: EngineArenas; ncclBootstrap?: SharedArrayBuffer | null;
      nodes?: NodesData | null;
    };
    const spec = specs[ctx.rank];
    if (!spec) throw new Error(`rank ${ctx.rank}: no device given`);
    const { device, comm } = await openDevice(spec, ctx.rank, ctx.size, ncclBootstrap, nodes);
    engine = new Engine(ctx.rank, ctx.size, device, spanNodes(ctx.comm, nodes), arenas);
    engine.deviceComm = comm;
  },
  message: (msg) => engine!.handle(msg as ControllerMsg),
  // Shared memory this worker let go of is returned now, not whenever this thread next allocates.
  afterCall: (_ctx, idle) => engine?.garbage.housekeeping(idle) ?? null,
  commands: {
    [CMD_FAST_CALL]: (args) => engine!.callFast(args),
    [CMD_FETCH_SHARED]: (args) => engine!.fetchShared(args),
    [CMD_SHARED_STEP]: (args) => engine!.sharedStep(args),
    [CMD_RELEASE_DEVICE]: () => releaseDevice(),
  },
  interrupt: () => abortDeviceGroup(),
});
releaseDevice();
link?.close();
