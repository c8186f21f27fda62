// `import * as synk from 'synkhronos'`: the data-parallel runtime, plus the tensor namespace as T.
/**
 * The data-parallel runtime: {@link fork} worker threads (one per core or GPU), build functions with {@link fn}
 * whose inputs are scattered along axis 0 and whose outputs are reduced, keep inputs in shared memory with
 * {@link data}, and move shared variables between workers with the collectives ({@link broadcast}, {@link allReduce}, ...).
 * The symbolic front end is here as {@link T} (the same module as `synkhronos/tensor`).
 *
 * @example
 * ```ts
 * import * as synk from 'synkhronos';
 * const { T } = synk;
 *
 * const x = T.matrix('x');
 * const f = synk.fn({ inputs: [x], outputs: [[T.sum(x, 0), 'sum'], [T.max(x), 'max']] });
 * await synk.fork({ n: 2 });                         // two worker threads
 * try {
 *   const rows = synk.data([[1, 2], [3, 4], [5, 6], [7, 8]]);
 *   const [sums, max] = (await f(rows)) as synk.T.NDArray[];
 *   console.log(sums.toArray(), max.item());         // [16, 20] 8, as f.local(rows) on one device
 * } finally {
 *   await synk.close();
 * }
 * ```
 * @module synkhronos
 */
import './build/methods.js';

export * as T from './tensor.js';
export { fork, close, distribute, isForked, numWorkers, nodeInfo, type ForkOptions, type NodeInfo } from './parallel/runtime.js';
export { devices, type DeviceList, type GpuInfo } from './devices/list.js';
export type { CallOptions } from './parallel/call-args.js';
export {
  fn, type SynkFn, type SynkFnSpec, type OutputSpec, type UpdateSpec, type SynkInput, type NamedInputs, type SubsetCallOptions,
} from './parallel/function.js';
export type { ArrayInput } from './compile/fn-types.js';
export { data, Data, type DataOptions } from './parallel/data.js';
export { broadcast, scatter, gather, allGather, reduce, allReduce, setValue, getValue, getShapes, getLengths } from './parallel/collectives.js';
export type { OutputOp, UpdateOp } from './parallel/accumulate.js';
export type { ReduceOp } from './comm/reduce-ops.js';
export { WorkerError, PoolClosedError, PoolTimeoutError } from './parallel/pool.js';
export type { Communicator } from './comm/communicator.js';
