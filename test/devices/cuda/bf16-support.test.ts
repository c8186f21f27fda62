// Which GPUs take the 'bf16' policy, on any machine: a CudaDevice over a stand-in context of a given
// architecture (no driver needed). Before sm_80 (no bfloat16 tensor cores) T.fn refuses the policy by
// name, and compile refuses a program made under it (a description from elsewhere), before any lowering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../../src/tensor.js';
import { CudaDevice } from '../../../src/devices/cuda/cuda-device.js';

function deviceOf(arch: string): CudaDevice {
  const d = Object.create(CudaDevice.prototype) as CudaDevice;
  Object.assign(d, { name: `cuda:0 stand-in ${arch}`, closed: false, cudnn: false, ctx: { arch, makeCurrent: () => {} } });
  return d;
}

test("sm_80 and later take 'bf16'; sm_75 is refused with the reason, by T.fn and by compile", () => {
  for (const arch of ['sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']) assert.equal(deviceOf(arch).supportsPrecision('bf16'), true, arch);
  const old = deviceOf('sm_75');
  assert.equal(old.supportsPrecision('fp32'), true);
  assert.equal(old.supportsPrecision('bf16'), 'bfloat16 tensor cores need compute capability 8.0 or later, this GPU is sm_75');
  const a = T.matrix('a');
  assert.throws(() => T.fn({ inputs: [a], outputs: T.dot(a, a), precision: 'bf16', device: old }),
    (e: unknown) => e instanceof RangeError && e.message === "fn: precision 'bf16' is not supported by device cuda:0 stand-in sm_75: "
      + 'bfloat16 tensor cores need compute capability 8.0 or later, this GPU is sm_75');
  const program = T.fn({ inputs: [a], outputs: T.dot(a, a), precision: 'bf16' }).compiled.description.program;
  assert.throws(() => old.compile(program), /cuda:0 stand-in sm_75: precision 'bf16' \(the program's policy\) is not supported: bfloat16 tensor cores need/);
});
