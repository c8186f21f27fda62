// Devices register themselves (src/devices/builtin.ts): fork's names, spec checks and resolution
// come from the registrations, not from lists of kinds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEVICE_REGISTRATIONS } from '../../src/devices/builtin.js';
import {
  checkDeviceSpec, deviceGroupOf, deviceNames, hasDeviceGroup, registeredKinds, resolveDevices, specsShareHostMemory, withMatmulPrecision,
} from '../../src/devices/create.js';
import { DEVICE_GROUP_ID_BYTES } from '../../src/devices/device-groups.js';

test('the registered kinds are the registrations, in order, and fork takes each of them and auto', () => {
  assert.deepEqual(registeredKinds(), DEVICE_REGISTRATIONS.map((r) => r.kind));
  assert.deepEqual(registeredKinds(), ['reference', 'cpu', 'cuda']);
  assert.deepEqual(deviceNames(), ['reference', 'cpu', 'cuda', 'auto']);
});

test('a spec is checked by its registration: unknown kinds and keys, and bad values, are refused', () => {
  assert.deepEqual(checkDeviceSpec({ kind: 'cpu', threads: 2 }, 'd'), { kind: 'cpu', threads: 2 });
  assert.throws(() => checkDeviceSpec({ kind: 'tpu' }, 'd'), /d\.kind: expected 'reference', 'cpu' or 'cuda', got string tpu/);
  assert.throws(() => checkDeviceSpec({ kind: 'cpu', index: 0 }, 'd'), /d: unknown option 'index' \(known: kind, blasPath, forceFallback, threads\)/);
  assert.throws(() => checkDeviceSpec({ kind: 'cuda' }, 'd'), /d\.index: a cuda spec needs the GPU's index/);
  assert.throws(() => checkDeviceSpec({ kind: 'reference', float64: 1 }, 'd'), /d\.float64: expected a boolean/);
});

test('resolution, host memory and matmul precision are asked of the registrations', async () => {
  assert.deepEqual(await resolveDevices('reference', 2), [{ kind: 'reference' }, { kind: 'reference' }]);
  assert.equal(specsShareHostMemory([{ kind: 'cpu' }, { kind: 'reference' }]), true);
  assert.equal(specsShareHostMemory([{ kind: 'cuda', index: 0 }]), false);
  const specs = withMatmulPrecision([{ kind: 'cpu' }, { kind: 'cuda', index: 0 }], 'high');
  assert.deepEqual(specs, [{ kind: 'cpu' }, { kind: 'cuda', index: 0, matmulPrecision: 'high' }]);
  await assert.rejects(resolveDevices('tpu', 1), /no device of kind 'tpu'/);
});

test('device communicators are asked of the registrations: CUDA names NCCL, the host devices none', async () => {
  assert.deepEqual(registeredKinds().filter(hasDeviceGroup), ['cuda']);
  assert.equal(hasDeviceGroup('tpu'), false);
  assert.equal(await deviceGroupOf('cpu'), undefined);
  assert.equal(await deviceGroupOf('tpu'), undefined);
  // Loading the group's module loads no CUDA library (only joining one does).
  const nccl = await deviceGroupOf('cuda');
  assert.ok(nccl);
  assert.equal(nccl.name, 'NCCL');
  assert.ok(nccl.idBytes > 0 && nccl.idBytes <= DEVICE_GROUP_ID_BYTES);
});
