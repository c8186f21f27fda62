// `import * as T from 'synkhronos/tensor'`: the symbolic front end.
import './methods.js';
import './eval.js';

export * from './dtype.js';
export { NDArray, type Shape, type NestedArray } from './ndarray.js';
export { TensorType } from './type.js';
export { Variable, Constant, SharedVariable, type SharedOptions } from './variable.js';
export * from './build.js';
export * from './build-linalg.js';
export * from './build-nn.js';
export * from './build-shape.js';
export { grad, type GradOptions } from '../grad/grad.js';
export { fn, fnFromDescription, CompiledFunction, setDefaultDevice, defaultDevice, getDefaultDevice, type Fn, type FnSpec, type FunctionDescription, type ArrayInput, type ResultOf } from '../compile/function.js';
export { ReferenceDevice, referenceDevice } from '../devices/reference/reference-device.js';
export { CpuDevice, type CpuDeviceOptions } from '../devices/cpu/cpu-device.js';
export type { Device, DeviceArray, Executable } from '../devices/device.js';
export { OpTypeError, OpRuntimeError } from '../ops/op.js';
export * from './random-streams.js';
