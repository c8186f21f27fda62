// The CUDA driver API (libcuda.so.1) through koffi. Nothing loads at import time:
// loadCudaDriver() finds the library on first call, and cudaAvailable() answers without
// ever throwing. Exported names are the ones cuda.h maps its macros to (`_v2`).
//
// Handles (contexts, streams, ...) are koffi Externals typed as branded `Handle`s; device
// pointers are bigint. Host memory arguments take any ArrayBufferView (Buffer, typed
// array, a view of a SharedArrayBuffer); koffi passes a pointer to its bytes. An *Async
// copy from pageable memory may read the source after the call returns (pinned memory
// always does), so keep such a view alive and unchanged until the stream is synchronized.
import koffi from 'koffi';
import { check, type StatusDescription } from './errors.js';
import { CUDA_DRIVER_LIBRARY, cachedLoader, type FindLibraryOptions } from './find-library.js';
import { packKernelParams, type KernelArg } from './kernel-params.js';
import {
  bindAll, registerCudaTypes, toBigInt, toNumber,
  type CUcontext, type CUdevice, type CUevent, type CUfunction, type CUgraph, type CUgraphExec, type CUmodule, type CUstream,
  type DevicePtr, type HostPointer, type KoffiFunction,
} from './types.js';

export type { KernelArg } from './kernel-params.js';

/** cuda.h CUdevice_attribute values used here. */
export const CU_DEVICE_ATTRIBUTE = {
  MAX_THREADS_PER_BLOCK: 1,
  MAX_SHARED_MEMORY_PER_BLOCK: 8,
  WARP_SIZE: 10,
  MULTIPROCESSOR_COUNT: 16,
  PCI_BUS_ID: 33,
  COMPUTE_CAPABILITY_MAJOR: 75,
  COMPUTE_CAPABILITY_MINOR: 76,
} as const;
export const CU_STREAM_DEFAULT = 0;
export const CU_STREAM_NON_BLOCKING = 1;
export const CU_EVENT_DEFAULT = 0;
export const CU_EVENT_DISABLE_TIMING = 2;
export const CU_MEMHOSTREGISTER_PORTABLE = 1;
/** CUstreamCaptureMode: relaxed lets this thread allocate (cuMemAlloc) while its stream is being captured. */
export const CU_STREAM_CAPTURE_MODE_RELAXED = 2;
export const CUDA_ERROR_NO_DEVICE = 100;

/** Every driver function bound, as koffi prototypes (logical name -> exported symbol). */
export const DRIVER_SIGNATURES = {
  cuInit: 'int cuInit(unsigned int Flags)',
  cuDriverGetVersion: 'int cuDriverGetVersion(_Out_ int *driverVersion)',
  cuDeviceGetCount: 'int cuDeviceGetCount(_Out_ int *count)',
  cuDeviceGet: 'int cuDeviceGet(_Out_ int *device, int ordinal)',
  cuDeviceGetName: 'int cuDeviceGetName(void *name, int len, int dev)',
  cuDeviceGetAttribute: 'int cuDeviceGetAttribute(_Out_ int *pi, int attrib, int dev)',
  cuDeviceTotalMem: 'int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int dev)',
  cuDevicePrimaryCtxRetain: 'int cuDevicePrimaryCtxRetain(_Out_ CUcontext *pctx, int dev)',
  cuDevicePrimaryCtxRelease: 'int cuDevicePrimaryCtxRelease_v2(int dev)',
  cuCtxSetCurrent: 'int cuCtxSetCurrent(CUcontext ctx)',
  cuCtxGetCurrent: 'int cuCtxGetCurrent(_Out_ CUcontext *pctx)',
  cuCtxSynchronize: 'int cuCtxSynchronize(void)',
  cuMemAlloc: 'int cuMemAlloc_v2(_Out_ CUdeviceptr *dptr, size_t bytesize)',
  cuMemFree: 'int cuMemFree_v2(CUdeviceptr dptr)',
  cuMemcpyHtoD: 'int cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)',
  cuMemcpyDtoH: 'int cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)',
  cuMemcpyHtoDAsync: 'int cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream)',
  cuMemcpyDtoHAsync: 'int cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)',
  cuMemcpyDtoD: 'int cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount)',
  cuMemcpyDtoDAsync: 'int cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)',
  cuMemsetD8: 'int cuMemsetD8_v2(CUdeviceptr dstDevice, uint8_t uc, size_t N)',
  cuMemsetD32: 'int cuMemsetD32_v2(CUdeviceptr dstDevice, uint32_t ui, size_t N)',
  cuMemsetD8Async: 'int cuMemsetD8Async(CUdeviceptr dstDevice, uint8_t uc, size_t N, CUstream hStream)',
  cuMemsetD32Async: 'int cuMemsetD32Async(CUdeviceptr dstDevice, uint32_t ui, size_t N, CUstream hStream)',
  cuMemHostRegister: 'int cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)',
  cuMemHostUnregister: 'int cuMemHostUnregister(void *p)',
  cuMemAllocHost: 'int cuMemAllocHost_v2(_Out_ void **pp, size_t bytesize)',
  cuMemFreeHost: 'int cuMemFreeHost(void *p)',
  cuMemGetInfo: 'int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)',
  cuModuleLoadData: 'int cuModuleLoadData(_Out_ CUmodule *module, const void *image)',
  cuModuleUnload: 'int cuModuleUnload(CUmodule hmod)',
  cuModuleGetFunction: 'int cuModuleGetFunction(_Out_ CUfunction *hfunc, CUmodule hmod, const char *name)',
  cuLaunchKernel:
    'int cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ, ' +
    'unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes, ' +
    'CUstream hStream, void **kernelParams, void **extra)',
  cuStreamCreate: 'int cuStreamCreate(_Out_ CUstream *phStream, unsigned int Flags)',
  cuStreamDestroy: 'int cuStreamDestroy_v2(CUstream hStream)',
  cuStreamSynchronize: 'int cuStreamSynchronize(CUstream hStream)',
  cuStreamWaitEvent: 'int cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)',
  cuEventCreate: 'int cuEventCreate(_Out_ CUevent *phEvent, unsigned int Flags)',
  cuEventRecord: 'int cuEventRecord(CUevent hEvent, CUstream hStream)',
  cuEventSynchronize: 'int cuEventSynchronize(CUevent hEvent)',
  // CUDA 12.8+ headers map cuEventElapsedTime to _v2; older drivers only export the plain name.
  cuEventElapsedTime: [
    'int cuEventElapsedTime_v2(_Out_ float *pMilliseconds, CUevent hStart, CUevent hEnd)',
    'int cuEventElapsedTime(_Out_ float *pMilliseconds, CUevent hStart, CUevent hEnd)',
  ],
  cuEventDestroy: 'int cuEventDestroy_v2(CUevent hEvent)',
  cuStreamBeginCapture: 'int cuStreamBeginCapture_v2(CUstream hStream, int mode)',
  cuStreamEndCapture: 'int cuStreamEndCapture(CUstream hStream, _Out_ CUgraph *phGraph)',
  cuGraphInstantiate: 'int cuGraphInstantiateWithFlags(_Out_ CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)',
  cuGraphLaunch: 'int cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)',
  cuGraphExecDestroy: 'int cuGraphExecDestroy(CUgraphExec hGraphExec)',
  cuGraphDestroy: 'int cuGraphDestroy(CUgraph hGraph)',
  cuGetErrorName: 'int cuGetErrorName(int error, _Out_ const char **pStr)',
  cuGetErrorString: 'int cuGetErrorString(int error, _Out_ const char **pStr)',
} as const;

type DriverFunctions = { [K in keyof typeof DRIVER_SIGNATURES]: KoffiFunction };
export type Dim3 = number | readonly [number, number?, number?];

export interface LaunchOptions {
  readonly sharedMemBytes?: number;
  /** null or absent: the legacy default stream. */
  readonly stream?: CUstream | null;
}

function dim3(d: Dim3): [number, number, number] {
  return typeof d === 'number' ? [d, 1, 1] : [d[0], d[1] ?? 1, d[2] ?? 1];
}

function byteLength(view: ArrayBufferView, bytes: number | undefined): number {
  const n = bytes ?? view.byteLength;
  if (n > view.byteLength) throw new RangeError(`copy of ${n} bytes exceeds the host view's ${view.byteLength} bytes`);
  return n;
}

/** The driver API with camelCase methods that check every status and return values. */
export class CudaDriver {
  private readonly fn: DriverFunctions;

  constructor(lib: ReturnType<typeof koffi.load>, readonly path: string) {
    registerCudaTypes();
    this.fn = bindAll(lib, path, DRIVER_SIGNATURES);
  }

  /** cuGetErrorName / cuGetErrorString for a CUresult. */
  describe(code: number): StatusDescription {
    const name: [string | null] = [null];
    const text: [string | null] = [null];
    this.fn.cuGetErrorName(code, name);
    this.fn.cuGetErrorString(code, text);
    return { name: name[0] ?? `CUresult ${code}`, message: text[0] ?? 'unknown CUresult' };
  }

  /** Throws CudaError (CudaOutOfMemoryError for code 2) unless code is CUDA_SUCCESS. */
  check(call: string, code: unknown, detail?: string): void {
    check('cuda', (c) => this.describe(c), call, code, detail);
  }

  private out<T>(call: string, f: (out: [T]) => unknown, initial: T, detail?: string): T {
    const box: [T] = [initial];
    this.check(call, f(box), detail);
    return box[0];
  }

  init(flags = 0): void { this.check('cuInit', this.fn.cuInit(flags)); }
  driverVersion(): number { return this.out('cuDriverGetVersion', (o) => this.fn.cuDriverGetVersion(o), 0); }
  deviceCount(): number { return this.out('cuDeviceGetCount', (o) => this.fn.cuDeviceGetCount(o), 0); }
  deviceGet(ordinal: number): CUdevice { return this.out('cuDeviceGet', (o) => this.fn.cuDeviceGet(o, ordinal), 0); }

  deviceName(dev: CUdevice): string {
    const buf = Buffer.alloc(256);
    this.check('cuDeviceGetName', this.fn.cuDeviceGetName(buf, buf.length, dev));
    const end = buf.indexOf(0);
    return buf.subarray(0, end < 0 ? buf.length : end).toString('utf8');
  }

  deviceAttribute(attribute: number, dev: CUdevice): number {
    return this.out('cuDeviceGetAttribute', (o) => this.fn.cuDeviceGetAttribute(o, attribute, dev), 0, `attribute ${attribute}`);
  }
  computeCapability(dev: CUdevice): { major: number; minor: number } {
    return {
      major: this.deviceAttribute(CU_DEVICE_ATTRIBUTE.COMPUTE_CAPABILITY_MAJOR, dev),
      minor: this.deviceAttribute(CU_DEVICE_ATTRIBUTE.COMPUTE_CAPABILITY_MINOR, dev),
    };
  }
  multiprocessorCount(dev: CUdevice): number { return this.deviceAttribute(CU_DEVICE_ATTRIBUTE.MULTIPROCESSOR_COUNT, dev); }
  deviceTotalMem(dev: CUdevice): number {
    return toNumber(this.out<unknown>('cuDeviceTotalMem_v2', (o) => this.fn.cuDeviceTotalMem(o, dev), 0));
  }

  primaryCtxRetain(dev: CUdevice): CUcontext {
    return this.out<CUcontext | null>('cuDevicePrimaryCtxRetain', (o) => this.fn.cuDevicePrimaryCtxRetain(o, dev), null) as CUcontext;
  }
  primaryCtxRelease(dev: CUdevice): void { this.check('cuDevicePrimaryCtxRelease_v2', this.fn.cuDevicePrimaryCtxRelease(dev)); }
  /** Makes `ctx` current on the calling thread (each worker thread sets its own). */
  ctxSetCurrent(ctx: CUcontext | null): void { this.check('cuCtxSetCurrent', this.fn.cuCtxSetCurrent(ctx)); }
  ctxGetCurrent(): CUcontext | null { return this.out<CUcontext | null>('cuCtxGetCurrent', (o) => this.fn.cuCtxGetCurrent(o), null); }
  ctxSynchronize(): void { this.check('cuCtxSynchronize', this.fn.cuCtxSynchronize()); }

  memAlloc(bytes: number): DevicePtr {
    return toBigInt(this.out<unknown>('cuMemAlloc_v2', (o) => this.fn.cuMemAlloc(o, bytes), 0, `${bytes} bytes`));
  }
  memFree(ptr: DevicePtr): void { this.check('cuMemFree_v2', this.fn.cuMemFree(ptr)); }
  memGetInfo(): { free: number; total: number } {
    const free: [unknown] = [0];
    const total: [unknown] = [0];
    this.check('cuMemGetInfo_v2', this.fn.cuMemGetInfo(free, total));
    return { free: toNumber(free[0]), total: toNumber(total[0]) };
  }

  /** Copies `bytes` (default: the whole view) from host to device. */
  memcpyHtoD(dst: DevicePtr, src: ArrayBufferView, bytes?: number): void {
    this.check('cuMemcpyHtoD_v2', this.fn.cuMemcpyHtoD(dst, src, byteLength(src, bytes)));
  }
  memcpyDtoH(dst: ArrayBufferView, src: DevicePtr, bytes?: number): void {
    this.check('cuMemcpyDtoH_v2', this.fn.cuMemcpyDtoH(dst, src, byteLength(dst, bytes)));
  }
  memcpyHtoDAsync(dst: DevicePtr, src: ArrayBufferView, stream: CUstream | null, bytes?: number): void {
    this.check('cuMemcpyHtoDAsync_v2', this.fn.cuMemcpyHtoDAsync(dst, src, byteLength(src, bytes), stream));
  }
  memcpyDtoHAsync(dst: ArrayBufferView, src: DevicePtr, stream: CUstream | null, bytes?: number): void {
    this.check('cuMemcpyDtoHAsync_v2', this.fn.cuMemcpyDtoHAsync(dst, src, byteLength(dst, bytes), stream));
  }
  memcpyDtoD(dst: DevicePtr, src: DevicePtr, bytes: number): void {
    this.check('cuMemcpyDtoD_v2', this.fn.cuMemcpyDtoD(dst, src, bytes));
  }
  memcpyDtoDAsync(dst: DevicePtr, src: DevicePtr, bytes: number, stream: CUstream | null): void {
    this.check('cuMemcpyDtoDAsync_v2', this.fn.cuMemcpyDtoDAsync(dst, src, bytes, stream));
  }
  /** Sets `count` bytes to `value`. */
  memsetD8(dst: DevicePtr, value: number, count: number, stream?: CUstream | null): void {
    if (stream === undefined) this.check('cuMemsetD8_v2', this.fn.cuMemsetD8(dst, value, count));
    else this.check('cuMemsetD8Async', this.fn.cuMemsetD8Async(dst, value, count, stream));
  }
  /** Sets `count` 32-bit words to `value` (e.g. the bits of a float: new Uint32Array(Float32Array.of(x).buffer)[0]). */
  memsetD32(dst: DevicePtr, value: number, count: number, stream?: CUstream | null): void {
    if (stream === undefined) this.check('cuMemsetD32_v2', this.fn.cuMemsetD32(dst, value >>> 0, count));
    else this.check('cuMemsetD32Async', this.fn.cuMemsetD32Async(dst, value >>> 0, count, stream));
  }

  /** Page-locks existing host memory (e.g. a SharedArrayBuffer's view) for truly async copies. */
  memHostRegister(view: ArrayBufferView, flags = CU_MEMHOSTREGISTER_PORTABLE): void {
    this.check('cuMemHostRegister_v2', this.fn.cuMemHostRegister(view, view.byteLength, flags), `${view.byteLength} bytes`);
  }
  memHostUnregister(view: ArrayBufferView): void { this.check('cuMemHostUnregister', this.fn.cuMemHostUnregister(view)); }
  /** Allocates page-locked host memory; `buffer` views it without a copy (valid until memFreeHost). */
  memAllocHost(bytes: number): { ptr: HostPointer; buffer: ArrayBuffer } {
    const ptr = this.out<HostPointer | null>('cuMemAllocHost_v2', (o) => this.fn.cuMemAllocHost(o, bytes), null, `${bytes} bytes`);
    if (ptr === null) throw new Error(`cuMemAllocHost_v2 succeeded but returned no pointer for ${bytes} bytes`);
    return { ptr, buffer: koffi.view(ptr, bytes) };
  }
  memFreeHost(ptr: HostPointer): void { this.check('cuMemFreeHost', this.fn.cuMemFreeHost(ptr)); }

  /** Loads a CUBIN, fatbin, or NUL-terminated PTX image into the current context. */
  moduleLoadData(image: Uint8Array): CUmodule {
    return this.out<CUmodule | null>('cuModuleLoadData', (o) => this.fn.cuModuleLoadData(o, image), null) as CUmodule;
  }
  moduleUnload(mod: CUmodule): void { this.check('cuModuleUnload', this.fn.cuModuleUnload(mod)); }
  moduleGetFunction(mod: CUmodule, name: string): CUfunction {
    return this.out<CUfunction | null>('cuModuleGetFunction', (o) => this.fn.cuModuleGetFunction(o, mod, name), null, name) as CUfunction;
  }

  /** Enqueues a kernel; `args` are packed with packKernelParams (order = the kernel's parameters). */
  launchKernel(f: CUfunction, grid: Dim3, block: Dim3, args: readonly KernelArg[], options: LaunchOptions = {}): void {
    const [gx, gy, gz] = dim3(grid);
    const [bx, by, bz] = dim3(block);
    const params = packKernelParams(args);
    const code = this.fn.cuLaunchKernel(f, gx, gy, gz, bx, by, bz, options.sharedMemBytes ?? 0, options.stream ?? null,
      args.length ? params.views : null, null);
    this.check('cuLaunchKernel', code, `grid ${gx}x${gy}x${gz}, block ${bx}x${by}x${bz}`);
  }

  streamCreate(flags = CU_STREAM_DEFAULT): CUstream {
    return this.out<CUstream | null>('cuStreamCreate', (o) => this.fn.cuStreamCreate(o, flags), null) as CUstream;
  }
  streamDestroy(stream: CUstream): void { this.check('cuStreamDestroy_v2', this.fn.cuStreamDestroy(stream)); }
  streamSynchronize(stream: CUstream | null): void { this.check('cuStreamSynchronize', this.fn.cuStreamSynchronize(stream)); }
  /**
   * Waits on one of koffi's worker threads, so the event loop keeps running. That thread has
   * no current context, so this takes a created stream (the legacy default stream, null,
   * belongs to whichever context is current and cannot be named from there).
   */
  streamSynchronizeAsync(stream: CUstream): Promise<void> {
    return this.async('cuStreamSynchronize', this.fn.cuStreamSynchronize, [stream]);
  }
  streamWaitEvent(stream: CUstream | null, event: CUevent): void {
    this.check('cuStreamWaitEvent', this.fn.cuStreamWaitEvent(stream, event, 0));
  }

  /** Starts recording the work queued on `stream` into a graph instead of running it. */
  streamBeginCapture(stream: CUstream, mode = CU_STREAM_CAPTURE_MODE_RELAXED): void {
    this.check('cuStreamBeginCapture_v2', this.fn.cuStreamBeginCapture(stream, mode));
  }
  /** Ends a capture and returns the graph recorded (throws when the capture was invalidated). */
  streamEndCapture(stream: CUstream): CUgraph {
    return this.out<CUgraph | null>('cuStreamEndCapture', (o) => this.fn.cuStreamEndCapture(stream, o), null) as CUgraph;
  }
  graphInstantiate(graph: CUgraph): CUgraphExec {
    return this.out<CUgraphExec | null>('cuGraphInstantiateWithFlags', (o) => this.fn.cuGraphInstantiate(o, graph, 0), null) as CUgraphExec;
  }
  graphLaunch(exec: CUgraphExec, stream: CUstream): void { this.check('cuGraphLaunch', this.fn.cuGraphLaunch(exec, stream)); }
  graphExecDestroy(exec: CUgraphExec): void { this.check('cuGraphExecDestroy', this.fn.cuGraphExecDestroy(exec)); }
  graphDestroy(graph: CUgraph): void { this.check('cuGraphDestroy', this.fn.cuGraphDestroy(graph)); }

  eventCreate(flags = CU_EVENT_DEFAULT): CUevent {
    return this.out<CUevent | null>('cuEventCreate', (o) => this.fn.cuEventCreate(o, flags), null) as CUevent;
  }
  eventRecord(event: CUevent, stream: CUstream | null): void { this.check('cuEventRecord', this.fn.cuEventRecord(event, stream)); }
  eventSynchronize(event: CUevent): void { this.check('cuEventSynchronize', this.fn.cuEventSynchronize(event)); }
  eventSynchronizeAsync(event: CUevent): Promise<void> {
    return this.async('cuEventSynchronize', this.fn.cuEventSynchronize, [event]);
  }
  /** Milliseconds between two recorded events (neither created with CU_EVENT_DISABLE_TIMING). */
  eventElapsedTime(start: CUevent, end: CUevent): number {
    return this.out('cuEventElapsedTime', (o) => this.fn.cuEventElapsedTime(o, start, end), 0);
  }
  eventDestroy(event: CUevent): void { this.check('cuEventDestroy_v2', this.fn.cuEventDestroy(event)); }

  private async(call: string, f: KoffiFunction, args: unknown[]): Promise<void> {
    return new Promise((resolve, reject) => {
      f.async(...args, (err: unknown, code: unknown) => {
        if (err) reject(err instanceof Error ? err : new Error(String(err)));
        else {
          try {
            this.check(call, code);
            resolve();
          } catch (e) {
            reject(e);
          }
        }
      });
    });
  }
}

/** Loads libcuda (once per distinct options). Throws CudaLibraryNotFoundError when absent. */
export const loadCudaDriver: (options?: FindLibraryOptions) => CudaDriver = cachedLoader(CUDA_DRIVER_LIBRARY, ({ lib, path }) => new CudaDriver(lib, path));

export type CudaAvailability = { ok: true; deviceCount: number; driverVersion: number; path: string } | { ok: false; reason: string };

/** Whether CUDA can run here: loads the driver, cuInit(0), counts devices. Never throws. */
export function cudaAvailable(options: FindLibraryOptions = {}): CudaAvailability {
  try {
    const driver = loadCudaDriver(options);
    driver.init(0);
    const deviceCount = driver.deviceCount();
    if (deviceCount === 0) return { ok: false, reason: `${driver.path}: cuInit succeeded but there are no CUDA devices` };
    return { ok: true, deviceCount, driverVersion: driver.driverVersion(), path: driver.path };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}
