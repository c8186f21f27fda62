// The cuDNN branch of the conv2d lowerings (conv.ts): taken when the device enabled cuDNN and cuDNN takes
// the problem (cudnnUnsupported, and an algorithm within cudnnWorkspaceLimit); otherwise conv.ts runs
// im2col + cuBLAS as before. Shapes were checked by convGeometry / checkGradShape before anything here,
// zero-sized problems were answered already, and mixed-precision operands were cast to the output dtype.
import type { Conv2dAttrs, ConvGeometry } from '../../../ops/conv.js';
import type { CudnnConvDirection } from '../ffi/cudnn.js';
import { config } from '../../config.js';
import { cudnnUnsupported, cudnnWorkspaceLimit, fallBackToLegacy, runCudnnConv, type CudnnConvDtype } from '../cudnn-conv.js';
import type { GraphConvTimer } from '../cudnn-graph-conv.js';
import { CudaError } from '../ffi/errors.js';
import type { LowerContext, RunState } from './types.js';

/** cuDNN 9's "not supported" statuses (3000-3999: CUDNN_STATUS_NOT_SUPPORTED and its sub-codes, cudnn_graph.h). */
function notSupported(e: unknown): boolean {
  return e instanceof CudaError && e.library === 'cudnn' && e.code >= 3000 && e.code < 4000;
}

/** How a device uses cuDNN: benchmark, algorithms chosen by timing (CudaDeviceOptions.cudnnBenchmark). */
export interface CudnnChoice {
  readonly benchmark: boolean;
}

/** The cuDNN choice of a device's convolution lowerings (null: im2col + cuBLAS only). */
export function cudnnChoiceOf(lc: LowerContext): CudnnChoice | null {
  return lc.cudnn === true ? { benchmark: lc.cudnnBenchmark === true } : null;
}

/** Device pointers of a convolution: x the input (or its gradient), w the filters (or theirs), y the output (or its gradient). */
export interface ConvPointers {
  readonly x: bigint;
  readonly w: bigint;
  readonly y: bigint;
}

/**
 * Enqueues the convolution through cuDNN and returns true, or returns false (nothing enqueued) when cuDNN
 * does not take it. The workspace is a temporary of the context's allocator, released once the call is
 * queued (the stream orders its reuse). When a backend plan answers "not supported" at run time its legacy
 * algorithm runs from then on; when that does too, the plan is dropped and this problem runs as im2col;
 * every other cuDNN error is thrown.
 */
export function convolveWithCudnn(
  s: RunState, choice: CudnnChoice, direction: CudnnConvDirection, g: ConvGeometry, attrs: Conv2dAttrs, dtype: CudnnConvDtype,
  p: ConvPointers, channelsLast = false,
): boolean {
  if (cudnnUnsupported(g, attrs, dtype) !== null) return false;
  // 'medium' keeps convolutions in TF32, as for the im2col path (its bfloat16 operands are for matmul only);
  // bfloat16 tensors come from the 'bf16' policy (conv-bf16.ts).
  const tf32 = dtype === 'float32' && (s.tf32 || s.bf16);
  // A timed choice waits for the GPU, which a CUDA graph capture cannot; a capture (always of shapes run plainly
  // before, so their timed plans exist) takes the heuristics' plan if it ever meets a new problem.
  const benchmark = choice.benchmark && s.capturing !== true;
  const plan = s.ctx.cudnnPlan({ direction, g, groups: attrs.groups, dtype, tf32, benchmark, channelsLast, api: config().cudnnApi },
    cudnnWorkspaceLimit.bytes, benchmark ? eventTimer(s, p) : undefined);
  if (!plan) return false;
  const { lib, handle } = s.ctx.cudnn();
  for (;;) {
    const workspace = plan.workspaceBytes > 0 ? s.temp('uint8', [plan.workspaceBytes]) : null;
    try {
      runCudnnConv(lib, handle, plan, { ...p, workspace: workspace?.ptr ?? 0n, workspaceBytes: plan.workspaceBytes });
      return true;
    } catch (e) {
      if (!notSupported(e)) throw e;
      // A backend plan that cuDNN refuses at run time gives way to the legacy algorithm; then to im2col.
      if (fallBackToLegacy(lib, plan)) continue;
      s.ctx.declineCudnnPlan(plan);
      return false;
    } finally {
      workspace?.release();
    }
  }
}

/** Timing repeats of one candidate, after one untimed run (first-call set-up inside cuDNN). */
const TIMED_REPEATS = 3;

/**
 * Times candidate plans on the context's stream with two events, on the step's own pointers: every direction
 * overwrites its output (beta 0) and only reads its inputs, and the real call runs after the choice. The
 * workspace is a temporary of the allocator, released once the events say the GPU is done with it.
 */
function eventTimer(s: RunState, p: ConvPointers): GraphConvTimer {
  return {
    time(run, workspaceBytes) {
      const cu = s.ctx.cu;
      const workspace = workspaceBytes > 0 ? s.temp('uint8', [workspaceBytes]) : null;
      const start = cu.eventCreate(0);
      const end = cu.eventCreate(0);
      try {
        const buffers = { ...p, workspace: workspace?.ptr ?? 0n, workspaceBytes };
        run(buffers);
        cu.eventRecord(start, s.ctx.stream);
        for (let i = 0; i < TIMED_REPEATS; i++) run(buffers);
        cu.eventRecord(end, s.ctx.stream);
        cu.eventSynchronize(end);
        return cu.eventElapsedTime(start, end) / TIMED_REPEATS;
      } finally {
        cu.eventDestroy(start);
        cu.eventDestroy(end);
        workspace?.release();
      }
    },
  };
}
