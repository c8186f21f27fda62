// The concatenate group (see group-kernels.ts): a concatenate whose parts are made by elementwise
// steps read nowhere else. When the parts are contiguous ranges of the result (concatenation along
// the first non-trivial axis, as the flat gradient's parts g·rows are), each part's step writes
// straight into its range: no intermediate array and no copy. Other parts are copied in with
// TypedArray.set. Anything else runs the steps one by one and then the concatenate kernel.
import { NDArray, sizeOf, type Shape } from '../../tensor/ndarray.js';
import type { TensorType } from '../../tensor/type.js';
import { isFloat } from '../../tensor/dtype.js';
import { isOpName } from '../../ops/apply.js';
import { broadcastShapes } from '../../ops/broadcast.js';
import { KERNELS } from './kernels.js';
import type { CompileContext, GroupRunner, Kernel, RunContext, StepRunner } from './kernel-types.js';
import type { Attrs } from '../../tensor/variable.js';
import { externalInputs, runMember, type MemberStep } from './group-kernels.js';

function runnerOf(m: MemberStep, types: readonly TensorType[], cx: CompileContext, escapes: boolean): StepRunner {
  if (!isOpName(m.op)) throw new TypeError(`cpu device: unknown op '${m.op}'`);
  const kernel = KERNELS[m.op] as unknown as Kernel<Attrs>;
  return kernel({ op: m.op, attrs: m.attrs, inputTypes: m.inputs.map((i) => types[i]!), outType: types[m.output]!, escapes }, cx);
}

/**
 * `parts` are the elementwise steps (in program order) whose outputs only `concat` reads. Outputs
 * of the group: [concat, ...parts]; the parts' values are not materialised on the fast path.
 */
export function concatGroupBuilder(concat: MemberStep, parts: readonly MemberStep[]) {
  return (types: readonly TensorType[], cx: CompileContext, escapes: (slot: number) => boolean): GroupRunner => {
    const outputs = [concat.output, ...parts.map((m) => m.output)];
    const ext = externalInputs([...parts, concat]);
    const partRunners = parts.map((m) => runnerOf(m, types, cx, false));
    const concatRunner = runnerOf(concat, types, cx, escapes(concat.output));
    const dtype = types[concat.output]!.dtype;
    // TypedArray.set stores as the concatenate does only into float arrays or between equal dtypes.
    const settable = isFloat(dtype) || concat.inputs.every((slot) => types[slot]!.dtype === dtype);
    const axis = (concat.attrs as { readonly axis: number }).axis;
    const partOf = concat.inputs.map((slot) => parts.findIndex((m) => m.output === slot));
    const extAt = (slot: number): number => ext.indexOf(slot);
    const produced: (NDArray | undefined)[] = outputs.map(() => undefined);
    const partShapes: Shape[] = [];
    const concatArgs: NDArray[] = new Array<NDArray>(concat.inputs.length);
    const partArgs = parts.map((m) => new Array<NDArray>(m.inputs.length));

    const slow = (inputs: readonly NDArray[], rt: RunContext): (NDArray | undefined)[] => {
      parts.forEach((m, k) => {
        const sub: RunContext = { output: (d, s) => rt.output(d, s, false, k + 1), scratch: rt.scratch };
        m.inputs.forEach((slot, i) => (partArgs[k]![i] = inputs[extAt(slot)]!));
        produced[k + 1] = runMember(m, partRunners[k]!, partArgs[k]!, sub);
      });
      concat.inputs.forEach((slot, i) => (concatArgs[i] = partOf[i]! >= 0 ? produced[partOf[i]! + 1]! : inputs[extAt(slot)]!));
      const sub: RunContext = { output: (d, s) => rt.output(d, s, false, 0), scratch: rt.scratch };
      produced[0] = runMember(concat, concatRunner, concatArgs, sub);
      return produced;
    };

    return (inputs, rt) => {
      if (!settable) return slow(inputs, rt);
      // Every part's shape (the elementwise broadcast of its inputs) before anything runs.
      let first: Shape | null = null;
      let total = 0;
      for (let i = 0; i < concat.inputs.length; i++) {
        const k = partOf[i]!;
        let shape: Shape;
        if (k < 0) shape = inputs[extAt(concat.inputs[i]!)]!.shape;
        else {
          try {
            shape = broadcastShapes('fused', parts[k]!.inputs.map((slot) => inputs[extAt(slot)]!.shape));
          } catch {
            return slow(inputs, rt);
          }
        }
        if (first === null) first = shape;
        if (shape.length !== first.length || shape.some((d, ax) => ax !== axis && d !== first![ax])) return slow(inputs, rt);
        total += shape[axis]!;
        partShapes[i] = shape;
      }
      if (first === null || sizeOf(first.slice(0, axis)) !== 1) return slow(inputs, rt);
      const shape = first.map((d, ax) => (ax === axis ? total : d));
      const out = rt.output(dtype, shape, false, 0);
      const dst = out.data;
      let offset = 0;
      for (let i = 0; i < concat.inputs.length; i++) {
        const k = partOf[i]!;
        const size = sizeOf(partShapes[i]!);
        if (k < 0) {
          dst.set(inputs[extAt(concat.inputs[i]!)]!.data, offset);
        } else {
          const view = dst.subarray(offset, offset + size);
          const into: RunContext = {
            // The part's own result array is its range of the concatenation (same dtype and size).
            output: (d, s) => (d === dtype && sizeOf(s) === size ? new NDArray(d, s, view) : rt.output(d, s, false, k + 1)),
            scratch: rt.scratch,
          };
          const m = parts[k]!;
          m.inputs.forEach((slot, j) => (partArgs[k]![j] = inputs[extAt(slot)]!));
          const value = runMember(m, partRunners[k]!, partArgs[k]!, into);
          if (value.data !== view) dst.set(value.data, offset);
        }
        offset += size;
      }
      produced[0] = out;
      for (let k = 1; k < produced.length; k++) produced[k] = undefined;
      return produced;
    };
  };
}
