// conv2d and its two gradients as cuDNN problems: which convolutions cuDNN takes, the descriptors of one
// (NCHW, or channels-last NHWC with KRSC filters), the algorithm chosen by cuDNN's _v7 heuristics (or its timing) within a workspace limit, and the call.
// A plan is made once per (direction, shapes, attributes, dtype, math type, workspace limit) and kept by
// the CudaContext (cudnnPlans), which destroys its descriptors with the context. Nothing here needs a GPU
// except the convolution itself: the heuristics and workspace queries are host calls, so the tests drive
// them against a stand-in libcudnn.
import type { Conv2dAttrs, ConvGeometry } from '../../ops/conv.js';
import {
  CUDNN_DATA_TYPE, CUDNN_DEFAULT_MATH, CUDNN_FMA_MATH, CUDNN_TENSOR_OP_MATH, type Cudnn, type CudnnConvBuffers, type CudnnConvDescriptors,
  type CudnnConvDirection,
} from './ffi/cudnn.js';
import type { CudnnHandle } from './ffi/types.js';
import { destroyGraphConv, planGraphConv, runGraphConv, type GraphConvPlan, type GraphConvTimer } from './cudnn-graph-conv.js';

/**
 * The most workspace one cuDNN convolution may take from the allocator (the heuristics' best algorithm
 * that fits is used). Mutable so tests and benchmarks can change it; part of every plan's key.
 */
// 2 GiB: on the H200, ResNet-50 at batch 256 (TF32) took 188.6 ms/step under a 256 MiB limit and 132.1 ms
// under 2 GiB (bench/resnet-gpu.ts --workspace-mb); only one workspace is alive at a time (a temporary).
export const cudnnWorkspaceLimit = { bytes: 2 * 2 ** 30 };

/** The element types of the convolutions given to cuDNN. */
export type CudnnConvDtype = 'float32' | 'float64' | 'bfloat16';

/** One convolution as cuDNN sees it. */
export interface CudnnConvProblem {
  readonly direction: CudnnConvDirection;
  readonly g: ConvGeometry;
  readonly groups: number;
  /** The tensors' element type; 'bfloat16' tensors are computed in float (the 'bf16' precision policy). */
  readonly dtype: CudnnConvDtype;
  /** float32 only: let cuDNN use TF32 tensor cores (matmulPrecision 'high' or 'medium'). */
  readonly tf32: boolean;
  /**
   * Choose by timing on the GPU, not by cuDNN's heuristics (default): under the 'graph' api every filtered engine
   * configuration (the planner's timer runs them), under 'legacy' the algorithms cudnnFind* times.
   */
  readonly benchmark?: boolean;
  /** Images and filters channels-last (NHWC, KRSC: storage.ts), as cuDNN's tensor-core kernels want them; default NCHW. */
  readonly channelsLast?: boolean;
  /**
   * 'graph': cuDNN's backend API and its engine heuristics (as PyTorch), the legacy algorithm kept as the fallback;
   * 'legacy': cudnnGet*Algorithm_v7 / cudnnFind* only. Default 'graph' (SYNK_CUDNN_API).
   */
  readonly api?: 'graph' | 'legacy';
}

/** What cuDNN needs to run one problem, made once and kept. */
export interface CudnnConvPlan {
  readonly key: string;
  readonly direction: CudnnConvDirection;
  readonly descriptors: CudnnConvDescriptors;
  readonly dataType: number;
  /** The chosen legacy cudnnConvolution*Algo_t (-1: none within the limit) and the math type it runs with. */
  readonly algo: number;
  readonly mathType: number;
  /** The workspace of the plan that runs: the backend plan's when there is one, else the legacy algorithm's. */
  workspaceBytes: number;
  /** The legacy algorithm's workspace. */
  readonly legacyWorkspaceBytes: number;
  /** The backend-API plan that runs (null: the legacy algorithm runs). */
  graph: GraphConvPlan | null;
}

const INT32_MAX = 2 ** 31 - 1;

/**
 * Why cuDNN's legacy API cannot take this convolution (null when it can): asymmetric 'same' padding
 * (cudnnSetConvolution2dDescriptor has one pad per axis), a dtype without a cuDNN path here, or a tensor
 * whose element count overflows the int strides of the 4-d descriptors. Zero-sized problems are handled
 * before this (cuDNN rejects zero dimensions), and bad shapes were reported by convGeometry already.
 */
export function cudnnUnsupported(g: ConvGeometry, attrs: Conv2dAttrs, dtype: string): string | null {
  if (dtype !== 'float32' && dtype !== 'float64' && dtype !== 'bfloat16') return `dtype ${dtype}`;
  if ([g.n, g.cin, g.h, g.w, g.cout, g.kh, g.kw].some((d) => d === 0)) return 'a zero-sized dimension';
  if (attrs.padding === 'same' && ((g.dh * (g.kh - 1)) % 2 !== 0 || (g.dw * (g.kw - 1)) % 2 !== 0)) {
    return "asymmetric 'same' padding";
  }
  const sizes = [g.n * g.cin * g.h * g.w, g.n * g.cout * g.oh * g.ow, g.cout * g.cg * g.kh * g.kw];
  if (sizes.some((s) => s > INT32_MAX)) return 'a tensor of more than 2^31 - 1 elements';
  return null;
}

/** The cudnnMathType_t a problem asks for: FMA only for exact float32, tensor cores (TF32) when allowed. */
export function requestedMathType(p: Pick<CudnnConvProblem, 'dtype' | 'tf32'>): number {
  if (p.dtype === 'float64') return CUDNN_DEFAULT_MATH;
  if (p.dtype === 'bfloat16') return CUDNN_TENSOR_OP_MATH;
  return p.tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

/** The cache key of a problem under a workspace limit. */
export function cudnnPlanKey(p: CudnnConvProblem, limit: number): string {
  const g = p.g;
  return [p.direction, g.n, g.cin, g.h, g.w, g.cout, g.cg, g.kh, g.kw, g.oh, g.ow, g.pt, g.pl, g.sh, g.sw, g.dh, g.dw, p.groups,
    p.dtype, requestedMathType(p), limit, p.benchmark === true ? 'timed' : 'heuristic', p.channelsLast === true ? 'nhwc' : 'nchw',
    p.api ?? 'graph'].join(',');
}

/** bfloat16 tensors are convolved with float accumulation (cuDNN's PSEUDO_BFLOAT16_CONFIG); the others in their own type. */
function computeTypeOf(dataType: number): number {
  return dataType === CUDNN_DATA_TYPE.bfloat16 ? CUDNN_DATA_TYPE.float32 : dataType;
}

/** The four descriptors of a problem (those made are destroyed again if one fails). */
function describe(lib: Cudnn, p: CudnnConvProblem, dataType: number): CudnnConvDescriptors {
  const g = p.g;
  const made: { -readonly [K in keyof CudnnConvDescriptors]?: CudnnConvDescriptors[K] } = {};
  try {
    const last = p.channelsLast === true;
    made.x = lib.tensor4d(dataType, [g.n, g.cin, g.h, g.w], last);
    made.w = lib.filter4d(dataType, [g.cout, g.cg, g.kh, g.kw], last);
    made.y = lib.tensor4d(dataType, [g.n, g.cout, g.oh, g.ow], last);
    made.conv = lib.convolution2d({
      pad: [g.pt, g.pl], stride: [g.sh, g.sw], dilation: [g.dh, g.dw], groups: p.groups, computeType: computeTypeOf(dataType),
      mathType: requestedMathType(p),
    });
    return { x: made.x, w: made.w, y: made.y, conv: made.conv };
  } catch (e) {
    safely(() => lib.destroyDescriptors(made));
    throw e;
  }
}

function safely(f: () => void): void {
  try { f(); } catch { /* cleanup after an error: the first error is the one reported */ }
}

/**
 * Makes the plan of a problem: descriptors, cuDNN's heuristic ranking (cudnnGet*Algorithm_v7), the first
 * algorithm whose status is success and whose workspace (cudnnGet*WorkspaceSize) fits the limit, with the
 * math type cuDNN ranked it under (as PyTorch sets it; exact float32 stays FMA whatever the entry says).
 * Under the 'graph' api the backend API's plan runs (with `benchmark` and a `timer`, the fastest configuration timed),
 * and that algorithm is its fallback (ranked by the heuristics, not timed again). Returns null when neither fits
 * (the caller then uses im2col); its descriptors are destroyed then.
 */
export function planCudnnConv(lib: Cudnn, handle: CudnnHandle, p: CudnnConvProblem, limit: number, timer?: GraphConvTimer): CudnnConvPlan | null {
  const dataType = CUDNN_DATA_TYPE[p.dtype];
  const d = describe(lib, p, dataType);
  const key = cudnnPlanKey(p, limit);
  let legacy: { algo: number; mathType: number; workspaceBytes: number } | null = null;
  let graph: GraphConvPlan | null = null;
  try {
    const requested = requestedMathType(p);
    const graphApi = (p.api ?? 'graph') === 'graph' && lib.backend !== null;
    const legacyTimed = p.benchmark === true && !graphApi;
    for (const perf of lib.algorithms(handle, p.direction, d, legacyTimed)) {
      if (perf.status !== 0 || (legacyTimed && perf.memory > limit)) continue;
      const mathType = requested === CUDNN_FMA_MATH ? CUDNN_FMA_MATH : perf.mathType;
      lib.setMathType(d.conv, mathType);
      const workspaceBytes = lib.workspaceSize(handle, p.direction, d, perf.algo);
      if (workspaceBytes > limit) continue;
      legacy = { algo: perf.algo, mathType, workspaceBytes };
      break;
    }
    if (graphApi && lib.backend) {
      try {
        graph = planGraphConv(lib.backend, handle, { direction: p.direction, g: p.g, dataType, channelsLast: p.channelsLast === true,
          tf32: requested !== CUDNN_FMA_MATH }, limit, p.benchmark === true ? timer : undefined);
      } catch (e) {
        // A backend API that refuses the problem leaves the legacy algorithm (or im2col) to run; the reason is kept for tools.
        lastGraphPlanFailure = `${p.direction} ${key}: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
  } catch (e) {
    safely(() => lib.destroyDescriptors(d));
    throw e;
  }
  if (graph) {
    return { key, direction: p.direction, descriptors: d, dataType, algo: legacy?.algo ?? -1, mathType: legacy?.mathType ?? requestedMathType(p),
      workspaceBytes: graph.workspaceBytes, legacyWorkspaceBytes: legacy?.workspaceBytes ?? 0, graph };
  }
  if (legacy) return { key, direction: p.direction, descriptors: d, dataType, ...legacy, legacyWorkspaceBytes: legacy.workspaceBytes, graph: null };
  lib.destroyDescriptors(d);
  return null;
}

let lastGraphPlanFailure: string | null = null;
/** Why the backend API last failed to plan a problem that the legacy algorithm then took (null: never). */
export function cudnnGraphPlanFailure(): string | null {
  return lastGraphPlanFailure;
}

/** Enqueues a planned convolution (beta 0: the output is overwritten). */
export function runCudnnConv(lib: Cudnn, handle: CudnnHandle, plan: CudnnConvPlan, buffers: CudnnConvBuffers): void {
  if (plan.graph && lib.backend) runGraphConv(lib.backend, handle, plan.graph, buffers);
  else lib.convolve(handle, plan.direction, plan.descriptors, plan.algo, buffers, plan.dataType);
}

/**
 * After cuDNN answered "not supported" running a plan: a backend plan gives way to its legacy algorithm
 * (returns true: run again, with the legacy workspace); a legacy plan has nothing left (false).
 */
export function fallBackToLegacy(lib: Cudnn, plan: CudnnConvPlan): boolean {
  if (!plan.graph || plan.algo < 0) return false;
  if (lib.backend) destroyGraphConv(lib.backend, plan.graph);
  plan.graph = null;
  plan.workspaceBytes = plan.legacyWorkspaceBytes;
  return true;
}

/** Frees everything a plan holds. */
export function destroyCudnnPlan(lib: Cudnn, plan: CudnnConvPlan): void {
  if (plan.graph && lib.backend) destroyGraphConv(lib.backend, plan.graph);
  lib.destroyDescriptors(plan.descriptors);
}
