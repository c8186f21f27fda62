// OpenBLAS's core type: chosen by the library unless it would pick a slower core than the CPU has.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { bestCoreFor, cacheFile, cpuInfo, decide } from '../../../src/devices/cpu/openblas-coretype.js';
import { findBlas } from '../../../src/devices/cpu/blas.js';

describe('OpenBLAS core type', () => {
  it('the best core follows the CPU flags', () => {
    assert.equal(bestCoreFor(new Set(['avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512dq', 'avx512vl']))?.name, 'SKYLAKEX');
    assert.equal(bestCoreFor(new Set(['avx', 'avx2', 'fma', 'avx512f', 'avx512_bf16']))?.name, 'COOPERLAKE');
    assert.equal(bestCoreFor(new Set(['avx', 'avx2', 'fma']))?.name, 'HASWELL');
    assert.equal(bestCoreFor(new Set(['sse2'])), null);
  });
  it('overrides only a slower pick', () => {
    const avx512 = new Set(['avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512dq', 'avx512vl']);
    assert.deepEqual(decide('Prescott', avx512), { libraryPick: 'Prescott', chosen: 'SKYLAKEX' });
    assert.deepEqual(decide('Haswell', avx512), { libraryPick: 'Haswell', chosen: 'SKYLAKEX' });
    assert.deepEqual(decide('SkylakeX', avx512), { libraryPick: 'SkylakeX', chosen: null });
    assert.deepEqual(decide('Zen', new Set(['avx', 'avx2', 'fma'])), { libraryPick: 'Zen', chosen: null });
    assert.deepEqual(decide('SomeFutureCore', avx512), { libraryPick: 'SomeFutureCore', chosen: null }, 'an unknown name is trusted');
  });

  const openblas = findBlas({ candidates: ['libopenblas.so.0', 'libopenblas.so'] }).blas;
  const cpu = cpuInfo();
  const skip = openblas === null || openblas.name !== 'openblas' ? 'no OpenBLAS on this machine'
    : cpu === null || bestCoreFor(cpu.flags) === null ? 'not an x86-64 Linux CPU with AVX' : false;
  it('a library that would pick a generic core gets the CPU\'s best one, named in the notice', { skip }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'synk-core-'));
    try {
      // Plant the probe's answer "Prescott" in the cache, as a library too old for this CPU would give.
      const file = cacheFile(openblas!.path, cpu!.model, cpu!.flags)!.replace(dirname(cacheFile(openblas!.path, cpu!.model, cpu!.flags)!), dir);
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, 'Prescott');
      const script = [
        "import { CpuDevice } from './dist/src/devices/cpu/cpu-device.js';",
        "import koffi from 'koffi';",
        'const d = new CpuDevice({ notice: false });',
        "const core = koffi.load(d.blas.path).func('const char *openblas_get_corename()')();",
        'console.log(JSON.stringify({ env: process.env.OPENBLAS_CORETYPE, core, notice: d.notice }));',
      ].join('\n');
      const env: Record<string, string | undefined> = { ...process.env, SYNK_KERNEL_CACHE: dir };
      delete env['OPENBLAS_CORETYPE'];
      delete env['SYNK_BLAS'];
      const run = (extra: Record<string, string>) => {
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...env, ...extra }, encoding: 'utf8', timeout: 20_000 });
        assert.equal(r.status, 0, r.stderr);
        return JSON.parse(r.stdout.trim().split('\n').pop()!) as { env?: string; core: string; notice: string };
      };
      const best = bestCoreFor(cpu!.flags)!.name;
      const chosen = run({});
      assert.equal(chosen.env, best);
      assert.equal(chosen.core.toUpperCase(), best);
      assert.match(chosen.notice, new RegExp(`core type ${best} chosen \\(the library would pick Prescott on this CPU; OPENBLAS_CORETYPE overrides\\)`));
      const explicit = run({ OPENBLAS_CORETYPE: 'Haswell' });
      assert.equal(explicit.core, 'Haswell', 'an explicit OPENBLAS_CORETYPE wins');
      assert.doesNotMatch(explicit.notice, /chosen/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
