// Lowers a program for the CUDA device: one runner per step and the kernel sources they need.
// Needs no GPU (the compile check of generated sources runs this on machines without one).
import type { Program } from '../../compile/program.js';
import { ModuleBuilder, type KernelUnit } from './codegen/module.js';
import { loweringOf } from './lowering-table.js';
import type { LowerContext, Runner } from './lower/types.js';
import { guardedCopyKernel } from './codegen/misc.js';
import { conversionKernels, type Conversions } from './lower/convert.js';
import { planLayout, planStorage } from './lower/storage-plan.js';
import type { Layout, Storage } from './storage.js';
import { config } from '../config.js';

export interface LoweredProgram {
  readonly runners: readonly Runner[];
  /** How each slot's value is held (lower/storage-plan.ts); the executable keeps every value to it. */
  readonly storage: readonly Storage[];
  /** The layout of each slot's value (lower/storage-plan.ts planLayout); the executable keeps every value to it. */
  readonly layout: readonly Layout[];
  /** The conversions between storages and layouts (null when every value is held in its dtype, NCHW). */
  readonly conversions: Conversions | null;
  readonly units: readonly KernelUnit[];
  /** All generated definitions in one source (for inspection and compile checks). */
  readonly source: string;
}

/** Choices of the device that change how steps lower. */
export interface LowerOptions {
  /** conv2d and its gradients through cuDNN where it takes them (default false: im2col + cuBLAS). */
  readonly cudnn?: boolean;
  /** With cudnn: choose each algorithm by timing (cudnnFind*) instead of cuDNN's heuristics (default false). */
  readonly cudnnBenchmark?: boolean;
  /** Under the 'bf16' policy, hold activations in bfloat16 (lower/storage-plan.ts); default SYNK_BFLOAT_ACTIVATIONS, on. */
  readonly bf16Activations?: boolean;
  /** Hold the bfloat16 activations channels-last (lower/storage-plan.ts planLayout); default SYNK_CHANNELS_LAST, on. */
  readonly channelsLast?: boolean;
}

export function lowerProgram(program: Program, options: LowerOptions = {}): LoweredProgram {
  const mb = new ModuleBuilder();
  const storage = planStorage(program, options.bf16Activations ?? config().bf16Activations);
  const layout = planLayout(program, storage, options.channelsLast ?? config().channelsLast);
  const lc: LowerContext = {
    program,
    mb,
    cudnn: options.cudnn ?? false,
    cudnnBenchmark: options.cudnnBenchmark ?? false,
    slotDtype: (slot) => program.slots[slot]!.dtype,
    slotNdim: (slot) => program.slots[slot]!.broadcastable.length,
    slotStorage: (slot) => storage[slot]!,
    slotLayout: (slot) => layout[slot]!,
  };
  const runners = program.steps.map((step) => loweringOf(step.op)(lc, step));
  // A CUDA graph of this program writes its updates back in place with this kernel (executable.ts).
  if (program.updates.length > 0) guardedCopyKernel(mb);
  const conversions = storage.includes('bfloat16') || layout.includes('nhwc') ? conversionKernels(mb) : null;
  return { runners, storage, layout, conversions, units: mb.units(), source: mb.source() };
}
