// T.fnFromDescription validates a whole description before building anything: a closed schema
// (dtypes, op names, every op's attributes), slot references defined before use, each step
// re-type-checked, exact value counts and size limits the caller may raise; errors name the path.
// Nothing from a description but the op table's own text and checked numbers reaches generated code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../../src/tensor.js';
import { CpuDevice } from '../../src/devices/cpu/cpu-device.js';
import { generateSource } from '../../src/devices/cpu/fused-codegen.js';
import { DescriptionError } from '../../src/compile/validate-description.js';
import type { DType } from '../../src/tensor/dtype.js';

type Json = Record<string, unknown> & { program: Record<string, unknown> & { steps: Record<string, unknown>[]; constants: Record<string, unknown>[] } };

/** A JSON copy of a description with a fused step (x * 2 + 1, then tanh) and a constant. */
function fusedDescription(): Json {
  const x = T.vector('x');
  const f = T.fn({ inputs: [x], outputs: T.tanh(x.mul(2).add(T.constant([1, 2, 3]))) });
  return JSON.parse(JSON.stringify(f.describe())) as Json;
}
const fusedStep = (d: Json) => d.program.steps.find((s) => s.op === 'fused') as { attrs: { steps: Record<string, unknown>[] } };

/** Asserts that fnFromDescription refuses `d` with a DescriptionError at `path` whose message matches `detail`. */
function refuses(d: unknown, path: string, detail: RegExp, options: Parameters<typeof T.fnFromDescription>[1] = {}): void {
  assert.throws(() => T.fnFromDescription(d, options), (e: Error) => {
    assert.ok(e instanceof DescriptionError, `a DescriptionError, got ${e.name}: ${e.message}`);
    assert.equal(e.path, path, e.message);
    assert.match(e.message, /^fnFromDescription: /);
    assert.match(e.message, detail);
    return true;
  });
}

test('a fused step whose dtype is JavaScript is refused, never run (it used to exit the process)', () => {
  const g = globalThis as { synkInjected?: boolean };
  for (const device of [new CpuDevice({ notice: false }), new T.ReferenceDevice()]) {
    const d = fusedDescription();
    fusedStep(d).attrs.steps[0]!['dtype'] = '(globalThis.synkInjected = true)';
    refuses(d, 'description.program.steps[0].attrs.steps[0].dtype', /expected a dtype/, { device });
    d.program.steps[0]!['op'] = 'process.exit(7)';
    refuses(d, 'description.program.steps[0].op', /unknown op "process.exit\(7\)"/, { device });
  }
  assert.equal(g.synkInjected, undefined);
});

test('the CPU code generator itself maps only the five dtypes to text', () => {
  const sig = (dtype: string) => ({
    steps: [{ op: 'neg', attrs: {}, args: [0], dtype: dtype as DType }, { op: 'neg', attrs: {}, args: [1], dtype: 'float32' as DType }],
    inputDtypes: ['float32' as DType], nd: false, inner: ['s' as const],
  });
  assert.match(generateSource(sig('int32')), /\| 0/);
  assert.throws(() => generateSource(sig('(globalThis.synkInjected = true)')),
    /cpu device: fused step t0 has dtype "\(globalThis.synkInjected = true\)", not one of bool/);
});

test('types admit only real dtypes and boolean patterns, and cannot be changed afterwards', () => {
  assert.throws(() => new T.Variable(new T.TensorType('<js>' as DType, [false])),
    /TensorType: dtype: expected a dtype \(bool, uint8, int32, float32, float64\), got "<js>"/);
  assert.throws(() => new T.TensorType('float32', ['x' as unknown as boolean]), /TensorType: broadcastable\[0\]: expected true or false/);
  assert.throws(() => new T.TensorType('float32', 'ab' as unknown as boolean[]), /expected a list of booleans/);
  // A variable given a look-alike type object still cannot carry its dtype into a compiled function.
  const fake = new T.Variable({ dtype: '(globalThis.synkInjected = true)', broadcastable: [false], ndim: 1 } as unknown as T.TensorType, null, 'fake');
  assert.throws(() => T.fn({ inputs: [fake], outputs: T.neg(fake), device: new CpuDevice({ notice: false }) }),
    /expected a dtype/);
  assert.equal((globalThis as { synkInjected?: boolean }).synkInjected, undefined);
  const t = new T.TensorType('float32', [false]);
  assert.throws(() => { (t as { dtype: string }).dtype = '<js>'; }, TypeError);
  assert.throws(() => { (t.broadcastable as boolean[]).push(true); }, TypeError);
});

test('shapes, values and their sizes are checked before any allocation', () => {
  const withConstant = (value: unknown) => {
    const d = fusedDescription();
    d.program.constants[0]!['value'] = value;
    return d;
  };
  const at = 'description.program.constants[0].value';
  refuses(withConstant({ dtype: 'float32', shape: [1.5], values: [0] }), `${at}.shape[0]`, /expected an integer in \[0, /);
  refuses(withConstant({ dtype: 'float32', shape: ['a'], values: [0] }), `${at}.shape[0]`, /got "a"/);
  refuses(withConstant({ dtype: 'float32', shape: [NaN], values: [0] }), `${at}.shape[0]`, /got NaN/);
  refuses(withConstant({ dtype: 'float32', shape: [-1], values: [0] }), `${at}.shape[0]`, /got -1/);
  refuses(withConstant({ dtype: 'float32', shape: [1e12], values: [] }), `${at}.shape`, /limits\.maxElements \(67108864\)/);
  // A 150-byte description once allocated 1-2 GB: the values must be there, not padded.
  refuses(withConstant({ dtype: 'float64', shape: [200_000_000], values: [1] }), `${at}.shape`, /limits\.maxElements/);
  refuses(withConstant({ dtype: 'float32', shape: [3], values: [1, 2] }), `${at}.values`, /has 2 values, shape \[3\] needs 3/);
  refuses(withConstant({ dtype: 'float32', shape: [3], values: [1, 2, 3, 4] }), `${at}.values`, /has 4 values/);
  refuses(withConstant({ dtype: 'float32', shape: [3], values: [1, 'x', 3] }), `${at}.values[1]`, /expected a number, got "x"/);
  refuses(withConstant({ dtype: 'int32', shape: [3], values: [1, 2.5, 3] }), `${at}.values[1]`, /2\.5 is not a valid int32 value/);
  refuses(withConstant({ dtype: 'int32', shape: [3], values: [1, 2, 3] }), `${at}.dtype`, /is int32, the slot is float32 vector/);
  refuses(withConstant({ dtype: 'float32', shape: [3, 1], values: [1, 2, 3] }), `${at}.shape`, /has 2 axes/);
});

test('slot references: dangling, used before defined (cycles), defined twice, or of the wrong kind', () => {
  const step = (mutate: (d: Json) => void) => { const d = fusedDescription(); mutate(d); return d; };
  refuses(step((d) => { (d.program.steps[0]!['inputs'] as number[])[0] = 99; }), 'description.program.steps[0].inputs[0]',
    /expected a slot defined earlier \(0 to \d+\), got 99/);
  refuses(step((d) => { (d.program.steps[0]!['inputs'] as number[])[0] = d.program.steps[0]!['output'] as number; }), 'description.program.steps[0].inputs[0]',
    /is used before any step or list defines it/);
  refuses(step((d) => { (d.program['outputs'] as number[])[0] = -1; }), 'description.program.outputs[0]', /got -1/);
  refuses(step((d) => { d.program.steps.push({ ...d.program.steps[0]! }); }), 'description.program.steps[1]',
    /is already defined by description\.program\.steps\[0\]/);
  refuses(step((d) => { (d.program['inputs'] as number[]).push(d.program.constants[0]!['slot'] as number); }), 'description.program.inputs[1]',
    /is declared as constant, not input/);
  // Unused slots may stay undefined (the optimiser leaves some behind), but nothing may read one.
  const nSlots = (fusedDescription().program['slots'] as unknown[]).length;
  const extra = step((d) => { (d.program['slots'] as unknown[]).push({ dtype: 'float32', broadcastable: [false], kind: 'input' }); });
  T.fnFromDescription(extra);
  refuses(step((d) => {
    (d.program['slots'] as unknown[]).push({ dtype: 'float32', broadcastable: [false], kind: 'constant' });
    (d.program.steps[0]!['inputs'] as number[])[0] = nSlots;
  }), 'description.program.steps[0].inputs[0]', /slot \d+ is used before any step or list defines it/);
  // Slots of fused-away steps stay undefined: nothing may read them.
  refuses(step((d) => { (d.program['outputs'] as number[]).push((d.program.steps[0]!['output'] as number) - 1); }), 'description.program.outputs[1]',
    /is defined by no list or step/);
});

test('missing and unknown fields, wrong types and inconsistent declarations name their path', () => {
  const d0 = fusedDescription();
  const edit = (mutate: (d: Json) => void) => { const d = fusedDescription(); mutate(d); return d; };
  refuses(edit((d) => { delete d.program['outputs']; }), 'description.program.outputs', /missing/);
  refuses(edit((d) => { d['format'] = 'other'; }), 'description.format', /expected 'synkhronos.function\/1'/);
  refuses(edit((d) => { d.program['extra'] = 1; }), 'description.program.extra', /unknown field/);
  refuses(edit((d) => { (d['inputs'] as Record<string, unknown>[])[0]!['dtype'] = 'float64'; }), 'description.inputs[0]',
    /is float64 vector, the program's input slot is float32 vector/);
  refuses(edit((d) => { d['singleOutput'] = 'yes'; }), 'description.singleOutput', /expected true or false/);
  refuses(edit((d) => { fusedStep(d).attrs.steps[0]!['dtype'] = 'float64'; }), 'description.program.steps[0].attrs.steps[0].dtype',
    /mul of float32, float32 gives float32, not float64/);
  refuses(edit((d) => { fusedStep(d).attrs.steps[0]!['args'] = [0, 7]; }), 'description.program.steps[0].attrs.steps[0].args[1]',
    /expected an integer in \[0, 2\], got 7/);
  refuses(edit((d) => { fusedStep(d).attrs.steps[0]!['attrs'] = { dtype: 'int32' }; }), 'description.program.steps[0].attrs.steps[0].attrs.dtype',
    /unknown field \(expected none\)/);
  refuses(edit((d) => { fusedStep(d).attrs.steps.push({ op: 'fused', attrs: { steps: [] }, args: [0], dtype: 'float32' }); }),
    'description.program.steps[0].attrs.steps[3].op', /cannot contain another fused step/);
  refuses(edit((d) => { fusedStep(d).attrs.steps[0]!['op'] = 'sum'; }), 'description.program.steps[0].attrs.steps[0].op',
    /expected an elementwise op, got "sum"/);
  const slot = (d0.program.steps[0]!['output'] as number);
  refuses(edit((d) => { (d.program['slots'] as Record<string, unknown>[])[slot]!['dtype'] = 'float64'; }), 'description.program.steps[0].output',
    /fused gives float32 vector, but slot \d+ is declared float64 vector/);
  const getter = edit(() => undefined);
  Object.defineProperty(getter, 'log', { get: () => [], enumerable: true });
  refuses(getter, 'description.log', /must be a data property, not a getter/);
  refuses(null, 'description', /expected an object, got null/);
});

test('attributes are checked against each op\'s closed schema, however deeply a value is nested', () => {
  const x = T.matrix('x');
  const d = JSON.parse(JSON.stringify(T.fn({ inputs: [x], outputs: T.sum(x, 1) }).describe())) as Json;
  const sumAt = d.program.steps.findIndex((s) => s.op === 'sum');
  const at = `description.program.steps[${sumAt}]`;
  const withAttrs = (attrs: unknown) => { const c = JSON.parse(JSON.stringify(d)) as Json; c.program.steps[sumAt]!['attrs'] = attrs; return c; };
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  refuses(withAttrs({ axes: deep, keepdims: false }), `${at}.attrs.axes[0]`, /expected an integer in \[0, \d+\], got an array of length 1/);
  refuses(withAttrs({ axes: [1], keepdims: false, code: deep }), `${at}.attrs.code`, /unknown field \(expected axes, keepdims\)/);
  refuses(withAttrs({ axes: [1] }), `${at}.attrs.keepdims`, /missing/);
  refuses(withAttrs({ axes: [5], keepdims: false }), at, /does not type-check: sum: axis 5 is out of range for ndim 2/);
  const two = JSON.parse(JSON.stringify(d)) as Json;
  (two.program.steps[sumAt]!['inputs'] as number[]).push(0);
  refuses(two, `${at}.inputs`, /sum takes 1 input\(s\), got 2/);
});

test('size limits have defaults the caller may raise; bad limits are refused', () => {
  const x = T.vector('x');
  const d = JSON.parse(JSON.stringify(T.fn({ inputs: [x], outputs: x.add(T.constant(new Float32Array(1000))) }).describe())) as Json;
  refuses(d, 'description.program.constants[0].value.shape', /limits\.maxElements \(100\)/, { limits: { maxElements: 100 } });
  const f = T.fnFromDescription(d, { limits: { maxElements: 1000 } });
  assert.equal((f(new Float32Array(1000)) as T.NDArray).size, 1000);
  assert.throws(() => T.fnFromDescription(d, { limits: { maxElements: -1 } }),
    /fnFromDescription: options\.limits\.maxElements: expected a positive integer or Infinity, got -1/);
  assert.throws(() => T.fnFromDescription(d, { limits: { maxWhatever: 1 } as unknown as { maxElements: number } }),
    /options\.limits\.maxWhatever: unknown field/);
  assert.throws(() => T.fnFromDescription(d, { devices: null } as unknown as { device: T.Device }), /fnFromDescription: options\.devices: unknown field/);
});

test('a valid description still rebuilds and runs, on the device given directly or in options', () => {
  const d = fusedDescription();
  const want = Array.from([0, 1, 2], (v, i) => Math.tanh(v * 2 + i + 1));
  const rebuilt = [T.fnFromDescription(d), T.fnFromDescription(d, new T.ReferenceDevice()),
    T.fnFromDescription(d, { device: new CpuDevice({ notice: false }) })];
  for (const g of rebuilt) {
    const got = g([0, 1, 2]) as T.NDArray;
    got.data.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6));
  }
});
