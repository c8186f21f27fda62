// GPUs across nodes: one device group (NCCL) over every GPU of every node. Here, with fakes: node 0's
// rank 0 makes the id, the controllers relay it (node 0 broadcasts, the others publish it in their
// workers' bootstrap, or its failure), and each worker joins with its global rank. On a machine with
// a GPU and Open MPI: two processes on one GPU as two virtual NCCL nodes (NCCL_HOSTID per node, set by
// virtualNodes; NCCL's network transport over loopback) run the multi-node suite on 'cuda' workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { NCCL_BOOTSTRAP_BYTES, createNcclBootstrap, joinDeviceGroup, relayDeviceGroupId } from '../../src/parallel/gpu-comm.js';
import type { DeviceGroupKind } from '../../src/comm/device-groups.js';
import type { Device } from '../../src/devices/device.js';
import { cudaFound } from '../helpers/gpu.js';
import { jobEnv, probeOpenMpi, runJob } from '../comm/mpi-launch.js';

const ID_OFFSET = 16;

/** Two controllers' MPI broadcast from node 0, in one process: the source's message lands in every receiver's buffer. */
function fakeBroadcast(): (isSource: boolean) => (m: Uint8Array) => Promise<void> {
  let sent: Uint8Array | null = null;
  const waiting: (() => void)[] = [];
  return (isSource) => async (m) => {
    if (isSource) {
      sent = m.slice();
      waiting.splice(0).forEach((w) => w());
      return;
    }
    if (!sent) await new Promise<void>((r) => waiting.push(r));
    m.set(sent!);
  };
}

test('node 0\'s id reaches the other nodes\' bootstrap; a failure before it reaches them naming the rank', async () => {
  const net = fakeBroadcast();
  const [a, b] = [createNcclBootstrap(), createNcclBootstrap()];
  const relays = [relayDeviceGroupId(a, true, net(true), 5000), relayDeviceGroupId(b, false, net(false), 5000)];
  const id = Uint8Array.from({ length: NCCL_BOOTSTRAP_BYTES - ID_OFFSET }, (_, i) => (i * 7 + 3) & 0xff);
  setTimeout(() => { // node 0's worker 0 publishes its id a little later
    new Uint8Array(a, ID_OFFSET).set(id);
    Atomics.store(new Int32Array(a, 0, 4), 0, 1);
  }, 20);
  await Promise.all(relays);
  assert.equal(Atomics.load(new Int32Array(b, 0, 4), 0), 1, 'published on node 1');
  assert.deepEqual(new Uint8Array(b, ID_OFFSET), id);

  const net2 = fakeBroadcast();
  const [c, d] = [createNcclBootstrap(), createNcclBootstrap()];
  const c32 = new Int32Array(c, 0, 4);
  Atomics.store(c32, 2, 1); // node 0's rank 1 failed
  Atomics.store(c32, 0, 2);
  await Promise.all([relayDeviceGroupId(c, true, net2(true), 5000), relayDeviceGroupId(d, false, net2(false), 5000)]);
  const d32 = new Int32Array(d, 0, 4);
  assert.deepEqual([Atomics.load(d32, 0), Atomics.load(d32, 2)], [2, 1], 'node 1 sees the failure and the rank');
});

test('a worker joins the job-wide group with its global rank; only node 0\'s rank 0 makes the id', async () => {
  const calls: string[] = [];
  const group: DeviceGroupKind = {
    name: 'FAKE', idBytes: NCCL_BOOTSTRAP_BYTES - ID_OFFSET,
    check: () => undefined,
    newGroupId: (_d, into) => { into.fill(9); calls.push('newGroupId'); },
    join: (_d, id, rank, size) => { calls.push(`join ${rank}/${size} id ${id[0]}`); return {} as never; },
  };
  const device = {} as Device;
  // Node 1's only worker: the relay published node 0's id (5s), so it does not make one and joins as global rank 1 of 2.
  const b = createNcclBootstrap();
  new Uint8Array(b, ID_OFFSET).fill(5);
  Atomics.store(new Int32Array(b, 0, 4), 0, 1);
  await joinDeviceGroup(group, device, b, 0, 1, { span: { globalRank: 1, globalSize: 2, createsId: false } });
  // Node 0's worker makes it and joins as 0 of 2.
  await joinDeviceGroup(group, device, createNcclBootstrap(), 0, 1, { span: { globalRank: 0, globalSize: 2, createsId: true } });
  assert.deepEqual(calls, ['join 1/2 id 5', 'newGroupId', 'join 0/2 id 9']);
});

test('two processes on one GPU as two virtual nodes: the multi-node suite on cuda workers (one NCCL group)', async (t) => {
  const probe = probeOpenMpi();
  if (!cudaFound.ok) return t.skip(`no usable CUDA device: ${cudaFound.reason.split('\n')[0]}`);
  const flavor = probe.flavor;
  if (!flavor) return t.skip(probe.unavailable ?? 'no Open MPI');
  const script = fileURLToPath(new URL('./fixtures/multinode-job.js', import.meta.url));
  const args = [...flavor.args, '-np', '2', process.execPath, script, '1', 'cuda'];
  const r = await runJob(flavor.command, args, jobEnv({ SYNK_NETWORK: 'lo', NCCL_NVLS_ENABLE: '0' }), 300_000);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out.split('\n').filter((l) => l.startsWith('MULTINODE-OK')).length, 2, r.out);
});
