// Converting a float32 value between its storages (float32, bfloat16) and layouts (NCHW, NHWC): the
// executable keeps every value to the storage and layout plans with this, and lowerings use it for the
// operands they need in another form. One kernel per conversion: the bfloat16 rounding or widening when
// only the storage changes, the tiled relayout (codegen/relayout.ts) when the layout does.
import type { CudaArray } from '../cuda-array.js';
import { RELAYOUT_BLOCK, relayoutGrid, relayoutKernel } from '../codegen/relayout.js';
import { fromBf16Kernel, toBf16Kernel } from '../codegen/misc.js';
import type { ModuleBuilder } from '../codegen/module.js';
import type { Layout, Storage } from '../storage.js';
import type { RunState } from './types.js';

/** The kernels that convert a value between storages and layouts (the executable, RunState.float32, inLayout and converted). */
export interface Conversions {
  readonly toBf16: string;
  readonly fromBf16: string;
  /** relayoutKernel(from, to) by `${from}>${to}` for the four pairs of float32 and bfloat16. */
  readonly relayout: Readonly<Record<string, string>>;
}

/** The conversion kernels, defined in mb. */
export function conversionKernels(mb: ModuleBuilder): Conversions {
  const relayout: Record<string, string> = {};
  for (const from of ['float32', 'bfloat16'] as const) {
    for (const to of ['float32', 'bfloat16'] as const) relayout[`${from}>${to}`] = relayoutKernel(mb, from, to);
  }
  return { toBf16: toBf16Kernel(mb), fromBf16: fromBf16Kernel(mb), relayout };
}

/** A new array with `from`'s values held as `storage` in `layout` (from's dtype is float32 whenever they differ). */
export function convertArray(s: Pick<RunState, 'alloc' | 'launch' | 'ctx'>, kernels: Conversions, from: CudaArray, storage: Storage,
  layout: Layout): CudaArray {
  const out = s.alloc(from.dtype, from.shape, storage, layout);
  if (out.size === 0) return out;
  if (from.layout === layout) {
    if (from.storage === storage) throw new Error(`internal: a conversion of a ${storage} ${layout} array to itself`);
    const kernel = storage === 'bfloat16' ? kernels.toBf16 : kernels.fromBf16;
    s.launch(kernel, s.ctx.gridFor(out.size), 256, [{ ptr: out.ptr }, { ptr: from.ptr }, { i64: out.size }]);
    return out;
  }
  const kernel = kernels.relayout[`${from.storage}>${storage}`];
  if (kernel === undefined) throw new Error(`internal: no relayout from ${from.storage} to ${storage}`);
  const [n, c, h, w] = from.shape as [number, number, number, number];
  s.launch(kernel, relayoutGrid(n, c, h * w), RELAYOUT_BLOCK, [{ ptr: out.ptr }, { ptr: from.ptr }, { i32: c }, { i32: h * w },
    { i32: layout === 'nhwc' ? 1 : 0 }]);
  return out;
}
