// Lowers a program for the CUDA device: one runner per step and the kernel sources they need.
// Needs no GPU (the compile check of generated sources runs this on machines without one).
import type { Program } from '../../compile/program.js';
import { ModuleBuilder, type KernelUnit } from './codegen/module.js';
import { loweringOf } from './lowering-table.js';
import type { LowerContext, Runner } from './lower/types.js';
import { fromBf16Kernel, guardedCopyKernel, toBf16Kernel } from './codegen/misc.js';
import { planStorage } from './lower/storage-plan.js';
import type { Storage } from './storage.js';
import { config } from '../config.js';

export interface LoweredProgram {
  readonly runners: readonly Runner[];
  /** How each slot's value is held (lower/storage-plan.ts); the executable keeps every value to it. */
  readonly storage: readonly Storage[];
  /** The conversions between float32 and bfloat16 storage (null when no value is held in bfloat16). */
  readonly conversions: { readonly toBf16: string; readonly fromBf16: string } | null;
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
}

export function lowerProgram(program: Program, options: LowerOptions = {}): LoweredProgram {
  const mb = new ModuleBuilder();
  const storage = planStorage(program, options.bf16Activations ?? config().bf16Activations);
  const lc: LowerContext = {
    program,
    mb,
    cudnn: options.cudnn ?? false,
    cudnnBenchmark: options.cudnnBenchmark ?? false,
    slotDtype: (slot) => program.slots[slot]!.dtype,
    slotNdim: (slot) => program.slots[slot]!.broadcastable.length,
    slotStorage: (slot) => storage[slot]!,
  };
  const runners = program.steps.map((step) => loweringOf(step.op)(lc, step));
  // A CUDA graph of this program writes its updates back in place with this kernel (executable.ts).
  if (program.updates.length > 0) guardedCopyKernel(mb);
  const conversions = storage.includes('bfloat16') ? { toBf16: toBf16Kernel(mb), fromBf16: fromBf16Kernel(mb) } : null;
  return { runners, storage, conversions, units: mb.units(), source: mb.source() };
}
