// Integer semantics of the CUDA device's generated kernels, on machines without a GPU: the
// elementwise kernels (and the adding copy of incSubtensor) are compiled with the host C++
// compiler under UndefinedBehaviorSanitizer (signed overflow and out-of-range float-to-integer
// conversions abort the run), executed on the CPU through a small shim, and their results
// compared with exact two's-complement arithmetic (BigInt) and with the reference device.
// NVRTC is free to assume that signed overflow never happens (it dropped abs(x * x) for int32),
// so a kernel that is merely right on the host is not enough: it must have no undefined behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '../../../src/tensor.js';
import { NDArray } from '../../../src/tensor/ndarray.js';
import type { DType } from '../../../src/tensor/dtype.js';
import type { FusedStep, Program } from '../../../src/compile/program.js';
import type { FusedAttrs } from '../../../src/ops/fused.js';
import { ModuleBuilder } from '../../../src/devices/cuda/codegen/module.js';
import { COMMON, VEC } from '../../../src/devices/cuda/codegen/prelude.js';
import { elementwiseKernels } from '../../../src/devices/cuda/codegen/elementwise.js';
import { copyKernel } from '../../../src/devices/cuda/codegen/misc.js';
import { ctype } from '../../../src/devices/cuda/codegen/ctypes.js';
import { HOST_CXX, cudaHostShim } from '../../helpers/cuda-host.js';

const CXX = HOST_CXX;
const UBSAN = ['-fsanitize=undefined,float-cast-overflow', '-fno-sanitize-recover=all'];
const ubsanWorks = CXX !== null && (() => {
  const dir = mkdtempSync(join(tmpdir(), 'synk-ubsan-'));
  try {
    writeFileSync(join(dir, 'p.cpp'), 'int main() { return 0; }\n');
    return spawnSync(CXX, [...UBSAN, join(dir, 'p.cpp'), '-o', join(dir, 'p')]).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();
const SKIP = CXX === null ? 'no host C++ compiler (g++ or clang++)' : !ubsanWorks ? `${CXX} cannot build with -fsanitize=undefined` : false;

/** Enough of CUDA for the generated kernels to compile as host C++ (one thread covers each grid-stride loop). */
const SHIM = `${cudaHostShim({ emulatedThreads: false })}using std::fmod; using std::trunc; using std::floor;
`;

interface Case {
  readonly name: string;
  readonly inputs: readonly T.Variable[];
  readonly output: T.Variable;
  readonly values: readonly NDArray[];
  /** The exact answer (NumPy's wrap-around), when it differs from what the reference can be trusted with. */
  readonly expected: readonly number[];
  /** Also compare with the reference device (exact there: every intermediate stays below 2^53). */
  readonly reference: boolean;
}

const i32 = (name: string) => T.tensor({ dtype: 'int32', ndim: 1, name });
const u8 = (name: string) => T.tensor({ dtype: 'uint8', ndim: 1, name });
const ints = (values: readonly number[], dtype: DType = 'int32') => NDArray.from([...values], { dtype });

/** x ** e modulo 2^bits, read back as the dtype stores it; negative exponents as the reference (truncated float power). */
function exactPow(x: number, e: number, dtype: 'int32' | 'uint8'): number {
  if (e < 0) return x === 1 ? 1 : x === -1 ? (e % 2 === 0 ? 1 : -1) : 0;
  const bits = dtype === 'int32' ? 32 : 8;
  const mod = 1n << BigInt(bits);
  let r = 1n, b = ((BigInt(x) % mod) + mod) % mod, k = BigInt(e);
  for (; k > 0n; k >>= 1n) { if (k & 1n) r = (r * b) % mod; b = (b * b) % mod; }
  return dtype === 'int32' ? Number(BigInt.asIntN(32, r)) : Number(r);
}
const wrap32 = (v: bigint) => Number(BigInt.asIntN(32, v));

function cases(): Case[] {
  const x = i32('x'), y = i32('y'), ux = u8('ux'), uy = u8('uy');
  const big = [50000, -46341, -(2 ** 31), 46340, 2 ** 31 - 1];
  const bases = [2, 3, -3, 7, 1, -1, -1, 0, 5, -2, 2];
  const exps = [31, 40, 21, 0, -5, -3, -4, -1, -2, 31, 32];
  const ub = [3, 255, 2, 0, 17], ue = [5, 255, 8, 0, 3];
  const edges = [2 ** 31 - 1, -(2 ** 31), 65536, -7, 46341];
  const other = [1, -1, 65536, 3, 46341];
  const huge = NDArray.from([1e30, -1e30, 4294967297.5, -4294967297.5, NaN, Infinity, 2 ** 31, -(2 ** 31) - 1], { dtype: 'float64' });
  const f = T.tensor({ dtype: 'float64', ndim: 1, name: 'f' });
  return [
    { name: 'abs(square(x)) wraps (NumPy: 50000^2 -> 1794967296 after abs)', inputs: [x], output: T.abs(T.square(x)), values: [ints(big)],
      expected: big.map((v) => Math.abs(wrap32(BigInt(v) * BigInt(v))) | 0), reference: true },
    { name: 'pow(x, 31) with a constant exponent wraps to -2^31', inputs: [x], output: T.pow(x, 31), values: [ints([2, -2])],
      expected: [-(2 ** 31), -(2 ** 31)], reference: true },
    { name: 'pow(x, y) is exact integer arithmetic, negative exponents as the reference', inputs: [x, y], output: T.pow(x, y),
      values: [ints(bases), ints(exps)],
      expected: bases.map((b, i) => exactPow(b, exps[i]!, 'int32')), reference: false },
    { name: 'uint8 pow wraps modulo 256', inputs: [ux, uy], output: T.pow(ux, uy), values: [ints(ub, 'uint8'), ints(ue, 'uint8')],
      expected: ub.map((b, i) => exactPow(b, ue[i]!, 'uint8')), reference: false },
    { name: 'add, sub, mul and neg wrap in a fused chain', inputs: [x, y], output: T.sub(T.neg(T.mul(x, y)), T.add(x, y)), values: [ints(edges), ints(other)],
      expected: edges.map((a, i) => wrap32(-BigInt(wrap32(BigInt(a) * BigInt(other[i]!))) - BigInt(wrap32(BigInt(a) + BigInt(other[i]!))))), reference: true },
    { name: 'intDiv and mod of INT_MIN by -1 and by 0', inputs: [x, y], output: T.add(T.intDiv(x, y), T.mod(x, y)),
      values: [ints([-(2 ** 31), 7, -7, 5]), ints([-1, 0, 2, -3])],
      expected: [-(2 ** 31), 0, -4 + 1, -2 + -1], reference: true },
    { name: 'float64 to int32 casts wrap as ToInt32 (no out-of-range conversion)', inputs: [f], output: T.cast(f, 'int32'), values: [huge],
      expected: Array.from(huge.data, (v) => v | 0), reference: true },
  ];
}

/** The fused steps and kernel input arrays of a one-step program (inputs and constants). */
function kernelSpec(program: Program, values: readonly NDArray[]): { steps: FusedStep[]; inputs: NDArray[] } {
  assert.equal(program.steps.length, 1, 'the case compiles to one elementwise kernel');
  const step = program.steps[0]!;
  const slotValue = (slot: number): NDArray => {
    const k = program.inputs.indexOf(slot);
    if (k >= 0) return values[k]!;
    const c = program.constants.find((e) => e.slot === slot)!;
    return NDArray.from(c.value.values.map(Number), { dtype: c.value.dtype }).reshape(c.value.shape);
  };
  const steps = step.op === 'fused' ? [...(step.attrs as FusedAttrs).steps]
    : [{ op: step.op as FusedStep['op'], attrs: step.attrs, args: step.inputs.map((_, i) => i), dtype: program.slots[step.output]!.dtype }];
  return { steps, inputs: step.inputs.map(slotValue) };
}

const cArray = (a: NDArray): string => Array.from(a.data,
  (v) => (Number.isNaN(v) ? 'SK_NAN_D' : v === Infinity ? 'SK_INF_D' : v === -Infinity ? '(-SK_INF_D)' : String(v))).join(', ');

/** Compiles and runs a main() that calls each kernel and prints one line of results per call. */
function runOnHost(mb: ModuleBuilder, calls: readonly string[]): string[] {
  const main = `int main() {\n${calls.join('\n')}\n  return 0;\n}\n`;
  const dir = mkdtempSync(join(tmpdir(), 'synk-int-'));
  try {
    writeFileSync(join(dir, 'k.cpp'), [SHIM, COMMON, VEC, ...mb.units().map((u) => u.body), main].join('\n'));
    const build = spawnSync(CXX!, ['-std=c++17', '-O2', '-w', ...UBSAN, join(dir, 'k.cpp'), '-o', join(dir, 'k')], { encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    const run = spawnSync(join(dir, 'k'), { encoding: 'utf8' });
    assert.equal(run.stderr, '', 'no undefined behaviour at run time');
    assert.equal(run.status, 0);
    return run.stdout.trim().split('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('int32 and uint8 elementwise kernels wrap as two\'s complement, with no undefined behaviour', { skip: SKIP }, () => {
  const all = cases();
  const mb = new ModuleBuilder();
  const calls: string[] = [];
  all.forEach((c, k) => {
    const program = T.fn({ inputs: [...c.inputs], outputs: c.output }).compiled.description.program;
    const { steps, inputs } = kernelSpec(program, c.values);
    const kern = elementwiseKernels(mb, inputs.map((a) => a.dtype), steps, 1);
    const n = Math.max(...inputs.map((a) => a.size));
    const mask = inputs.reduce((m, a, i) => (a.size === 1 ? m | (1 << i) : m), 0);
    const arrays = inputs.map((a, i) => `  alignas(16) static ${ctype(a.dtype)} in${k}_${i}[] = { ${cArray(a)} };`);
    const print = kern.outDtype === 'uint8' || kern.outDtype === 'bool' ? '(int)' : '';
    calls.push(...arrays, `  alignas(16) static ${ctype(kern.outDtype)} out${k}[${n}];`,
      `  ${kern.contiguous}(out${k}, ${inputs.map((_, i) => `in${k}_${i}`).join(', ')}, ${n}, ${mask});`,
      `  for (int i = 0; i < ${n}; i++) printf("%d%s", ${print}out${k}[i], i + 1 < ${n} ? " " : "\\n");`);
  });
  const lines = runOnHost(mb, calls);
  all.forEach((c, k) => {
    const got = lines[k]!.split(' ').map(Number);
    assert.deepEqual(got, [...c.expected], c.name);
    if (c.reference) {
      const want = T.fn({ inputs: [...c.inputs], outputs: c.output, device: new T.ReferenceDevice() })(...c.values) as NDArray;
      assert.deepEqual(got, [...want.data], `${c.name}: the reference agrees`);
    }
  });
});

test('the adding copy (incSubtensor on int32) wraps instead of overflowing', { skip: SKIP }, () => {
  const mb = new ModuleBuilder();
  const name = copyKernel(mb, 'int32', 'int32', 1);
  const dst = [2 ** 31 - 1, -(2 ** 31), 5], src = [1, -1, 7];
  const lines = runOnHost(mb, [
    `  static int dst[] = { ${dst.join(', ')} }; static int src[] = { ${src.join(', ')} };`,
    `  ${name}(dst, src, 3, 0, 0, 1, 3, 1, 1);`,
    '  printf("%d %d %d\\n", dst[0], dst[1], dst[2]);',
  ]);
  assert.deepEqual(lines[0]!.split(' ').map(Number), dst.map((d, i) => wrap32(BigInt(d) + BigInt(src[i]!))));
});
