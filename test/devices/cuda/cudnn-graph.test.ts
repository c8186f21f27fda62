// The cuDNN backend-API plan (cudnn-graph-conv.ts) without a GPU: a stand-in CudnnBackend keeps every
// descriptor's attributes, answers the heuristics with a list of engine configurations (each with its
// numerical notes, its workspace and whether it finalises), and records what was executed. The tests hold
// the plan to what cudnn_graph.h asks (tensors, convolution, operation, graph) and to PyTorch's filter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ATTR, DESC, HEUR_MODE, NOTE, type BackendDescriptor, type CudnnBackend } from '../../../src/devices/cuda/ffi/cudnn-backend.js';
import { CUDNN_DATA_TYPE } from '../../../src/devices/cuda/ffi/cudnn.js';
import type { CudnnHandle } from '../../../src/devices/cuda/ffi/types.js';
import {
  destroyGraphConv, MAX_TIMED_CONFIGS, planGraphConv, runGraphConv, type GraphConvProblem, type GraphConvTimer,
} from '../../../src/devices/cuda/cudnn-graph-conv.js';
import { convGeometry } from '../../../src/ops/conv.js';

interface Engine { notes: number[]; workspace: number; finalises: boolean; ms?: number; failsToRun?: boolean }
interface Desc { type: number; attrs: Map<number, unknown>; finalised: boolean; engine?: Engine }

/** A CudnnBackend that keeps attributes in maps; `engines` is the heuristics' ranking. */
class FakeBackend {
  readonly descs = new Map<BackendDescriptor, Desc>();
  readonly destroyed: BackendDescriptor[] = [];
  readonly executed: { plan: BackendDescriptor; uids: unknown; pointers: unknown; workspace: unknown }[] = [];
  private next = 0x100n;
  failFinalizeOf = -1;

  constructor(private readonly engines: Engine[]) {}
  create(type: number): BackendDescriptor {
    const d = this.next++;
    this.descs.set(d, { type, attrs: new Map(), finalised: false });
    return d;
  }
  destroy(d: BackendDescriptor): void {
    assert.ok(this.descs.has(d), `destroy of unknown descriptor ${d}`);
    this.descs.delete(d);
    this.destroyed.push(d);
  }
  finalize(d: BackendDescriptor, what: string): void {
    const desc = this.get(d);
    if (desc.type === this.failFinalizeOf) throw new Error(`fake: cannot finalise ${what}`);
    if (desc.type === DESC.executionPlan) {
      const config = this.get((desc.attrs.get(ATTR.planEngineConfig) as BackendDescriptor[])[0]!);
      if (!config.engine!.finalises) throw new Error('fake: engine does not take the problem');
    }
    desc.finalised = true;
  }
  private get(d: BackendDescriptor): Desc {
    const desc = this.descs.get(d);
    assert.ok(desc, `unknown descriptor ${d}`);
    return desc;
  }
  private put(d: BackendDescriptor, attr: number, v: unknown): void {
    const desc = this.get(d);
    assert.equal(desc.finalised, false, 'attribute set after finalize');
    desc.attrs.set(attr, v);
  }
  setInt64s(d: BackendDescriptor, attr: number, v: readonly number[]): void { this.put(d, attr, [...v]); }
  setEnum(d: BackendDescriptor, attr: number, _type: number, v: number): void { this.put(d, attr, v); }
  setScalar(d: BackendDescriptor, attr: number, _double: boolean, v: number): void { this.put(d, attr, v); }
  setDescriptors(d: BackendDescriptor, attr: number, v: readonly BackendDescriptor[]): void {
    for (const x of v) assert.ok(this.get(x).finalised || this.get(x).type === DESC.engineConfig, 'an unfinalised descriptor was attached');
    this.put(d, attr, [...v]);
  }
  setPointers(d: BackendDescriptor, attr: number, v: readonly bigint[]): void { this.put(d, attr, [...v]); }
  setHandle(d: BackendDescriptor, attr: number, h: CudnnHandle): void { this.put(d, attr, h); }
  count(d: BackendDescriptor, attr: number): number {
    assert.equal(attr, ATTR.heurResults);
    assert.ok(this.get(d).finalised);
    return this.engines.length;
  }
  getDescriptors(d: BackendDescriptor, attr: number, into: readonly BackendDescriptor[]): number {
    if (attr === ATTR.heurResults) {
      into.forEach((c, i) => { this.get(c).engine = this.engines[i]; this.get(c).finalised = true; });
      return Math.min(into.length, this.engines.length);
    }
    assert.equal(attr, ATTR.engineConfigEngine);
    this.get(into[0]!).engine = this.get(d).engine;
    return 1;
  }
  getInt64(d: BackendDescriptor, attr: number): number {
    assert.equal(attr, ATTR.planWorkspaceSize);
    const config = this.get((this.get(d).attrs.get(ATTR.planEngineConfig) as BackendDescriptor[])[0]!);
    return config.engine!.workspace;
  }
  numericalNotes(engine: BackendDescriptor): number[] { return this.get(engine).engine!.notes; }
  execute(_h: CudnnHandle, plan: BackendDescriptor, pack: BackendDescriptor): void {
    assert.ok(this.get(plan).finalised && this.get(pack).finalised);
    if (this.engineOf(plan).failsToRun === true) throw new Error('fake: CUDNN_STATUS_NOT_SUPPORTED at execute');
    const a = this.get(pack).attrs;
    this.executed.push({ plan, uids: a.get(ATTR.packUids), pointers: a.get(ATTR.packPointers), workspace: a.get(ATTR.packWorkspace) });
  }
  /** The engine a plan was finalised with. */
  engineOf(plan: BackendDescriptor): Engine {
    return this.get((this.get(plan).attrs.get(ATTR.planEngineConfig) as BackendDescriptor[])[0]!).engine!;
  }
  /** The live descriptors of one type. */
  ofType(type: number): Desc[] { return [...this.descs.values()].filter((d) => d.type === type); }
}

const handle = {} as CudnnHandle;
const g = convGeometry('conv2d', [8, 16, 10, 12], [32, 16, 3, 3], { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 1 });
const problem = (over: Partial<GraphConvProblem> = {}): GraphConvProblem =>
  ({ direction: 'forward', g, dataType: CUDNN_DATA_TYPE.float32, channelsLast: false, tf32: false, ...over });
const asBackend = (f: FakeBackend): CudnnBackend => f as unknown as CudnnBackend;
const plain: Engine = { notes: [], workspace: 4096, finalises: true };

test('a forward plan describes x, w and y (NCHW strides, unique ids), the convolution and the operation as cudnn_graph.h asks', () => {
  const be = new FakeBackend([plain]);
  const plan = planGraphConv(asBackend(be), handle, problem(), 1 << 20);
  assert.ok(plan);
  assert.equal(plan.workspaceBytes, 4096);
  assert.equal(plan.rank, 0);
  const tensors = be.ofType(DESC.tensor).map((t) => t.attrs);
  assert.deepEqual(tensors.map((t) => t.get(ATTR.tensorDims)), [[8, 16, 10, 12], [32, 16, 3, 3], [8, 32, g.oh, g.ow]]);
  assert.deepEqual(tensors[0]!.get(ATTR.tensorStrides), [16 * 120, 120, 12, 1]);
  assert.deepEqual(tensors.map((t) => t.get(ATTR.tensorUid)), [[1], [2], [3]]);
  const conv = be.ofType(DESC.convolution)[0]!.attrs;
  assert.deepEqual(conv.get(ATTR.convFilterStrides), [2, 1]);
  assert.deepEqual(conv.get(ATTR.convDilations), [1, 2]);
  assert.deepEqual(conv.get(ATTR.convPrePaddings), [1, 0]);
  assert.deepEqual(conv.get(ATTR.convPostPaddings), [1, 0]);
  assert.equal(conv.get(ATTR.convCompType), CUDNN_DATA_TYPE.float32);
  const op = be.ofType(DESC.convForward)[0]!.attrs;
  assert.equal(op.get(ATTR.fwdAlpha), 1);
  assert.equal(op.get(ATTR.fwdBeta), 0);
  destroyGraphConv(asBackend(be), plan);
  assert.equal(be.descs.size, 0, 'every descriptor of the plan is destroyed with it');
});

test('channels-last strides are NHWC for images and KRSC for filters; gradients bind dx / dw to their slots', () => {
  const be = new FakeBackend([plain]);
  const plan = planGraphConv(asBackend(be), handle, problem({ channelsLast: true, direction: 'backwardFilter' }), 1 << 20);
  assert.ok(plan);
  const [x, w] = be.ofType(DESC.tensor).map((t) => t.attrs);
  assert.deepEqual(x!.get(ATTR.tensorStrides), [120 * 16, 1, 12 * 16, 16]);
  assert.deepEqual(w!.get(ATTR.tensorStrides), [9 * 16, 1, 3 * 16, 16]);
  const op = be.ofType(DESC.convBackwardFilter)[0]!.attrs;
  const uidOf = (slot: number): unknown => be.descs.get((op.get(slot) as BackendDescriptor[])[0]!)!.attrs.get(ATTR.tensorUid);
  assert.deepEqual([uidOf(ATTR.bwdFilterX), uidOf(ATTR.bwdFilterDw), uidOf(ATTR.bwdFilterDy)], [[1], [2], [3]]);
  destroyGraphConv(asBackend(be), plan);
  const be2 = new FakeBackend([plain]);
  assert.ok(planGraphConv(asBackend(be2), handle, problem({ direction: 'backwardData' }), 1 << 20));
  assert.equal(be2.ofType(DESC.convBackwardData).length, 1);
});

test("PyTorch's filter: down-converting engines never, tensor-core engines only when TF32 is allowed; then the workspace limit", () => {
  const ranking: Engine[] = [
    { notes: [NOTE.downConvertInputs], workspace: 0, finalises: true },
    { notes: [NOTE.tensorCore], workspace: 0, finalises: true },
    { notes: [], workspace: 1 << 30, finalises: true },
    { notes: [], workspace: 0, finalises: false },
    { notes: [], workspace: 512, finalises: true },
  ];
  const exact = new FakeBackend(ranking);
  const plan = planGraphConv(asBackend(exact), handle, problem(), 1 << 20);
  assert.equal(plan?.workspaceBytes, 512, 'exact float32 skips the first two, the one over the limit and the one that does not finalise');
  const tf32 = new FakeBackend(ranking);
  assert.equal(planGraphConv(asBackend(tf32), handle, problem({ tf32: true }), 1 << 20)?.rank, 0, 'TF32 takes the tensor-core engine');
  const bf16 = new FakeBackend(ranking);
  assert.ok(planGraphConv(asBackend(bf16), handle, problem({ dataType: CUDNN_DATA_TYPE.bfloat16 }), 1 << 20), 'bfloat16 keeps tensor cores');
});

test('no acceptable engine: null, every descriptor destroyed; an error while describing: thrown, every descriptor destroyed', () => {
  const none = new FakeBackend([{ notes: [NOTE.downConvertInputs], workspace: 0, finalises: true }, { notes: [], workspace: 1 << 30, finalises: true }]);
  assert.equal(planGraphConv(asBackend(none), handle, problem(), 1 << 20), null);
  assert.equal(none.descs.size, 0);
  const empty = new FakeBackend([]);
  assert.equal(planGraphConv(asBackend(empty), handle, problem(), 1 << 20), null);
  assert.equal(empty.descs.size, 0);
  const failing = new FakeBackend([plain]);
  failing.failFinalizeOf = DESC.operationGraph;
  assert.throws(() => planGraphConv(asBackend(failing), handle, problem(), 1 << 20), /cannot finalise forward operation graph/);
  assert.equal(failing.descs.size, 0);
});

test('runGraphConv executes the plan with a fresh variant pack: uids 1-3, the three pointers, the workspace (null when none)', () => {
  const be = new FakeBackend([plain]);
  const plan = planGraphConv(asBackend(be), handle, problem(), 1 << 20)!;
  runGraphConv(asBackend(be), handle, plan, { x: 0xa0n, w: 0xb0n, y: 0xc0n, workspace: 0xd0n, workspaceBytes: 4096 });
  assert.deepEqual(be.executed, [{ plan: plan.plan, uids: [1, 2, 3], pointers: [0xa0n, 0xb0n, 0xc0n], workspace: [0xd0n] }]);
  assert.equal(be.ofType(DESC.variantPack).length, 0, 'the variant pack is destroyed after the call');
  const none = new FakeBackend([{ notes: [], workspace: 0, finalises: true }]);
  const p0 = planGraphConv(asBackend(none), handle, problem(), 1 << 20)!;
  runGraphConv(asBackend(none), handle, p0, { x: 1n, w: 2n, y: 3n, workspace: 0xd0n, workspaceBytes: 0 });
  assert.deepEqual(none.executed[0]!.workspace, [0n]);
});

/** A timer that runs the candidate once and answers its engine's `ms`; it records the workspaces it was asked for. */
function fakeTimer(be: FakeBackend): GraphConvTimer & { workspaces: number[] } {
  const workspaces: number[] = [];
  return {
    workspaces,
    time(run, workspaceBytes) {
      workspaces.push(workspaceBytes);
      run({ x: 0xa0n, w: 0xb0n, y: 0xc0n, workspace: workspaceBytes > 0 ? 0xd0n : 0n, workspaceBytes });
      return be.engineOf(be.executed.at(-1)!.plan).ms!;
    },
  };
}

test('a timed choice runs every filtered configuration of the instant and fallback rankings and keeps the fastest', () => {
  const ranking: Engine[] = [
    { notes: [], workspace: 64, finalises: true, ms: 5 },
    { notes: [NOTE.downConvertInputs], workspace: 0, finalises: true, ms: 0.5 },
    { notes: [], workspace: 128, finalises: true, ms: 2 },
    { notes: [], workspace: 1 << 30, finalises: true, ms: 0.1 },
    { notes: [], workspace: 0, finalises: true, ms: 3 },
  ];
  const be = new FakeBackend(ranking);
  const timer = fakeTimer(be);
  const plan = planGraphConv(asBackend(be), handle, problem(), 1 << 20, timer);
  assert.ok(plan);
  assert.equal(plan.workspaceBytes, 128, 'the 2 ms engine: not the down-converting one, not the one over the limit');
  assert.equal(plan.timedMs, 2);
  assert.equal(plan.rank, 1, 'its place among the filtered configurations that were tried');
  const modes = be.ofType(DESC.engineHeuristics).map((h) => h.attrs.get(ATTR.heurMode));
  assert.deepEqual(modes, [HEUR_MODE.instant, HEUR_MODE.fallback]);
  assert.equal(plan.timedCount, 6, 'three acceptable configurations from each ranking (the fake ranks the same list twice)');
  assert.deepEqual(timer.workspaces, [64, 128, 0, 64, 128, 0], 'each timed with its own workspace');
  assert.equal(be.ofType(DESC.executionPlan).length, 1, 'the plans not taken are destroyed at once');
  destroyGraphConv(asBackend(be), plan);
  assert.equal(be.descs.size, 0);
  const heuristic = new FakeBackend(ranking);
  assert.equal(planGraphConv(asBackend(heuristic), handle, problem(), 1 << 20)?.timedMs, undefined);
  assert.equal(heuristic.ofType(DESC.engineHeuristics).length, 1, 'without a timer the fallback list is not asked for');
});

test('a timed choice passes over configurations that fail to run; when all fail it is null and nothing is left', () => {
  const be = new FakeBackend([
    { notes: [], workspace: 0, finalises: true, ms: 1, failsToRun: true },
    { notes: [], workspace: 0, finalises: true, ms: 4 },
  ]);
  const plan = planGraphConv(asBackend(be), handle, problem(), 1 << 20, fakeTimer(be));
  assert.equal(plan?.timedMs, 4);
  destroyGraphConv(asBackend(be), plan!);
  const none = new FakeBackend([{ notes: [], workspace: 0, finalises: true, ms: 1, failsToRun: true }]);
  assert.equal(planGraphConv(asBackend(none), handle, problem(), 1 << 20, fakeTimer(none)), null);
  assert.equal(none.descs.size, 0);
  const throwing: GraphConvTimer = { time: () => { throw new Error('event failed'); } };
  const all = new FakeBackend([plain, plain]);
  assert.equal(planGraphConv(asBackend(all), handle, problem(), 1 << 20, throwing), null);
  assert.equal(all.descs.size, 0);
});

test(`a timed choice runs at most ${MAX_TIMED_CONFIGS} configurations`, () => {
  const many = Array.from({ length: MAX_TIMED_CONFIGS + 10 }, (_, i): Engine => ({ notes: [], workspace: 0, finalises: true, ms: 100 - i }));
  const be = new FakeBackend(many);
  const timer = fakeTimer(be);
  const plan = planGraphConv(asBackend(be), handle, problem(), 1 << 20, timer);
  assert.equal(timer.workspaces.length, MAX_TIMED_CONFIGS);
  assert.equal(plan?.timedMs, 100 - (MAX_TIMED_CONFIGS - 1));
});
