// `import * as T from 'synkhronos/tensor'`: the symbolic front end.
/**
 * The symbolic front end: typed variables ({@link matrix}, {@link vector}, {@link shared}, ...), ops as functions
 * or methods with NumPy broadcasting, reverse-mode {@link grad}, and {@link fn} to compile a graph for a device.
 *
 * @example
 * ```ts
 * import * as T from 'synkhronos/tensor';
 *
 * const x = T.matrix('x');
 * const y = T.vector('y');
 * const w = T.shared(new Float32Array(3), { name: 'w' });
 * const b = T.shared(0, { name: 'b' });
 * const p = T.sigmoid(x.dot(w).add(b));
 * const cost = T.mean(T.binaryCrossentropy(p, y));
 * const [gw, gb] = T.grad(cost, [w, b]);
 * const train = T.fn({
 *   inputs: [x, y],
 *   outputs: cost,
 *   updates: [[w, w.sub(gw!.mul(0.1))], [b, b.sub(gb!.mul(0.1))]],
 * });
 * const c = train([[1, 2, 3], [4, 5, 6]], [0, 1]) as T.NDArray;
 * console.log(c.item(), w.getValue().toArray());
 * ```
 * @module synkhronos/tensor
 */
import './build/methods.js';
import './run/eval.js';

export * from './tensor/dtype.js';
export { NDArray, type Shape, type NestedArray } from './tensor/ndarray.js';
export { TensorType } from './tensor/type.js';
export { Variable, Constant, SharedVariable, type SharedOptions } from './tensor/variable.js';
export * from './build/build.js';
export * from './build/build-linalg.js';
export * from './build/build-nn.js';
export * from './build/build-shape.js';
export { grad, type GradOptions } from './grad/grad.js';
export {
  fn,
  fnFromDescription,
  CompiledFunction,
  setDefaultDevice,
  defaultDevice,
  getDefaultDevice,
  type Fn,
  type FnSpec,
  type FunctionDescription,
  type ArrayInput,
  type ResultOf,
  type FromDescriptionOptions,
  type CompiledFunctionOptions,
} from './run/function.js';
export { PRECISIONS, type Precision } from './compile/precision.js';
export { DescriptionError, DEFAULT_DESCRIPTION_LIMITS, type DescriptionLimits } from './compile/validate-description.js';
export { ReferenceDevice, referenceDevice } from './devices/reference/reference-device.js';
export { CpuDevice, type CpuDeviceOptions } from './devices/cpu/cpu-device.js';
export type { Device, DeviceArray, Executable, RunOptions } from './devices/device.js';
export { OpTypeError, OpRuntimeError } from './ops/op.js';
export * from './build/random-streams.js';
