// Lowers a program for the CUDA device: one runner per step and the kernel sources they need.
// Needs no GPU (the compile check of generated sources runs this on machines without one).
import type { Program } from '../../compile/program.js';
import { ModuleBuilder, type KernelUnit } from './codegen/module.js';
import { loweringOf } from './lowering-table.js';
import type { LowerContext, Runner } from './lower/types.js';
import { guardedCopyKernel } from './codegen/misc.js';

export interface LoweredProgram {
  readonly runners: readonly Runner[];
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
}

export function lowerProgram(program: Program, options: LowerOptions = {}): LoweredProgram {
  const mb = new ModuleBuilder();
  const lc: LowerContext = {
    program,
    mb,
    cudnn: options.cudnn ?? false,
    cudnnBenchmark: options.cudnnBenchmark ?? false,
    slotDtype: (slot) => program.slots[slot]!.dtype,
    slotNdim: (slot) => program.slots[slot]!.broadcastable.length,
  };
  const runners = program.steps.map((step) => loweringOf(step.op)(lc, step));
  // A CUDA graph of this program writes its updates back in place with this kernel (executable.ts).
  if (program.updates.length > 0) guardedCopyKernel(mb);
  return { runners, units: mb.units(), source: mb.source() };
}
