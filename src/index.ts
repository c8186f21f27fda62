// `import * as synk from 'synkhronos'`: the data-parallel runtime, plus the tensor namespace as T.
import './tensor/methods.js';

export * as T from './tensor/index.js';
export { fork, close, distribute, isForked, numWorkers, type ForkOptions } from './parallel/runtime.js';
export { devices, type DeviceList, type GpuInfo } from './devices/list.js';
export type { CallOptions } from './parallel/call-args.js';
export { fn, type SynkFn, type SynkFnSpec, type OutputSpec, type UpdateSpec, type SynkInput, type NamedInputs, type SubsetCallOptions } from './parallel/function.js';
export type { ArrayInput } from './compile/fn-types.js';
export { data, Data, type DataOptions } from './parallel/data.js';
export { broadcast, scatter, gather, allGather, reduce, allReduce, setValue, getValue, getShapes, getLengths } from './parallel/collectives.js';
export type { OutputOp, UpdateOp } from './parallel/accumulate.js';
export type { ReduceOp } from './comm/reduce-ops.js';
export { WorkerError, PoolClosedError, PoolTimeoutError } from './parallel/pool.js';
export type { Communicator } from './comm/communicator.js';
