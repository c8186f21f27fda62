// The Communicator contract, run over every transport of transports.ts: broadcast, scatter, gather,
// allGather, reduce, allReduce and barrier, every dtype and root, buffers smaller and larger than a
// transport's staging, unequal lengths, and results bit-equal to a sequential reduction.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ReduceOp, REDUCE_OPS, combineInto, finishAvg } from '../../src/comm/reduce-ops.js';
import { type DType, type TypedArray, storageOf } from '../../src/tensor/dtype.js';
import type { Step } from './fixtures/collective-steps.js';
import type { CommGroup, GroupConfig, Transport } from './transports.js';

const DTYPES: DType[] = ['float32', 'float64', 'int32', 'uint8', 'bool'];

/** Small values (halves for floats) whose sums and products are exact in every dtype and order. */
export function make(dtype: DType, length: number, seed: number): TypedArray {
  const a = new (storageOf(dtype))(length);
  for (let i = 0; i < length; i++) {
    const k = (i * 7 + seed * 13) % 11;
    a[i] = dtype === 'bool' ? Number((i + seed) % 3 === 0) : dtype === 'uint8' ? k : dtype === 'int32' ? k - 5 : k - 5 + 0.5;
  }
  return a;
}

function expectedReduce(op: ReduceOp, dtype: DType, bufs: TypedArray[]): TypedArray {
  const acc = bufs[0]!.slice();
  for (const b of bufs.slice(1)) combineInto(op, acc, b, { dtype });
  if (op === 'avg') finishAvg(acc, bufs.length);
  return acc;
}

/** Typed arrays (nested in arrays) as plain arrays, for deepEqual across dtypes. */
export const arr = (x: unknown): unknown => (ArrayBuffer.isView(x) ? Array.from(x as TypedArray) : Array.isArray(x) ? x.map(arr) : x);

function sharedCases(config: GroupConfig, transport: Transport, group: () => CommGroup): void {
  const { size: n, scale } = config;

  test('broadcast from every root, every dtype, small and larger than the arena', async () => {
    const cases = DTYPES.flatMap((dtype) => [1, 37 * scale].flatMap((len) => Array.from({ length: n }, (_, root) => ({ dtype, len, root }))));
    const out = await group().run((rank) => ({
      steps: cases.map((c) => {
        const buf = rank === c.root ? make(c.dtype, c.len, 3) : new (storageOf(c.dtype))(c.len);
        return { kind: 'broadcast', buf, options: { root: c.root } };
      }),
    }));
    for (const r of out) cases.forEach((c, i) => assert.deepEqual(arr(r.values[i]), arr(make(c.dtype, c.len, 3)), JSON.stringify(c)));
  });

  test('scatter of unequal parts (some empty) from every root', async () => {
    const lens = Array.from({ length: n }, (_, r) => (r % 2 === 1 ? 0 : (r + 1) * 5 * scale));
    const parts = (dtype: DType): TypedArray[] => lens.map((len, r) => make(dtype, len, r));
    const cases = DTYPES.flatMap((dtype) => Array.from({ length: n }, (_, root) => ({ dtype, root })));
    const out = await group().run((rank) => ({
      steps: cases.map((c) => ({ kind: 'scatter', parts: rank === c.root ? parts(c.dtype) : null, options: { root: c.root } })),
    }));
    out.forEach((r, rank) => cases.forEach((c, i) => {
      const got = r.values[i] as TypedArray;
      assert.equal(got.constructor, storageOf(c.dtype));
      assert.deepEqual(arr(got), arr(parts(c.dtype)[rank]));
    }));
  });

  test('gather and allGather keep unequal lengths in rank order, nothing truncated', async () => {
    const len = (r: number): number => (r === 1 ? 0 : (3 * r + 1) * scale);
    const cases = DTYPES.flatMap((dtype) => [
      ...Array.from({ length: n }, (_, root) => ({ dtype, kind: 'gather' as const, root })),
      { dtype, kind: 'allGather' as const, root: 0 },
    ]);
    const out = await group().run((rank) => ({
      steps: cases.map((c) => ({ kind: c.kind, buf: make(c.dtype, len(rank), rank), options: c.kind === 'gather' ? { root: c.root } : {} })),
    }));
    const want = (dtype: DType): unknown => Array.from({ length: n }, (_, r) => arr(make(dtype, len(r), r)));
    out.forEach((r, rank) => cases.forEach((c, i) => {
      if (c.kind === 'gather' && rank !== c.root) assert.equal(r.values[i], null);
      else assert.deepEqual(arr(r.values[i]), want(c.dtype), JSON.stringify(c));
    }));
  });

  test('reduce and allReduce: every op and dtype, every root, bit-equal to a sequential reduction', async () => {
    const len = 29 * scale;
    const input = (dtype: DType, op: ReduceOp, rank: number): TypedArray => {
      const a = make(dtype, len, rank + 1);
      const nanHere = transport.nanThroughMaxMin || (op !== 'max' && op !== 'min');
      if ((dtype === 'float32' || dtype === 'float64') && nanHere && rank === n - 1) a[3] = Number.NaN;
      return a;
    };
    const cases = DTYPES.flatMap((dtype) =>
      REDUCE_OPS.filter((op) => op !== 'avg' || dtype === 'float32' || dtype === 'float64').flatMap((op) => [
        { dtype, op, kind: 'allReduce' as const, root: 0 },
        ...Array.from({ length: n }, (_, root) => ({ dtype, op, kind: 'reduce' as const, root })),
      ]),
    );
    const out = await group().run((rank) => ({
      steps: cases.map((c) => {
        const options = { op: c.op, root: c.root, ...(c.dtype === 'bool' ? { dtype: 'bool' as const } : {}) };
        return { kind: c.kind, buf: input(c.dtype, c.op, rank), options };
      }),
    }));
    out.forEach((r, rank) => cases.forEach((c, i) => {
      const inputs = Array.from({ length: n }, (_, k) => input(c.dtype, c.op, k));
      const want = c.kind === 'allReduce' || rank === c.root ? expectedReduce(c.op, c.dtype, inputs) : inputs[rank]!;
      assert.deepEqual(arr(r.values[i]), arr(want), JSON.stringify({ ...c, rank }));
    }));
  });

  test('barrier, and a long mixed sequence stays in step', async () => {
    const steps = (rank: number): Step[] => [
      { kind: 'barrier' },
      { kind: 'allReduce', buf: new Float64Array([rank]), options: { op: 'max' } },
      { kind: 'barrier' },
      { kind: 'allGather', buf: new Int32Array([rank, rank]) },
      { kind: 'barrier' },
      { kind: 'broadcast', buf: new Float32Array([rank + 1]), options: { root: n - 1 } },
    ];
    const out = await group().run((rank) => ({ steps: [...steps(rank), ...steps(rank), ...steps(rank)] }));
    for (const r of out) {
      assert.deepEqual(arr(r.values[1]), [n - 1]);
      assert.deepEqual(arr(r.values[3]), Array.from({ length: n }, (_, k) => [k, k]));
      assert.deepEqual(arr(r.values[17]), [n]);
    }
  });
}

/** Declares the Communicator contract's tests for every group of `transport` (skipped, with the reason, where absent). */
export function communicatorSuite(transport: Transport): void {
  if (transport.unavailable !== null) {
    describe(`Communicator over ${transport.name}`, { skip: `${transport.name}: ${transport.unavailable}` }, () => {});
    return;
  }
  for (const config of transport.configs) {
    const title = `Communicator over ${transport.name}, ${config.label}`;
    if (config.skip !== undefined) {
      describe(title, { skip: config.skip }, () => {});
      continue;
    }
    describe(title, () => {
      let group: CommGroup | undefined;
      before(async () => {
        group = await config.start();
      });
      after(() => group?.close());
      sharedCases(config, transport, () => group!);
      config.extraTests?.();
    });
  }
}
