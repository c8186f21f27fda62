// MPI through koffi: the ABI detection, the library search and the launcher checks (always), and
// the MPI communicator's collectives, deadline, mismatch and world-size errors in real jobs under
// every launcher found here (Open MPI's mpirun over shared memory and over TCP on loopback, MPICH's
// mpiexec); a launcher that is absent is skipped with the reason printed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { detectAbi, handlesFor, mpiDatatypeName } from '../../src/comm/mpi/abi.js';
import { checkWorldSize, detectLauncher, loadFirst, mpiCandidates } from '../../src/comm/mpi/find-mpi.js';
import { MpiLibrary } from '../../src/comm/mpi/ffi.js';
import { type MpiFlavor, jobEnv, mpiRun, probeMpich, probeOpenMpi, runJob } from './mpi-launch.js';

const fixture = new URL('./fixtures/mpi-collectives.js', import.meta.url);

test('ABI detection: standard ABI, Open MPI by its exported globals, MPICH by its version string; anything else is an error', () => {
  const probe = (symbols: string[], version: string | null) => ({ hasSymbol: (s: string) => symbols.includes(s), libraryVersion: () => version });
  assert.equal(detectAbi('x', probe(['MPI_Abi_get_version', 'ompi_mpi_comm_world'], null)), 'standard');
  assert.equal(detectAbi('x', probe(['ompi_mpi_comm_world'], 'Open MPI v4.1.4')), 'openmpi');
  assert.equal(detectAbi('x', probe([], 'MPICH Version:\t4.0.2')), 'mpich');
  assert.equal(detectAbi('x', probe([], 'Intel(R) MPI Library 2021.10')), 'mpich');
  assert.throws(() => detectAbi('/opt/libfoo.so', probe([], 'FooMPI 1.0')), /\/opt\/libfoo\.so: unknown ABI.*FooMPI 1\.0/);
  const mpich = handlesFor('mpich', () => assert.fail('MPICH handles are constants'));
  assert.equal(mpich.commWorld, 0x44000000);
  assert.equal(mpich.datatypes.float32, 0x4c00040a);
  assert.equal(mpich.ops.sum, 0x58000003);
  const ompi = handlesFor('openmpi', (name) => BigInt(name.length) * 16n);
  assert.equal(ompi.commWorld, BigInt('ompi_mpi_comm_world'.length) * 16n, 'Open MPI handles are the addresses of its globals');
  assert.equal(handlesFor('standard', () => 0n).commWorld, 0x101n);
  assert.equal(mpiDatatypeName('bool'), 'uint8');
});

test('the launcher is read from its environment; a world of another size is an error naming both', () => {
  assert.equal(detectLauncher({}), null);
  assert.deepEqual(detectLauncher({ OMPI_COMM_WORLD_SIZE: '4' }), { name: "Open MPI's mpirun", sizeVariable: 'OMPI_COMM_WORLD_SIZE', size: 4, abi: 'openmpi' });
  assert.equal(detectLauncher({ PMI_SIZE: '2' })?.abi, 'mpich');
  assert.equal(detectLauncher({ SLURM_NTASKS: '8' })?.size, 8);
  assert.throws(() => detectLauncher({ PMI_SIZE: 'two' }), /PMI_SIZE="two": expected a positive number/);
  checkWorldSize(4, 'libmpi.so.40', 'openmpi', detectLauncher({ OMPI_COMM_WORLD_SIZE: '4' }));
  checkWorldSize(1, 'libmpi.so.40', 'openmpi', null);
  assert.throws(
    () => checkWorldSize(1, 'libmpich.so.12', 'mpich', detectLauncher({ OMPI_COMM_WORLD_SIZE: '2' })),
    /mpirun started 2 processes \(OMPI_COMM_WORLD_SIZE=2\) but libmpich\.so\.12 sees a world of 1; the launcher is Open MPI's but the library is MPICH's/,
  );
});

test('the library search: SYNK_MPI_LIB alone when set, else the launcher\'s MPI first; a failure names every place looked', () => {
  assert.deepEqual(mpiCandidates(undefined, { SYNK_MPI_LIB: '/opt/mpi/libmpi.so' }), ['/opt/mpi/libmpi.so']);
  assert.deepEqual(mpiCandidates('/a/libmpich.so.12', { SYNK_MPI_LIB: '/b' }), ['/a/libmpich.so.12']);
  assert.equal(mpiCandidates(undefined, {})[0], 'libmpi.so.40');
  assert.equal(mpiCandidates(undefined, { PMI_SIZE: '2' })[0], 'libmpich.so.12');
  assert.ok(mpiCandidates(undefined, { MPI_HOME: '/opt/ompi' }).includes('/opt/ompi/lib/libmpi.so.40'));
  const err = (() => {
    try {
      loadFirst(['libmpi.so.40', 'libmpich.so.12'], (p) => {
        throw new Error(`${p}: cannot open shared object file`);
      }, false);
    } catch (e) {
      return e as Error;
    }
    return assert.fail('loadFirst did not throw');
  })();
  assert.match(err.message, /no MPI library could be loaded; looked in:\n {2}libmpi\.so\.40: .*\n {2}libmpich\.so\.12: .*\n/);
  assert.match(err.message, /\ninstall MPI \(Debian\/Ubuntu: apt-get install openmpi-bin/);
  const explicit = /looked in:\n {2}\/nonexistent\/libmpi\.so\.40: .*\nthe library named by SYNK_MPI_LIB/;
  assert.throws(() => MpiLibrary.load({ library: '/nonexistent/libmpi.so.40' }), explicit);
});

const ok = (r: { code: number | null; out: string }): void => {
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /FAIL/);
};
const infos = (out: string): { rank: number; size: number; localSize: number; abi: string }[] =>
  out.split('\n').filter((l) => l.startsWith('INFO ')).map((l) => JSON.parse(l.slice(5)) as { rank: number; size: number; localSize: number; abi: string });

function flavorTests(flavor: MpiFlavor): void {
  for (const np of [2, 3]) {
    test(`collectives on ${np} ranks: results equal an independent computation; every rank knows the world and its node`, async () => {
      const r = await mpiRun(flavor, np, fixture, ['collectives']);
      ok(r);
      const seen = infos(r.out);
      assert.deepEqual(seen.map((i) => i.rank).sort(), Array.from({ length: np }, (_, k) => k));
      for (const i of seen) assert.deepEqual([i.size, i.localSize, i.abi], [np, np, flavor.abi]);
    });
  }
  if (flavor.abi === 'openmpi') {
    test('collectives on 2 ranks over TCP on loopback (no shared-memory transport)', async () => {
      ok(await mpiRun(flavor, 2, fixture, ['collectives'], ['--mca', 'btl', 'self,tcp', '--mca', 'btl_tcp_if_include', 'lo']));
    });
  }
  test('a rank that skips a collective: the others throw at the deadline naming rank, collective and sequence number, and abort ends the job', async () => {
    const r = await mpiRun(flavor, 3, fixture, ['deadline']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /TIMEOUT rank 0 CommTimeoutError: MPI rank 0 of 3: allReduce \(collective #2\) did not complete within 1500 ms/);
    assert.match(r.out, /AFTER rank 0 CommAbortedError: MPI rank 0: barrier \(collective #3\) refused/);
    assert.doesNotMatch(r.out, /DONE/);
    const abortAfter = Number(/ABORT rank 0 after (\d+) ms/.exec(r.out)?.[1]);
    assert.ok(abortAfter >= 1500 && abortAfter < 1500 + 3000, `rank 0 aborted ${abortAfter} ms after calling allReduce (deadline 1500 ms)`);
    assert.ok(r.ms < 20_000, `the job took ${Math.round(r.ms)} ms to end (the skipping rank would sleep 60 s)`);
  });
  test('ranks that call different collectives all throw CommMismatchError, and stay usable', async () => {
    const r = await mpiRun(flavor, 3, fixture, ['mismatch']);
    ok(r);
    assert.match(r.out, /MISMATCH rank 0 CommMismatchError: MPI collective #1: rank 0 called allReduce but rank 1 called broadcast/);
    assert.match(r.out, /MISMATCH rank 2 CommMismatchError: MPI collective #1: rank 2 called broadcast but rank 0 called allReduce/);
    assert.equal((r.out.match(/^DONE/gm) ?? []).length, 3);
  });
  test(`without a launcher but with ${flavor.sizeVariable}=2: the world-size mismatch is an error naming both`, async () => {
    const r = await runJob(process.execPath, [fileURLToPath(fixture), 'world'], jobEnv({ [flavor.sizeVariable]: '2' }), 60_000);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, new RegExp(`INIT Error: MPI world size mismatch: .* started 2 processes \\(${flavor.sizeVariable}=2\\) but \\S+ sees a world of 1`));
  });
}

for (const [label, probe] of [['Open MPI', probeOpenMpi()], ['MPICH', probeMpich()]] as const) {
  if (probe.flavor === null) {
    console.log(`MPI tests under ${label} skipped: ${probe.unavailable}`);
    describe(`MPI communicator under ${label}`, { skip: probe.unavailable }, () => {});
  } else {
    describe(`MPI communicator under ${probe.flavor.name} (${probe.flavor.command})`, () => flavorTests(probe.flavor!));
  }
}
