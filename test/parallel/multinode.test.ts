// Many nodes: the same script under mpirun (Open MPI, shared memory) and mpiexec (MPICH), several
// processes on this host as virtual nodes with workers on each. fixtures/multinode-job.ts checks on
// every node that synk.fn (scattered rows, batch, batchS, numSlices, every output op), collectives on
// shared variables and makeTrainFunction on N ranks over K nodes equal one device on the whole batch;
// fixtures/multinode-faults.ts makes nodes disagree (refused on every node with the difference named)
// or fail in the middle of a collective (the whole job ends within 3 s of the deadline, the message
// naming node, rank, collective and sequence number). A launcher that is absent is skipped.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { type JobResult, type MpiFlavor, jobEnv, mpiRun, probeMpich, probeOpenMpi, runJob } from '../comm/mpi-launch.js';
import { NETWORK_VARIABLES, jobLauncher, useNetwork } from '../../src/parallel/nodes.js';

const job = new URL('./fixtures/multinode-job.js', import.meta.url);
const faults = new URL('./fixtures/multinode-faults.js', import.meta.url);
const DEADLINE_MS = 1500; // the faults fixture's commTimeoutMs

const okLines = (r: JobResult) => r.out.split('\n').filter((l) => l.startsWith('MULTINODE-OK'));

function assertAllNodesOk(r: JobResult, nodes: number, workers: number): void {
  assert.equal(r.code, 0, `job failed (code ${r.code}, signal ${r.signal}):\n${r.out}`);
  const ok = okLines(r).sort();
  assert.deepEqual(ok, Array.from({ length: nodes }, (_, k) => `MULTINODE-OK node ${k} of ${nodes} (${workers} workers each)`), r.out);
}

test('without a launcher the script is one node, unchanged (1 node x 2 workers)', async () => {
  const r = await runJob(process.execPath, [fileURLToPath(job), '2'], jobEnv());
  assertAllNodesOk(r, 1, 2);
  assert.doesNotMatch(r.out, /nodes x/, 'nothing about nodes is printed without a launcher');
});

test('an unknown network interface is refused, naming the interfaces this host has', async () => {
  const r = await runJob(process.execPath, [fileURLToPath(faults), 'network'], jobEnv());
  assert.match(r.out, /REFUSED node 0: fork: network interface 'nosuch0' does not exist on this host \(it has: lo/);
});

test('the network option sets MPI\'s and NCCL\'s interface variables, leaving ones already set alone', () => {
  const env: NodeJS.ProcessEnv = { UCX_NET_DEVICES: 'mlx5_0:1' };
  const set = useNetwork('ib0', env, { lo: [], ib0: [] });
  assert.deepEqual(set, ['NCCL_SOCKET_IFNAME', 'OMPI_MCA_btl_tcp_if_include', 'FI_TCP_IFACE']);
  assert.deepEqual(NETWORK_VARIABLES.map((v) => env[v]), ['ib0', 'ib0', 'ib0', 'mlx5_0:1']);
  assert.throws(() => useNetwork('docker0', {}, { lo: [], eth0: [] }), /network interface 'docker0' does not exist on this host \(it has: lo, eth0\)/);
});

test('a launcher is an mpirun, mpiexec or srun step; a Slurm batch script alone is one process', () => {
  assert.equal(jobLauncher({}), null);
  assert.equal(jobLauncher({ OMPI_COMM_WORLD_SIZE: '2' })?.size, 2);
  assert.equal(jobLauncher({ PMI_SIZE: '3' })?.size, 3);
  assert.equal(jobLauncher({ SLURM_NTASKS: '4' }), null, 'sbatch sets SLURM_NTASKS for the batch script too');
  assert.equal(jobLauncher({ SLURM_NTASKS: '4', SLURM_STEP_ID: '0' })?.size, 4);
});

/** Ends well, every node naming the same difference. */
async function assertRefusedEverywhere(flavor: MpiFlavor, fault: string, pattern: RegExp): Promise<void> {
  const r = await mpiRun(flavor, 2, faults, [fault]);
  const refused = r.out.split('\n').filter((l) => l.startsWith('REFUSED'));
  assert.equal(refused.length, 2, `both nodes refuse (${fault}):\n${r.out}`);
  for (const line of refused) assert.match(line, pattern);
}

/** The whole job ends within 3 s of the deadline (timed from node 0's start of the collective), with `message`. */
async function assertJobEndsFast(flavor: MpiFlavor, fault: string, message: RegExp): Promise<void> {
  const r = await mpiRun(flavor, 2, faults, [fault]);
  const ended = Date.now();
  assert.notEqual(r.code, 0, `the job must fail (${fault}):\n${r.out}`);
  assert.doesNotMatch(r.out, /FINISHED/, 'no node finishes on its own');
  const starts = [...r.out.matchAll(/COLLECTIVE-START (\d+)/g)].map((m) => Number(m[1]));
  assert.ok(starts.length >= 1, r.out);
  const ms = ended - Math.min(...starts);
  assert.ok(ms < DEADLINE_MS + 3000, `${fault}: the job ended ${ms} ms after the collective began (deadline ${DEADLINE_MS} ms):\n${r.out}`);
  assert.match(r.out, message, r.out);
  if (fault === 'kill') return; // the launcher may end the survivor before its own deadline
  // NCCL before MPI: the aborting node's workers leave their calls and abort their device groups (bounded) before MPI_Abort.
  const stopped = r.out.search(/before MPI_Abort, (\d+) of \1 workers stopped \(no device group\) in \d+ ms\n/);
  assert.ok(stopped >= 0 && stopped < r.out.search(/aborts the job:/), `${fault}: every worker stopped before MPI_Abort:\n${r.out}`);
}

const TIMEOUT_MESSAGE = new RegExp('aborts the job: node 0 of 2: worker collective allReduce of global rank 0 '
  + '.*MPI rank 0 of 2: allReduce \\(collective #\\d+\\) did not complete within 1500 ms');

for (const probe of [probeOpenMpi(), probeMpich()]) {
  const name = probe.flavor?.name ?? 'an MPI';
  describe(`many nodes under ${name}`, { skip: probe.unavailable ?? false }, () => {
    const flavor = probe.flavor!;
    if (probe.unavailable) process.stdout.write(`# skipped: ${probe.unavailable}\n`);

    test('2 nodes x 2 workers equal one device on the whole batch', async () => {
      assertAllNodesOk(await mpiRun(flavor, 2, job, ['2']), 2, 2);
    });

    test('in pieces of 256 bytes across nodes (every reduction, the training step\'s flat gradient too): still equal to one device', async () => {
      // 32 float64 elements a piece: the models' flat gradients and the large vector go in several pieces, the last uneven.
      const args = [...flavor.args, '-np', '2', process.execPath, fileURLToPath(job), '2'];
      assertAllNodesOk(await runJob(flavor.command, args, jobEnv({ SYNK_COMM_CHUNK_BYTES: '256' })), 2, 2);
    });

    if (flavor.abi === 'openmpi') {
      test('3 nodes x 1 worker equal one device on the whole batch', async () => {
        assertAllNodesOk(await mpiRun(flavor, 3, job, ['1']), 3, 1);
      });
      test('over TCP only, on the interface the network option names (SYNK_NETWORK=lo): printed once, and the job is right', async () => {
        const args = [...flavor.args, '--mca', 'btl', 'tcp,self', '-np', '2', process.execPath, fileURLToPath(job), '1'];
        const r = await runJob(flavor.command, args, jobEnv({ SYNK_NETWORK: 'lo' }));
        assertAllNodesOk(r, 2, 1);
        const lines = r.out.split('\n').filter((l) => /^synkhronos .* nodes x/.test(l));
        assert.equal(lines.length, 1, r.out);
        assert.match(lines[0]!, /2 nodes x 1 reference workers .*MPI Open MPI v\d.*network lo \(set NCCL_SOCKET_IFNAME, OMPI_MCA_btl_tcp_if_include/);
      });
      test('nodes with different functions, different worker counts, or several per host without virtualNodes are refused on every node', async () => {
        const functions = /function #0 of this distribute differs between nodes \(node 0: 'column sums' hash \w+, node 1: 'column sums' hash \w+\)/;
        await assertRefusedEverywhere(flavor, 'functions', functions);
        const workers = /the workers per node.*differs between nodes \(node 0: 2 reference workers.*node 1: 1 reference workers/;
        await assertRefusedEverywhere(flavor, 'workers', workers);
        await assertRefusedEverywhere(flavor, 'no-virtual', /2 processes of this MPI job run on this host.*virtualNodes: true/);
      });
      test('a node that never reaches distribute: the controllers\' agreement check ends the job at the deadline', async () => {
        const message = /node 0 of 2: an agreement check of the controllers across nodes failed: .*allGather \(collective #\d+\) did not complete/;
        await assertJobEndsFast(flavor, 'controller', message);
      });
      test('a node that loses a worker ends the job at once, naming the worker and its global rank', async () => {
        await assertJobEndsFast(flavor, 'worker', /aborts the job: node 1 of 2: worker 1 \(global rank 3\) died/);
      });
    }

    test('a node that hangs in the middle of a collective: the job ends at the deadline, naming node, rank, collective and sequence number', async () => {
      await assertJobEndsFast(flavor, 'hang', TIMEOUT_MESSAGE);
    });

    test('a node killed in the middle of a collective: the job ends within 3 s of the deadline', async () => {
      // The launcher sees the death first (or the survivor's deadline passes): either way the job ends.
      await assertJobEndsFast(flavor, 'kill', /signal 9|Killed|KILLED|did not complete within 1500 ms/);
    });
  });
}
