// cuDNN 9's backend ("graph") API through koffi: descriptors made, given attributes, finalised and
// executed (cudnn_graph.h: cudnnBackendCreateDescriptor, cudnnBackendSetAttribute, cudnnBackendGetAttribute,
// cudnnBackendFinalize, cudnnBackendExecute). It is the API PyTorch's convolutions run on (through
// cudnn-frontend); its heuristics rank engines that the legacy cudnnGet*Algorithm_v7 calls do not offer,
// such as the implicit-GEMM kernels PyTorch's fp32 ResNet-50 step spends its convolution time in.
//
// Every constant is from cuDNN 9's cudnn_graph.h (enum names beside them). A backend descriptor is a
// `void *`; it is bound here as a 64-bit integer (the same register on LP64), so arrays of descriptors and
// pointers are plain BigUint64Arrays.
import koffi from 'koffi';
import { bindAll, toNumber, type CudnnHandle, type KoffiFunction, type KoffiLib } from './types.js';

/** A backend descriptor: the address cuDNN handed out. */
export type BackendDescriptor = bigint;

/** cudnnBackendDescriptorType_t. */
export const DESC = {
  convolution: 1, engine: 2, engineConfig: 3, engineHeuristics: 4, executionPlan: 5,
  convForward: 10, convBackwardFilter: 11, convBackwardData: 12, operationGraph: 15, variantPack: 16, tensor: 17,
} as const;

/** cudnnBackendAttributeType_t. */
export const TYPE = {
  handle: 0, dataType: 1, boolean: 2, int64: 3, float: 4, double: 5, voidPtr: 6, convolutionMode: 7, heurMode: 8,
  numericalNote: 11, backendDescriptor: 15,
} as const;

/** cudnnBackendAttributeName_t. */
export const ATTR = {
  convCompType: 100, convMode: 101, convDilations: 102, convFilterStrides: 103, convPostPaddings: 104, convPrePaddings: 105,
  convSpatialDims: 106,
  heurMode: 200, heurOperationGraph: 201, heurResults: 202,
  engineConfigEngine: 300,
  planHandle: 400, planEngineConfig: 401, planWorkspaceSize: 402,
  // CUDNN_ATTR_OPERATION_CONVOLUTION_{FORWARD,BWD_DATA,BWD_FILTER}_*: alpha, beta, conv desc, then the three tensors.
  fwdAlpha: 700, fwdBeta: 701, fwdConv: 702, fwdW: 703, fwdX: 704, fwdY: 705,
  bwdDataAlpha: 706, bwdDataBeta: 707, bwdDataConv: 708, bwdDataW: 709, bwdDataDx: 710, bwdDataDy: 711,
  bwdFilterAlpha: 712, bwdFilterBeta: 713, bwdFilterConv: 714, bwdFilterDw: 715, bwdFilterX: 716, bwdFilterDy: 717,
  graphHandle: 800, graphOps: 801,
  tensorAlignment: 900, tensorDataType: 901, tensorDims: 902, tensorStrides: 903, tensorUid: 906,
  packUids: 1000, packPointers: 1001, packWorkspace: 1003,
  engineNumericalNote: 1303,
} as const;

/**
 * cudnnBackendHeurMode_t: CUDNN_HEUR_MODE_INSTANT (PyTorch's default ranking), CUDNN_HEUR_MODE_B, CUDNN_HEUR_MODE_FALLBACK
 * (engines that take most problems, which PyTorch adds to the timed choice), CUDNN_HEUR_MODE_A.
 */
export const HEUR_MODE = { instant: 0, b: 1, fallback: 2, a: 3 } as const;
/** cudnnBackendNumericalNote_t: CUDNN_NUMERICAL_NOTE_TENSOR_CORE, ..._DOWN_CONVERT_INPUTS; CUDNN_NUMERICAL_NOTE_TYPE_COUNT. */
export const NOTE = { tensorCore: 0, downConvertInputs: 1, count: 10 } as const;

export const CUDNN_BACKEND_SIGNATURES = {
  cudnnBackendCreateDescriptor: 'int cudnnBackendCreateDescriptor(int descriptorType, _Out_ uint64_t *descriptor)',
  cudnnBackendDestroyDescriptor: 'int cudnnBackendDestroyDescriptor(uint64_t descriptor)',
  cudnnBackendFinalize: 'int cudnnBackendFinalize(uint64_t descriptor)',
  cudnnBackendSetAttribute: 'int cudnnBackendSetAttribute(uint64_t descriptor, int attributeName, int attributeType, int64_t elementCount, '
    + 'const void *arrayOfElements)',
  cudnnBackendGetAttribute: 'int cudnnBackendGetAttribute(uint64_t descriptor, int attributeName, int attributeType, '
    + 'int64_t requestedElementCount, _Out_ int64_t *elementCount, void *arrayOfElements)',
  cudnnBackendExecute: 'int cudnnBackendExecute(cudnnHandle_t handle, uint64_t executionPlan, uint64_t variantPack)',
} as const;

type BackendFunctions = { [K in keyof typeof CUDNN_BACKEND_SIGNATURES]: KoffiFunction };

/** Throws the library's typed error for a nonzero status (Cudnn.check). */
export type CudnnCheck = (call: string, code: unknown, detail?: string) => void;

/** The backend calls of one loaded libcudnn, with typed setters for the attribute kinds convolutions use. */
export class CudnnBackend {
  private readonly fn: BackendFunctions;

  constructor(lib: KoffiLib, path: string, private readonly check: CudnnCheck) {
    this.fn = bindAll(lib, path, CUDNN_BACKEND_SIGNATURES);
  }

  create(type: number): BackendDescriptor {
    const out: [number | bigint] = [0];
    this.check('cudnnBackendCreateDescriptor', this.fn.cudnnBackendCreateDescriptor(type, out), `descriptor type ${type}`);
    return BigInt(out[0]);
  }
  destroy(d: BackendDescriptor): void {
    this.check('cudnnBackendDestroyDescriptor', this.fn.cudnnBackendDestroyDescriptor(d));
  }
  finalize(d: BackendDescriptor, what: string): void {
    this.check('cudnnBackendFinalize', this.fn.cudnnBackendFinalize(d), what);
  }
  private set(d: BackendDescriptor, attr: number, type: number, count: number, values: ArrayBufferView): void {
    this.check('cudnnBackendSetAttribute', this.fn.cudnnBackendSetAttribute(d, attr, type, count, values), `attribute ${attr}`);
  }
  setInt64s(d: BackendDescriptor, attr: number, values: readonly number[]): void {
    this.set(d, attr, TYPE.int64, values.length, BigInt64Array.from(values, (v) => BigInt(v)));
  }
  /** An attribute of an enum type (data type, convolution mode, heuristics mode): one int32. */
  setEnum(d: BackendDescriptor, attr: number, type: number, value: number): void {
    this.set(d, attr, type, 1, Int32Array.of(value));
  }
  setScalar(d: BackendDescriptor, attr: number, double: boolean, value: number): void {
    this.set(d, attr, double ? TYPE.double : TYPE.float, 1, double ? Float64Array.of(value) : Float32Array.of(value));
  }
  setDescriptors(d: BackendDescriptor, attr: number, values: readonly BackendDescriptor[]): void {
    this.set(d, attr, TYPE.backendDescriptor, values.length, BigUint64Array.from(values));
  }
  /** Device (or null) pointers: CUDNN_TYPE_VOID_PTR elements. */
  setPointers(d: BackendDescriptor, attr: number, values: readonly bigint[]): void {
    this.set(d, attr, TYPE.voidPtr, values.length, BigUint64Array.from(values));
  }
  setHandle(d: BackendDescriptor, attr: number, handle: CudnnHandle): void {
    this.set(d, attr, TYPE.handle, 1, BigUint64Array.of(BigInt(koffi.address(handle))));
  }

  /** How many elements an attribute holds (a get of none). */
  count(d: BackendDescriptor, attr: number, type: number): number {
    const n: [number | bigint] = [0];
    this.check('cudnnBackendGetAttribute', this.fn.cudnnBackendGetAttribute(d, attr, type, 0, n, null), `count of attribute ${attr}`);
    return toNumber(n[0]);
  }
  /** Fills descriptors the caller made (cuDNN writes into them; the heuristics' results and an engine config's engine). */
  getDescriptors(d: BackendDescriptor, attr: number, into: readonly BackendDescriptor[]): number {
    const n: [number | bigint] = [0];
    const arr = BigUint64Array.from(into);
    this.check('cudnnBackendGetAttribute', this.fn.cudnnBackendGetAttribute(d, attr, TYPE.backendDescriptor, into.length, n, arr),
      `attribute ${attr}`);
    return toNumber(n[0]);
  }
  getInt64(d: BackendDescriptor, attr: number): number {
    const n: [number | bigint] = [0];
    const out = new BigInt64Array(1);
    this.check('cudnnBackendGetAttribute', this.fn.cudnnBackendGetAttribute(d, attr, TYPE.int64, 1, n, out), `attribute ${attr}`);
    return Number(out[0]);
  }
  /** The numerical notes of an engine (cudnnBackendNumericalNote_t values). */
  numericalNotes(engine: BackendDescriptor): number[] {
    const n: [number | bigint] = [0];
    const out = new Int32Array(NOTE.count);
    this.check('cudnnBackendGetAttribute', this.fn.cudnnBackendGetAttribute(engine, ATTR.engineNumericalNote, TYPE.numericalNote, NOTE.count,
      n, out), 'numerical notes');
    return [...out.subarray(0, Math.min(NOTE.count, Math.max(0, toNumber(n[0]))))];
  }
  execute(handle: CudnnHandle, plan: BackendDescriptor, pack: BackendDescriptor, what: string): void {
    this.check('cudnnBackendExecute', this.fn.cudnnBackendExecute(handle, plan, pack), what);
  }
}
