// The CUDA C template of float intDiv (src/ops/elementwise.ts: NumPy's floor_divide through fmod,
// as an immediately invoked lambda). Without a GPU: kernels using it compile with nvcc for sm_90,
// and the same expression, compiled for the host, gives NumPy's values. Skipped without nvcc / g++.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '../../../src/tensor.js';
import { lowerProgram } from '../../../src/devices/cuda/lower-program.js';
import { CUDA_TEMPLATES } from '../../../src/devices/cuda/codegen/elementwise-templates.js';

const NVCC = process.env['NVCC'] ?? ['/usr/local/bin/nvcc', '/usr/local/cuda/bin/nvcc'].find((p) => existsSync(p)) ?? null;
const CXX = ['/usr/bin/g++', '/usr/bin/c++'].find((p) => existsSync(p)) ?? null;

test('kernels with float32 and float64 intDiv (alone and fused) compile with nvcc for sm_90', { skip: NVCC === null ? 'nvcc not found' : false }, () => {
  const a = T.matrix('a');
  const b = T.vector('b');
  const c = T.vector('c', 'float64');
  const outputs = [T.intDiv(a, b), T.mul(T.intDiv(T.exp(a), b), 2), T.intDiv(c, 0.1), T.mod(c, 0.1)];
  const program = T.fn({ inputs: [a, b, c], outputs }).compiled.description.program;
  const lowered = lowerProgram(program);
  assert.match(lowered.source, /fmodf\(a, b\)/);
  assert.match(lowered.source, /fmod\(a, b\)/);
  const file = join(mkdtempSync(join(tmpdir(), 'synk-intdiv-')), 'intdiv.cu');
  writeFileSync(file, lowered.source);
  const r = spawnSync(NVCC!, ['-std=c++17', '-arch=sm_90', '-c', '-x', 'cu', file, '-o', '/dev/null'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nvcc failed on ${file}\n${r.stderr}`);
});

test('the CUDA intDiv expression gives numpy.floor_divide values (compiled for the host)', { skip: CXX === null ? 'no C++ compiler' : false }, () => {
  const intDiv = CUDA_TEMPLATES.intDiv;
  const av = [7.5, 1.0, -7.5, -1.0, 0.0, 3.0, 5.0, -5.0, 0.3, 7, -7, 1e308];
  const bv = [0.1, 0.1, 0.1, 'INFINITY', -3.0, 0.0, '-INFINITY', 'INFINITY', 0.1, 2, 2, 1e-308];
  const numpy = ['74', '9', '-75', '-1', '-0', 'inf', '-1', '-1', '2', '3', '-4', 'inf'];
  const src = ['#include <cmath>', '#include <cstdio>', 'int main() {',
    ...av.map((a, i) => `  { double x = ${a}, y = ${bv[i]}; std::printf("%g\\n", ${intDiv(['x', 'y'], 'double', {})}); }`),
    ...av.slice(0, 3).map((a, i) => `  { float x = (float)${a}, y = (float)${bv[i]}; std::printf("%g\\n", (double)${intDiv(['x', 'y'], 'float', {})}); }`),
    '  return 0;', '}'];
  const dir = mkdtempSync(join(tmpdir(), 'synk-intdiv-host-'));
  writeFileSync(join(dir, 'main.cpp'), src.join('\n'));
  const build = spawnSync(CXX!, ['-std=c++17', '-O1', join(dir, 'main.cpp'), '-o', join(dir, 'main')], { encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  const out = spawnSync(join(dir, 'main'), { encoding: 'utf8' }).stdout.trim().split('\n');
  // float32: numpy.floor_divide(np.float32([7.5, 1, -7.5]), np.float32(0.1)) = [74, 9, -75]
  assert.deepEqual(out, [...numpy, '74', '9', '-75']);
});
