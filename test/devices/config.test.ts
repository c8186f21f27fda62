// The environment switches: one prefix, read in one module; the earlier names still work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENV_SWITCHES, readConfig, tuneOpenMpiNonBlocking } from '../../src/devices/config.js';

test('every switch has the SYNK_ prefix; defaults apply when nothing is set', () => {
  for (const s of Object.values(ENV_SWITCHES)) assert.match(s.name, /^SYNK_[A-Z_]+$/);
  const c = readConfig({});
  assert.equal(c.blasPath, undefined);
  assert.equal(c.kernelCacheDir, join(tmpdir(), 'synkhronos-kernels'));
  assert.deepEqual(c.cudaLibDirs, []);
  assert.deepEqual(c.cudnnLibDirs, []);
  assert.equal(c.cudnn, true, 'cuDNN is used where found unless SYNK_CUDNN=0');
  assert.equal(c.cudaProfile, 'off');
  assert.equal(c.cudaGraphs, true, 'CUDA graphs are on unless SYNK_CUDA_GRAPHS=0');
  assert.equal(c.cudaGraphsLog, false);
  assert.equal(c.cudaAllocFit, 'loose');
  assert.equal(c.mpiLib, undefined);
});

test('SYNK_CUDA_ALLOC_FIT takes split, loose or exact (any case) and names the switch for anything else', () => {
  assert.equal(readConfig({ SYNK_CUDA_ALLOC_FIT: 'loose' }).cudaAllocFit, 'loose');
  assert.equal(readConfig({ SYNK_CUDA_ALLOC_FIT: 'SPLIT' }).cudaAllocFit, 'split');
  assert.equal(readConfig({ SYNK_CUDA_ALLOC_FIT: 'Exact' }).cudaAllocFit, 'exact');
  assert.throws(() => readConfig({ SYNK_CUDA_ALLOC_FIT: 'best' }), /SYNK_CUDA_ALLOC_FIT="best": expected 'split', 'loose' or 'exact'/);
});

test('the new names are read, and win over the deprecated SYNKHRONOS_ ones, which still work', () => {
  const c = readConfig({
    SYNK_BLAS: '/x/libblas.so', SYNK_KERNEL_CACHE: '/new', SYNKHRONOS_KERNEL_CACHE: '/old', SYNK_CUDA_LIB_DIRS: '/a:/b', SYNK_CUDA_PROFILE: '1',
    SYNK_CUDA_GRAPHS: '0', SYNK_CUDA_GRAPHS_LOG: '1', SYNK_CUDNN_LIB_DIRS: '/dnn:/dnn2', SYNK_CUDNN: '0', SYNK_MPI_LIB: '/opt/mpi/lib/libmpi.so.40',
  });
  assert.deepEqual(c.cudnnLibDirs, ['/dnn', '/dnn2']);
  assert.equal(c.cudnn, false);
  assert.equal(c.mpiLib, '/opt/mpi/lib/libmpi.so.40');
  assert.equal(c.blasPath, '/x/libblas.so');
  assert.equal(c.kernelCacheDir, '/new');
  assert.deepEqual(c.cudaLibDirs, ['/a', '/b']);
  assert.equal(c.cudaProfile, 'wall');
  assert.equal(readConfig({ SYNK_CUDA_PROFILE: 'gpu' }).cudaProfile, 'gpu');
  assert.equal(c.cudaGraphs, false);
  assert.equal(c.cudaGraphsLog, true);
  const old = readConfig({ SYNKHRONOS_KERNEL_CACHE: '/old', SYNKHRONOS_CUDA_LIB_DIRS: '/c', SYNKHRONOS_CUDA_PROFILE: '1' });
  assert.equal(old.kernelCacheDir, '/old');
  assert.deepEqual(old.cudaLibDirs, ['/c']);
  assert.equal(old.cudaProfile, 'wall');
});

test("Open MPI's non-blocking all-reduce algorithm is chosen unless the user chose one", () => {
  const key = 'OMPI_MCA_coll_libnbc_iallreduce_algorithm';
  const before = process.env[key];
  try {
    delete process.env[key];
    tuneOpenMpiNonBlocking();
    assert.equal(process.env[key], '3', "Rabenseifner's, measured faster than libnbc's default choice");
    process.env[key] = '1';
    tuneOpenMpiNonBlocking();
    assert.equal(process.env[key], '1', 'an explicit value wins');
  } finally {
    if (before === undefined) delete process.env[key];
    else process.env[key] = before;
  }
});
