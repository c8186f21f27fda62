// MPI through koffi: the functions the MPI communicator calls, bound to the library found at run
// time (find-mpi.ts) with the handle values of its ABI (abi.ts).
//
// Handles travel as the ABI's C type (int for MPICH, a pointer-sized integer otherwise). Buffers
// are `void *` parameters given TypedArrays: koffi passes the address of their memory. For the
// non-blocking calls MPI keeps using that memory after the call returns, so the communicator only
// passes arrays over SharedArrayBuffers, whose memory never moves, and keeps them referenced until
// the request completes. MPI_IN_PLACE and MPI_STATUS_IGNORE are integers cast to pointers, so the
// calls that take them are bound a second time with that parameter declared as `intptr_t`.
// A request (MPI_Request: an int or a pointer) lives in an 8-byte array MPI writes and reads.
import koffi from 'koffi';
import { keepUcxMemoryHooksOff, tuneOpenMpiNonBlocking } from '../../devices/config.js';
import { type MpiAbi, type MpiHandle, type MpiHandles, detectAbi, handlesFor } from './abi.js';
import { checkWorldSize, detectLauncher, loadFirst, mpiCandidates } from './find-mpi.js';

/** Storage of one MPI_Request (large enough for every ABI's handle type). */
export type MpiRequest = BigInt64Array;
/** A buffer MPI reads or writes: a typed array, or null where MPI ignores the argument. */
export type MpiBuffer = ArrayBufferView | null;

// The koffi signatures, written with H for the handle type and B for a buffer or special pointer.
const SIGNATURES = {
  MPI_Initialized: ['int', ['int *']],
  MPI_Finalized: ['int', ['int *']],
  MPI_Init_thread: ['int', ['void *', 'void *', 'int', 'int *']],
  MPI_Finalize: ['int', []],
  MPI_Abort: ['int', ['H', 'int']],
  MPI_Comm_rank: ['int', ['H', 'int *']],
  MPI_Comm_size: ['int', ['H', 'int *']],
  MPI_Comm_split_type: ['int', ['H', 'int', 'int', 'H', 'void *']],
  MPI_Get_library_version: ['int', ['void *', 'int *']],
  MPI_Error_string: ['int', ['int', 'void *', 'int *']],
  MPI_Ibarrier: ['int', ['H', 'void *']],
  MPI_Ibcast: ['int', ['void *', 'int', 'H', 'int', 'H', 'void *']],
  MPI_Iallreduce: ['int', ['B', 'void *', 'int', 'H', 'H', 'H', 'void *']],
  MPI_Ireduce: ['int', ['B', 'void *', 'int', 'H', 'H', 'int', 'H', 'void *']],
  MPI_Iallgather: ['int', ['void *', 'int', 'H', 'void *', 'int', 'H', 'H', 'void *']],
  MPI_Iallgatherv: ['int', ['void *', 'int', 'H', 'void *', 'int *', 'int *', 'H', 'H', 'void *']],
  MPI_Igatherv: ['int', ['void *', 'int', 'H', 'void *', 'int *', 'int *', 'H', 'int', 'H', 'void *']],
  MPI_Iscatterv: ['int', ['void *', 'int *', 'int *', 'H', 'void *', 'int', 'H', 'int', 'H', 'void *']],
  MPI_Test: ['int', ['void *', 'int *', 'intptr_t']],
  MPI_Wait: ['int', ['void *', 'intptr_t']],
} as const;
type Name = keyof typeof SIGNATURES;
// koffi functions are untyped at the boundary; every call goes through the typed methods below.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...args: any[]) => number;

/** Options of loadMpi. */
export interface LoadMpiOptions {
  /** The library file to load (default: SYNK_MPI_LIB, else the usual sonames; see mpiCandidates). */
  readonly library?: string;
}

/** One loaded MPI library: its path, ABI, handle table and the bound functions. */
export class MpiLibrary {
  /** Bound functions by name; the `*InPlace` entries take MPI_IN_PLACE as an integer send buffer. */
  private readonly fn: Record<Name | 'MPI_Iallreduce_p' | 'MPI_Ireduce_p', Fn>;

  private constructor(
    /** The file that was loaded. */
    readonly path: string,
    /** Its ABI (how its handles are represented). */
    readonly abi: MpiAbi,
    /** Its predefined handles and constants. */
    readonly handles: MpiHandles,
    lib: ReturnType<typeof koffi.load>,
  ) {
    const H = handles.handleType;
    const bind = (name: Name, b: string): Fn => {
      const [ret, args] = SIGNATURES[name];
      return lib.func(name, ret, args.map((a) => (a === 'H' ? H : a === 'B' ? b : a))) as Fn;
    };
    const entries = (Object.keys(SIGNATURES) as Name[]).map((n) => [n, bind(n, 'void *')] as const);
    this.fn = {
      ...(Object.fromEntries(entries) as Record<Name, Fn>),
      MPI_Iallreduce_p: bind('MPI_Iallreduce', 'intptr_t'),
      MPI_Ireduce_p: bind('MPI_Ireduce', 'intptr_t'),
    };
  }

  /** Finds and loads the MPI library (see mpiCandidates) and detects its ABI; MPI is not initialized yet. */
  static load(options: LoadMpiOptions = {}): MpiLibrary {
    keepUcxMemoryHooksOff();
    tuneOpenMpiNonBlocking();
    const candidates = mpiCandidates(options.library);
    const explicit = options.library !== undefined || candidates.length === 1;
    // global: Open MPI's plugins (dlopened by libmpi) resolve their symbols against libmpi itself.
    const { path, lib } = loadFirst(candidates, (p) => koffi.load(p, { global: true }), explicit);
    const hasSymbol = (name: string): boolean => {
      try {
        lib.symbol(name, 'void');
        return true;
      } catch {
        return false;
      }
    };
    const versionOf = (): string | null => {
      try {
        const buf = new Uint8Array(8192);
        const len = new Int32Array(1);
        if (lib.func('MPI_Get_library_version', 'int', ['void *', 'int *'])(buf, len) !== 0) return null;
        return new TextDecoder().decode(buf.subarray(0, Math.max(0, Math.min(len[0]!, buf.length)))).replace(/\0.*$/s, '');
      } catch {
        return null;
      }
    };
    const abi = detectAbi(path, { hasSymbol, libraryVersion: versionOf });
    const handles = handlesFor(abi, (name) => koffi.address(lib.symbol(name, 'void')));
    return new MpiLibrary(path, abi, handles, lib);
  }

  /** Throws an Error naming the call and MPI's own message unless `code` is MPI_SUCCESS. */
  check(code: number, what: string): void {
    if (code === 0) return;
    throw new Error(`${what} failed with MPI error ${code}: ${this.errorString(code)} (${this.path})`);
  }

  /** MPI_Error_string of a code (the code itself where that fails). */
  errorString(code: number): string {
    const buf = new Uint8Array(1024);
    const len = new Int32Array(1);
    if (this.fn.MPI_Error_string(code, buf, len) !== 0) return `code ${code}`;
    return new TextDecoder().decode(buf.subarray(0, Math.min(len[0]!, buf.length)));
  }

  /** The library's version string (MPI_Get_library_version; callable before MPI_Init). */
  libraryVersion(): string {
    const buf = new Uint8Array(Math.max(this.handles.maxLibraryVersion, 256));
    const len = new Int32Array(1);
    this.check(this.fn.MPI_Get_library_version(buf, len), 'MPI_Get_library_version');
    return new TextDecoder().decode(buf.subarray(0, Math.min(len[0]!, buf.length))).replace(/\0.*$/s, '').trim();
  }

  /** MPI_Initialized. */
  initialized(): boolean {
    return this.flag('MPI_Initialized');
  }

  /** MPI_Finalized. */
  finalized(): boolean {
    return this.flag('MPI_Finalized');
  }

  /**
   * MPI_Init_thread with the thread level `required` (default funneled: only the main thread
   * calls MPI), unless MPI is initialized already; then checks the world size against the
   * launcher's and, on a mismatch, finalizes and throws the error naming both.
   */
  init(required: 'single' | 'funneled' | 'serialized' | 'multiple' = 'funneled'): void {
    if (!this.initialized()) {
      const provided = new Int32Array(1);
      this.check(this.fn.MPI_Init_thread(null, null, this.handles.threadLevels[required], provided), 'MPI_Init_thread');
    }
    const size = this.commSize(this.handles.commWorld);
    try {
      checkWorldSize(size, this.path, this.abi, detectLauncher());
    } catch (e) {
      this.fn.MPI_Finalize();
      throw e;
    }
  }

  /** MPI_Finalize (no-op when already finalized). */
  finalize(): void {
    if (!this.finalized()) this.check(this.fn.MPI_Finalize(), 'MPI_Finalize');
  }

  /** MPI_Abort: the launcher ends every process of the job; does not return. */
  abort(comm: MpiHandle, code: number): never {
    this.fn.MPI_Abort(comm, code);
    process.exit(code); // reached only if the library returned from MPI_Abort
  }

  /** MPI_Comm_rank. */
  commRank(comm: MpiHandle): number {
    return this.outInt('MPI_Comm_rank', comm);
  }

  /** MPI_Comm_size. */
  commSize(comm: MpiHandle): number {
    return this.outInt('MPI_Comm_size', comm);
  }

  /** MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, key, MPI_INFO_NULL): the ranks of this node. */
  splitShared(comm: MpiHandle, key: number): MpiHandle {
    const out = new BigInt64Array(1);
    this.check(this.fn.MPI_Comm_split_type(comm, this.handles.commTypeShared, key, this.handles.infoNull, out), 'MPI_Comm_split_type');
    return this.handles.handleType === 'int' ? Number(BigInt.asIntN(32, out[0]!)) : out[0]!;
  }

  /** MPI_Ibarrier. */
  ibarrier(comm: MpiHandle, req: MpiRequest): void {
    this.check(this.fn.MPI_Ibarrier(comm, req), 'MPI_Ibarrier');
  }

  /** MPI_Ibcast. */
  ibcast(buf: MpiBuffer, count: number, type: MpiHandle, root: number, comm: MpiHandle, req: MpiRequest): void {
    this.check(this.fn.MPI_Ibcast(buf, count, type, root, comm, req), 'MPI_Ibcast');
  }

  /** MPI_Iallreduce; a null `send` means MPI_IN_PLACE (the result replaces `recv`). */
  iallreduce(send: MpiBuffer, recv: MpiBuffer, count: number, type: MpiHandle, op: MpiHandle, comm: MpiHandle, req: MpiRequest): void {
    const code = send === null
      ? this.fn.MPI_Iallreduce_p(this.handles.inPlace, recv, count, type, op, comm, req)
      : this.fn.MPI_Iallreduce(send, recv, count, type, op, comm, req);
    this.check(code, 'MPI_Iallreduce');
  }

  /** MPI_Ireduce; a null `send` means MPI_IN_PLACE (valid on the root only). */
  ireduce(send: MpiBuffer, recv: MpiBuffer, count: number, type: MpiHandle, op: MpiHandle, root: number, comm: MpiHandle, req: MpiRequest): void {
    const code = send === null
      ? this.fn.MPI_Ireduce_p(this.handles.inPlace, recv, count, type, op, root, comm, req)
      : this.fn.MPI_Ireduce(send, recv, count, type, op, root, comm, req);
    this.check(code, 'MPI_Ireduce');
  }

  /** MPI_Iallgather of `count` elements per rank. */
  iallgather(send: MpiBuffer, count: number, type: MpiHandle, recv: MpiBuffer, comm: MpiHandle, req: MpiRequest): void {
    this.check(this.fn.MPI_Iallgather(send, count, type, recv, count, type, comm, req), 'MPI_Iallgather');
  }

  /** MPI_Iallgatherv (counts and displacements in elements). */
  iallgatherv(
    send: MpiBuffer, count: number, recv: MpiBuffer, counts: Int32Array, displs: Int32Array, type: MpiHandle, comm: MpiHandle, req: MpiRequest,
  ): void {
    this.check(this.fn.MPI_Iallgatherv(send, count, type, recv, counts, displs, type, comm, req), 'MPI_Iallgatherv');
  }

  /** MPI_Igatherv (counts and displacements are read on the root only). */
  igatherv(
    send: MpiBuffer, count: number, recv: MpiBuffer, counts: Int32Array, displs: Int32Array, type: MpiHandle, root: number, comm: MpiHandle, req: MpiRequest,
  ): void {
    this.check(this.fn.MPI_Igatherv(send, count, type, recv, counts, displs, type, root, comm, req), 'MPI_Igatherv');
  }

  /** MPI_Iscatterv (the send side is read on the root only). */
  iscatterv(
    send: MpiBuffer, counts: Int32Array, displs: Int32Array, recv: MpiBuffer, count: number, type: MpiHandle, root: number, comm: MpiHandle, req: MpiRequest,
  ): void {
    this.check(this.fn.MPI_Iscatterv(send, counts, displs, type, recv, count, type, root, comm, req), 'MPI_Iscatterv');
  }

  /** MPI_Test: true once the request has completed (MPI then frees it). */
  test(req: MpiRequest, flag: Int32Array): boolean {
    this.check(this.fn.MPI_Test(req, flag, this.handles.statusIgnore), 'MPI_Test');
    return flag[0] !== 0;
  }

  /** MPI_Wait: blocks the calling thread until the request completes. */
  wait(req: MpiRequest): void {
    this.check(this.fn.MPI_Wait(req, this.handles.statusIgnore), 'MPI_Wait');
  }

  private flag(name: 'MPI_Initialized' | 'MPI_Finalized'): boolean {
    const out = new Int32Array(1);
    this.check(this.fn[name](out), name);
    return out[0] !== 0;
  }

  private outInt(name: 'MPI_Comm_rank' | 'MPI_Comm_size', comm: MpiHandle): number {
    const out = new Int32Array(1);
    this.check(this.fn[name](comm, out), name);
    return out[0]!;
  }
}
