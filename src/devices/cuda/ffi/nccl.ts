// NCCL (libnccl.so.2) through koffi: communicators and collectives on device buffers.
//
// The unique id is 128 opaque bytes (NCCL_UNIQUE_ID_BYTES). It is handled here as a
// Uint8Array so that rank 0 can write it into a SharedArrayBuffer and every worker thread
// can read it back; ncclCommInitRank takes it BY VALUE as the C struct
// `struct { char internal[128]; }`, which koffi builds from { internal: Uint8Array }.
//
// Every call acts on the CUDA device of the calling thread's current context, so a worker
// thread makes its own context current before ncclCommInitRank and its collectives.
import { NCCL_RESULT_NAMES, check, type StatusDescription } from './errors.js';
import { NCCL_LIBRARY, cachedLoader, type FindLibraryOptions } from './find-library.js';
import { bindAll, bindOptional, registerCudaTypes, type CUstream, type DevicePtr, type KoffiFunction, type KoffiLib, type NcclComm } from './types.js';
import koffi from 'koffi';

export const NCCL_UNIQUE_ID_BYTES = 128;

/** nccl.h ncclDataType_t (checked against NCCL 2.30's nccl.h). */
export const NCCL_DATA_TYPE = {
  int8: 0,
  uint8: 1,
  int32: 2,
  uint32: 3,
  int64: 4,
  uint64: 5,
  float16: 6,
  float32: 7,
  float64: 8,
  bfloat16: 9,
} as const;
export type NcclDataType = keyof typeof NCCL_DATA_TYPE;

/** nccl.h ncclRedOp_t (avg needs NCCL 2.10+). */
export const NCCL_RED_OP = { sum: 0, prod: 1, max: 2, min: 3, avg: 4 } as const;
export type NcclRedOp = keyof typeof NCCL_RED_OP;

export const NCCL_IN_PROGRESS = 7;

const STREAM = 'ncclComm_t comm, CUstream stream';

/** Every NCCL function bound. Buffers are device pointers (CUdeviceptr; `void *` in nccl.h). */
export const NCCL_SIGNATURES = {
  ncclGetVersion: 'int ncclGetVersion(_Out_ int *version)',
  ncclGetErrorString: 'const char *ncclGetErrorString(int result)',
  ncclGetUniqueId: 'int ncclGetUniqueId(void *uniqueId)',
  ncclCommInitRank: 'int ncclCommInitRank(_Out_ ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank)',
  ncclCommInitAll: 'int ncclCommInitAll(void *comms, int ndev, const int *devlist)',
  ncclCommDestroy: 'int ncclCommDestroy(ncclComm_t comm)',
  ncclCommAbort: 'int ncclCommAbort(ncclComm_t comm)',
  ncclCommGetAsyncError: 'int ncclCommGetAsyncError(ncclComm_t comm, _Out_ int *asyncError)',
  ncclCommCount: 'int ncclCommCount(ncclComm_t comm, _Out_ int *count)',
  ncclCommCuDevice: 'int ncclCommCuDevice(ncclComm_t comm, _Out_ int *device)',
  ncclCommUserRank: 'int ncclCommUserRank(ncclComm_t comm, _Out_ int *rank)',
  ncclAllReduce: `int ncclAllReduce(CUdeviceptr sendbuff, CUdeviceptr recvbuff, size_t count, int datatype, int op, ${STREAM})`,
  ncclBroadcast: `int ncclBroadcast(CUdeviceptr sendbuff, CUdeviceptr recvbuff, size_t count, int datatype, int root, ${STREAM})`,
  ncclReduce: `int ncclReduce(CUdeviceptr sendbuff, CUdeviceptr recvbuff, size_t count, int datatype, int op, int root, ${STREAM})`,
  ncclAllGather: `int ncclAllGather(CUdeviceptr sendbuff, CUdeviceptr recvbuff, size_t sendcount, int datatype, ${STREAM})`,
  ncclReduceScatter: `int ncclReduceScatter(CUdeviceptr sendbuff, CUdeviceptr recvbuff, size_t recvcount, int datatype, int op, ${STREAM})`,
  ncclSend: `int ncclSend(CUdeviceptr sendbuff, size_t count, int datatype, int peer, ${STREAM})`,
  ncclRecv: `int ncclRecv(CUdeviceptr recvbuff, size_t count, int datatype, int peer, ${STREAM})`,
  ncclGroupStart: 'int ncclGroupStart(void)',
  ncclGroupEnd: 'int ncclGroupEnd(void)',
} as const;

type NcclFunctions = { [K in keyof typeof NCCL_SIGNATURES]: KoffiFunction };

function dtype(t: NcclDataType): number {
  return NCCL_DATA_TYPE[t];
}
function redop(op: NcclRedOp): number {
  return NCCL_RED_OP[op];
}

/** Splits NCCL_VERSION_CODE (e.g. 23007 -> 2.30.7; codes below 2.9 used X*1000+Y*100+Z). */
export function decodeNcclVersion(code: number): { major: number; minor: number; patch: number } {
  if (code < 20900) return { major: Math.floor(code / 1000), minor: Math.floor((code % 1000) / 100), patch: code % 100 };
  return { major: Math.floor(code / 10000), minor: Math.floor((code % 10000) / 100), patch: code % 100 };
}

export class Nccl {
  private readonly fn: NcclFunctions;
  private readonly lastError: KoffiFunction | null;

  constructor(lib: KoffiLib, readonly path: string) {
    registerCudaTypes();
    this.fn = bindAll(lib, path, NCCL_SIGNATURES);
    this.lastError = bindOptional(lib, 'const char *ncclGetLastError(ncclComm_t comm)'); // NCCL 2.13+
  }

  describe(code: number): StatusDescription {
    const name = NCCL_RESULT_NAMES[code] ?? `ncclResult_t ${code}`;
    let message = (this.fn.ncclGetErrorString(code) as string | null) ?? name;
    const last = this.lastError?.(null) as string | null | undefined;
    if (last) message += `; last error: ${last}`;
    return { name, message };
  }
  check(call: string, code: unknown, detail?: string): void {
    check('nccl', (c) => this.describe(c), call, code, detail);
  }

  /** NCCL_VERSION_CODE of the loaded library, e.g. 23007; see decodeNcclVersion. */
  version(): number {
    const out: [number] = [0];
    this.check('ncclGetVersion', this.fn.ncclGetVersion(out));
    return out[0];
  }

  /** Makes a new unique id (rank 0 only), written into `into` when given (e.g. a SharedArrayBuffer view). */
  getUniqueId(into: Uint8Array = new Uint8Array(NCCL_UNIQUE_ID_BYTES)): Uint8Array {
    if (into.byteLength < NCCL_UNIQUE_ID_BYTES) throw new RangeError(`an ncclUniqueId needs ${NCCL_UNIQUE_ID_BYTES} bytes`);
    this.check('ncclGetUniqueId', this.fn.ncclGetUniqueId(into));
    return into.subarray(0, NCCL_UNIQUE_ID_BYTES);
  }

  /** Joins communicator `id` as `rank` of `nranks`; blocks until every rank has joined. */
  commInitRank(nranks: number, id: Uint8Array, rank: number): NcclComm {
    if (id.byteLength < NCCL_UNIQUE_ID_BYTES) throw new RangeError(`an ncclUniqueId has ${NCCL_UNIQUE_ID_BYTES} bytes, got ${id.byteLength}`);
    const out: [NcclComm | null] = [null];
    const commId = { internal: id.subarray(0, NCCL_UNIQUE_ID_BYTES) };
    this.check('ncclCommInitRank', this.fn.ncclCommInitRank(out, nranks, commId, rank), `rank ${rank} of ${nranks}`);
    return out[0] as NcclComm;
  }

  /** One communicator per device, all in this thread (devices default to 0..ndev-1). */
  commInitAll(ndev: number, devices?: readonly number[]): NcclComm[] {
    const comms = Buffer.alloc(8 * ndev);
    const devlist = devices ? Int32Array.from(devices) : null;
    if (devlist && devlist.length !== ndev) throw new RangeError(`commInitAll: ${ndev} devices requested, ${devlist.length} listed`);
    this.check('ncclCommInitAll', this.fn.ncclCommInitAll(comms, ndev, devlist), `${ndev} devices`);
    return koffi.decode(comms, 'ncclComm_t', ndev) as NcclComm[];
  }
  commDestroy(comm: NcclComm): void { this.check('ncclCommDestroy', this.fn.ncclCommDestroy(comm)); }
  /** Frees the communicator and aborts its pending operations (for error paths). */
  commAbort(comm: NcclComm): void { this.check('ncclCommAbort', this.fn.ncclCommAbort(comm)); }
  /** The communicator's asynchronous error status (0 = ncclSuccess); never throws for it. */
  commGetAsyncError(comm: NcclComm): number {
    const out: [number] = [0];
    this.check('ncclCommGetAsyncError', this.fn.ncclCommGetAsyncError(comm, out));
    return out[0];
  }
  commCount(comm: NcclComm): number { return this.intOut('ncclCommCount', (o) => this.fn.ncclCommCount(comm, o)); }
  commCuDevice(comm: NcclComm): number { return this.intOut('ncclCommCuDevice', (o) => this.fn.ncclCommCuDevice(comm, o)); }
  commUserRank(comm: NcclComm): number { return this.intOut('ncclCommUserRank', (o) => this.fn.ncclCommUserRank(comm, o)); }

  /** In place when send === recv. Counts are in elements. */
  allReduce(send: DevicePtr, recv: DevicePtr, count: number, type: NcclDataType, op: NcclRedOp, comm: NcclComm, stream: CUstream | null): void {
    this.check('ncclAllReduce', this.fn.ncclAllReduce(send, recv, count, dtype(type), redop(op), comm, stream), `${count} ${type}`);
  }
  broadcast(send: DevicePtr, recv: DevicePtr, count: number, type: NcclDataType, root: number, comm: NcclComm, stream: CUstream | null): void {
    this.check('ncclBroadcast', this.fn.ncclBroadcast(send, recv, count, dtype(type), root, comm, stream), `${count} ${type}`);
  }
  /** recv matters on root only (pass 0n elsewhere). */
  reduce(send: DevicePtr, recv: DevicePtr, count: number, type: NcclDataType, op: NcclRedOp, root: number, comm: NcclComm, stream: CUstream | null): void {
    this.check('ncclReduce', this.fn.ncclReduce(send, recv, count, dtype(type), redop(op), root, comm, stream), `${count} ${type}`);
  }
  /** recv holds nranks * sendCount elements, rank i's at offset i * sendCount. */
  allGather(send: DevicePtr, recv: DevicePtr, sendCount: number, type: NcclDataType, comm: NcclComm, stream: CUstream | null): void {
    this.check('ncclAllGather', this.fn.ncclAllGather(send, recv, sendCount, dtype(type), comm, stream), `${sendCount} ${type}`);
  }
  /** send holds nranks * recvCount elements; rank i receives block i of the reduction. */
  reduceScatter(send: DevicePtr, recv: DevicePtr, recvCount: number, type: NcclDataType, op: NcclRedOp, comm: NcclComm, stream: CUstream | null): void {
    this.check('ncclReduceScatter', this.fn.ncclReduceScatter(send, recv, recvCount, dtype(type), redop(op), comm, stream), `${recvCount} ${type}`);
  }
  send(buf: DevicePtr, count: number, type: NcclDataType, peer: number, comm: NcclComm, stream: CUstream | null): void {
    this.check('ncclSend', this.fn.ncclSend(buf, count, dtype(type), peer, comm, stream), `to ${peer}`);
  }
  recv(buf: DevicePtr, count: number, type: NcclDataType, peer: number, comm: NcclComm, stream: CUstream | null): void {
    this.check('ncclRecv', this.fn.ncclRecv(buf, count, dtype(type), peer, comm, stream), `from ${peer}`);
  }
  groupStart(): void { this.check('ncclGroupStart', this.fn.ncclGroupStart()); }
  groupEnd(): void { this.check('ncclGroupEnd', this.fn.ncclGroupEnd()); }

  private intOut(call: string, f: (out: [number]) => unknown): number {
    const out: [number] = [0];
    this.check(call, f(out));
    return out[0];
  }
}

/** Loads libnccl once per distinct options. Throws CudaLibraryNotFoundError when absent. */
export const loadNccl: (options?: FindLibraryOptions) => Nccl = cachedLoader(NCCL_LIBRARY, ({ lib, path }) => new Nccl(lib, path));
