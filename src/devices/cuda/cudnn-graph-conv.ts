// One convolution (forward, input gradient or filter gradient) as a cuDNN backend-API plan: three tensor
// descriptors, a convolution descriptor, a one-operation graph, the engine configurations cuDNN's
// heuristics rank for it, and the first of those that finalises within the workspace limit. The ranking is
// filtered as PyTorch filters it (aten/src/ATen/native/cudnn/Conv_v8.cpp, filterEngineConfigs): no engine
// that down-converts its inputs, and for exact float32 no tensor-core (TF32) engine.
// Groups are implied by the shapes: the filter tensor has cin / groups channels. With a timer (the device's
// cudnnBenchmark, as torch.backends.cudnn.benchmark) every filtered configuration of the instant heuristics and
// of cuDNN's fallback list that finalises within the limit is run on the GPU and the fastest is kept, as PyTorch's
// benchmark mode does (Conv_v8.cpp, get_plans_from_find / try_plans).
import {
  ATTR, DESC, HEUR_MODE, NOTE, TYPE, type BackendDescriptor, type CudnnBackend,
} from './ffi/cudnn-backend.js';
import { CUDNN_CROSS_CORRELATION, CUDNN_DATA_TYPE, type CudnnConvBuffers, type CudnnConvDirection } from './ffi/cudnn.js';
import type { CudnnHandle } from './ffi/types.js';
import type { ConvGeometry } from '../../ops/conv.js';

/** What a backend plan holds: every descriptor made for it (destroyed together) and the plan itself. */
export interface GraphConvPlan {
  readonly plan: BackendDescriptor;
  readonly workspaceBytes: number;
  /** Which of the heuristics' filtered configurations was taken (0: the first), for tools. */
  readonly rank: number;
  /** With a timer: the GPU milliseconds it took per call, and how many configurations were timed. */
  readonly timedMs?: number;
  readonly timedCount?: number;
  readonly owned: readonly BackendDescriptor[];
}

/** Times candidate plans on the GPU for a timed choice (the caller owns the buffers, the stream and the events). */
export interface GraphConvTimer {
  /** The GPU milliseconds one call of `run` takes, given the buffers and a workspace of `workspaceBytes`; throws when it fails. */
  time(run: (b: CudnnConvBuffers) => void, workspaceBytes: number): number;
}

/** The default of timedConfigLimit.max (cuDNN ranks a few dozen; the tail is seldom fast and each costs warm-up time). */
export const MAX_TIMED_CONFIGS = 24;
/** The most configurations one timed choice runs. PyTorch's cudnn.benchmark times every one; bench/resnet-gpu.ts --timed-configs raises this to compare. */
export const timedConfigLimit = { max: MAX_TIMED_CONFIGS };

export interface GraphConvProblem {
  readonly direction: CudnnConvDirection;
  readonly g: ConvGeometry;
  readonly dataType: number;
  readonly channelsLast: boolean;
  /** float32: tensor-core (TF32) engines allowed. */
  readonly tf32: boolean;
}

// Unique ids of the variant pack: x (or dx), w (or dw), y (or dy).
const UID_X = 1;
const UID_W = 2;
const UID_Y = 3;

/** Dims in NCHW order and strides in memory order (NCHW, or NHWC / KRSC channels-last). */
function stridesOf([n, c, h, w]: readonly number[], channelsLast: boolean): number[] {
  void n;
  return channelsLast ? [h! * w! * c!, 1, w! * c!, c!] : [c! * h! * w!, h! * w!, w!, 1];
}

function safely(f: () => void): void {
  try { f(); } catch { /* cleanup after an error: the first error is the one reported */ }
}

/**
 * The plan of a problem, or null when no filtered configuration finalises within `limit` bytes of
 * workspace (the caller then uses the legacy API): the heuristics' first, or with `timer` the fastest of those
 * timed (null too when every one failed to run). Descriptors made are destroyed on every path but success.
 */
export function planGraphConv(be: CudnnBackend, handle: CudnnHandle, p: GraphConvProblem, limit: number,
  timer?: GraphConvTimer): GraphConvPlan | null {
  const owned: BackendDescriptor[] = [];
  const make = (type: number): BackendDescriptor => {
    const d = be.create(type);
    owned.push(d);
    return d;
  };
  const g = p.g;
  try {
    const tensor = (uid: number, dims: readonly number[]): BackendDescriptor => {
      const t = make(DESC.tensor);
      be.setEnum(t, ATTR.tensorDataType, TYPE.dataType, p.dataType);
      be.setInt64s(t, ATTR.tensorDims, dims);
      be.setInt64s(t, ATTR.tensorStrides, stridesOf(dims, p.channelsLast));
      be.setInt64s(t, ATTR.tensorUid, [uid]);
      // The allocator's blocks are 256-byte aligned; 16 is what every engine asks at most.
      be.setInt64s(t, ATTR.tensorAlignment, [16]);
      be.finalize(t, `tensor ${dims.join('x')}`);
      return t;
    };
    const x = tensor(UID_X, [g.n, g.cin, g.h, g.w]);
    const w = tensor(UID_W, [g.cout, g.cg, g.kh, g.kw]);
    const y = tensor(UID_Y, [g.n, g.cout, g.oh, g.ow]);
    const conv = make(DESC.convolution);
    const double = p.dataType === CUDNN_DATA_TYPE.float64;
    be.setEnum(conv, ATTR.convCompType, TYPE.dataType, double ? CUDNN_DATA_TYPE.float64 : CUDNN_DATA_TYPE.float32);
    be.setEnum(conv, ATTR.convMode, TYPE.convolutionMode, CUDNN_CROSS_CORRELATION);
    be.setInt64s(conv, ATTR.convSpatialDims, [2]);
    be.setInt64s(conv, ATTR.convDilations, [g.dh, g.dw]);
    be.setInt64s(conv, ATTR.convFilterStrides, [g.sh, g.sw]);
    be.setInt64s(conv, ATTR.convPrePaddings, [g.pt, g.pl]);
    // The far side's padding: what makes the output size come out (symmetric for every problem taken, see cudnnUnsupported).
    be.setInt64s(conv, ATTR.convPostPaddings, [g.pt, g.pl]);
    be.finalize(conv, `convolution pad ${g.pt},${g.pl} stride ${g.sh},${g.sw} dilation ${g.dh},${g.dw}`);
    const op = operation(be, make, p.direction, { x, w, y, conv }, double);
    const graph = make(DESC.operationGraph);
    be.setHandle(graph, ATTR.graphHandle, handle);
    be.setDescriptors(graph, ATTR.graphOps, [op]);
    be.finalize(graph, `${p.direction} operation graph`);
    const configs = rankedConfigs(be, make, graph, HEUR_MODE.instant);
    if (timer) {
      try {
        configs.push(...rankedConfigs(be, make, graph, HEUR_MODE.fallback));
      } catch {
        // a fallback list that cuDNN cannot give for this graph leaves the instant ranking to time
      }
    }
    const candidates: { plan: BackendDescriptor; workspaceBytes: number; rank: number }[] = [];
    let rank = 0;
    for (const config of configs) {
      if (!acceptable(be, make, config, p)) continue;
      const plan = be.create(DESC.executionPlan);
      let workspaceBytes = -1;
      try {
        be.setHandle(plan, ATTR.planHandle, handle);
        be.setDescriptors(plan, ATTR.planEngineConfig, [config]);
        be.finalize(plan, 'execution plan');
        workspaceBytes = be.getInt64(plan, ATTR.planWorkspaceSize);
      } catch {
        workspaceBytes = -1; // this engine does not take the problem after all: the next one
      }
      if (workspaceBytes >= 0 && workspaceBytes <= limit) {
        owned.push(plan);
        candidates.push({ plan, workspaceBytes, rank });
        if (!timer || candidates.length >= timedConfigLimit.max) break;
      } else {
        safely(() => be.destroy(plan));
      }
      rank++;
    }
    const chosen: (typeof candidates)[number] & { ms?: number } | undefined = timer ? fastest(be, handle, candidates, timer) : candidates[0];
    if (chosen) {
      // The plans not taken go now; what the chosen one was made from stays with it.
      for (const c of candidates) {
        if (c.plan === chosen.plan) continue;
        safely(() => be.destroy(c.plan));
        owned.splice(owned.indexOf(c.plan), 1);
      }
      return { plan: chosen.plan, workspaceBytes: chosen.workspaceBytes, rank: chosen.rank, owned,
        ...(chosen.ms !== undefined ? { timedMs: chosen.ms, timedCount: candidates.length } : {}) };
    }
  } catch (e) {
    for (const d of owned.reverse()) safely(() => be.destroy(d));
    throw e;
  }
  for (const d of owned.reverse()) safely(() => be.destroy(d));
  return null;
}

/** The engine configurations cuDNN's heuristics of one mode rank for the graph, best first (each owned). */
function rankedConfigs(be: CudnnBackend, make: (type: number) => BackendDescriptor, graph: BackendDescriptor, mode: number): BackendDescriptor[] {
  const heur = make(DESC.engineHeuristics);
  be.setDescriptors(heur, ATTR.heurOperationGraph, [graph]);
  be.setEnum(heur, ATTR.heurMode, TYPE.heurMode, mode);
  be.finalize(heur, `engine heuristics (mode ${mode})`);
  const available = be.count(heur, ATTR.heurResults, TYPE.backendDescriptor);
  const configs = Array.from({ length: available }, () => make(DESC.engineConfig));
  const got = available > 0 ? be.getDescriptors(heur, ATTR.heurResults, configs) : 0;
  return configs.slice(0, got);
}

/**
 * The candidate that ran fastest under the timer (ties: the better ranked), or undefined when none ran. A candidate
 * whose run throws (an engine that finalises but refuses these pointers) is passed over.
 */
function fastest<C extends { plan: BackendDescriptor; workspaceBytes: number }>(be: CudnnBackend, handle: CudnnHandle, candidates: readonly C[],
  timer: GraphConvTimer): (C & { ms: number }) | undefined {
  let best: (C & { ms: number }) | undefined;
  for (const c of candidates) {
    let ms: number;
    try {
      ms = timer.time((b) => execute(be, handle, c.plan, c.workspaceBytes, b), c.workspaceBytes);
    } catch {
      continue;
    }
    if (Number.isFinite(ms) && (!best || ms < best.ms)) best = { ...c, ms };
  }
  return best;
}

/** The operation node of a direction over the tensors; alpha 1, beta 0 (the output is overwritten). */
function operation(be: CudnnBackend, make: (type: number) => BackendDescriptor, direction: CudnnConvDirection,
  t: { x: BackendDescriptor; w: BackendDescriptor; y: BackendDescriptor; conv: BackendDescriptor }, double: boolean): BackendDescriptor {
  const [type, alpha, beta, convAttr, slots] = direction === 'forward'
    ? [DESC.convForward, ATTR.fwdAlpha, ATTR.fwdBeta, ATTR.fwdConv, [[ATTR.fwdX, t.x], [ATTR.fwdW, t.w], [ATTR.fwdY, t.y]] as const]
    : direction === 'backwardData'
      ? [DESC.convBackwardData, ATTR.bwdDataAlpha, ATTR.bwdDataBeta, ATTR.bwdDataConv,
        [[ATTR.bwdDataDx, t.x], [ATTR.bwdDataW, t.w], [ATTR.bwdDataDy, t.y]] as const]
      : [DESC.convBackwardFilter, ATTR.bwdFilterAlpha, ATTR.bwdFilterBeta, ATTR.bwdFilterConv,
        [[ATTR.bwdFilterX, t.x], [ATTR.bwdFilterDw, t.w], [ATTR.bwdFilterDy, t.y]] as const];
  const op = make(type);
  be.setScalar(op, alpha, double, 1);
  be.setScalar(op, beta, double, 0);
  be.setDescriptors(op, convAttr, [t.conv]);
  for (const [attr, d] of slots) be.setDescriptors(op, attr, [d]);
  be.finalize(op, `${direction} operation`);
  return op;
}

/** PyTorch's filter: no engine that down-converts its inputs; exact float32 takes no tensor-core engine. */
function acceptable(be: CudnnBackend, make: (type: number) => BackendDescriptor, config: BackendDescriptor, p: GraphConvProblem): boolean {
  const engine = make(DESC.engine);
  try {
    if (be.getDescriptors(config, ATTR.engineConfigEngine, [engine]) < 1) return false;
    const notes = be.numericalNotes(engine);
    if (notes.includes(NOTE.downConvertInputs)) return false;
    if (p.dataType === CUDNN_DATA_TYPE.float32 && !p.tf32 && notes.includes(NOTE.tensorCore)) return false;
    return true;
  } catch {
    return false;
  }
}

/** Enqueues a planned convolution on the handle's stream (a variant pack per call: the pointers change). */
export function runGraphConv(be: CudnnBackend, handle: CudnnHandle, plan: GraphConvPlan, b: CudnnConvBuffers): void {
  execute(be, handle, plan.plan, plan.workspaceBytes, b, `engine config rank ${plan.rank}, `);
}

function execute(be: CudnnBackend, handle: CudnnHandle, plan: BackendDescriptor, workspaceBytes: number, b: CudnnConvBuffers, what = ''): void {
  const pack = be.create(DESC.variantPack);
  try {
    be.setInt64s(pack, ATTR.packUids, [UID_X, UID_W, UID_Y]);
    be.setPointers(pack, ATTR.packPointers, [b.x, b.w, b.y]);
    be.setPointers(pack, ATTR.packWorkspace, [workspaceBytes > 0 ? b.workspace : 0n]);
    be.finalize(pack, 'variant pack');
    be.execute(handle, plan, pack, `${what}workspace ${workspaceBytes} bytes`);
  } finally {
    be.destroy(pack);
  }
}

/** Frees a plan's descriptors (the plan first, then what it was made from). */
export function destroyGraphConv(be: CudnnBackend, plan: GraphConvPlan): void {
  for (const d of [...plan.owned].reverse()) safely(() => be.destroy(d));
}
