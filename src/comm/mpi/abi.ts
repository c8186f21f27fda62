// The three MPI ABIs a library found at run time can have, and one handle table per ABI.
//
// MPI's C handles (MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request) and a few special values
// (MPI_IN_PLACE, MPI_STATUS_IGNORE) are macros, so their values are not in the library: a program
// compiled against one mpi.h cannot use another implementation's library. Calling MPI through
// koffi, we choose the values at run time from the library we loaded, as mpi4py does:
// - Open MPI: every predefined handle is the address of an exported global (`ompi_mpi_comm_world`,
//   `ompi_mpi_float`, `ompi_mpi_op_sum`, ...); the handle type is a pointer.
// - MPICH and its derivatives (Intel MPI, MVAPICH, Cray MPICH): handles are 32-bit integers with
//   fixed values (from MPICH's mpi.h); MPI_IN_PLACE is (void *)-1 and MPI_STATUS_IGNORE (MPI_Status *)1.
// - The MPI-5 standard ABI (libmpi_abi.so): handles are pointer-sized small integers fixed by the
//   standard (MPI_COMM_WORLD is 0x101); MPI_IN_PLACE is (void *)1 and MPI_STATUS_IGNORE is NULL.
// The values below were taken from the respective mpi.h files (Open MPI 4.1, MPICH 4.0, MPI 5.0).
import type { DType } from '../../tensor/dtype.js';

/** Which binary interface an MPI library has: it decides the handle values and their C type. */
export type MpiAbi = 'openmpi' | 'mpich' | 'standard';

/** A handle value as koffi passes it: a pointer-sized integer (Open MPI, standard ABI) or an int (MPICH). */
export type MpiHandle = number | bigint;

/** The element types of MPI datatypes the communicator uses (bool travels as uint8). */
export type MpiDatatypeName = 'float32' | 'float64' | 'int32' | 'uint8';
/** The predefined reduction operations the communicator uses (lor/land combine bool data). */
export type MpiOpName = 'sum' | 'prod' | 'max' | 'min' | 'lor' | 'land';

/** The handle values and special constants of one loaded MPI library. */
export interface MpiHandles {
  readonly abi: MpiAbi;
  /** The koffi type of MPI_Comm, MPI_Datatype and MPI_Op arguments. */
  readonly handleType: 'int' | 'intptr_t';
  readonly commWorld: MpiHandle;
  /** MPI_INFO_NULL (MPI_Comm_split_type takes an info handle). */
  readonly infoNull: MpiHandle;
  readonly datatypes: Readonly<Record<MpiDatatypeName, MpiHandle>>;
  readonly ops: Readonly<Record<MpiOpName, MpiHandle>>;
  /** MPI_IN_PLACE, as a pointer-sized integer. */
  readonly inPlace: bigint;
  /** MPI_STATUS_IGNORE, as a pointer-sized integer. */
  readonly statusIgnore: bigint;
  readonly commTypeShared: number;
  readonly threadLevels: Readonly<{ single: number; funneled: number; serialized: number; multiple: number }>;
  /** Bytes of the buffer MPI_Get_library_version writes (MPI_MAX_LIBRARY_VERSION_STRING). */
  readonly maxLibraryVersion: number;
}

/** MPICH's handles (mpich/mpi.h of MPICH 4.0; unchanged since MPICH 3 and shared by its derivatives). */
const MPICH: MpiHandles = {
  abi: 'mpich',
  handleType: 'int',
  commWorld: 0x44000000,
  infoNull: 0x1c000000,
  datatypes: { float32: 0x4c00040a, float64: 0x4c00080b, int32: 0x4c000439, uint8: 0x4c00013b },
  ops: { max: 0x58000001, min: 0x58000002, sum: 0x58000003, prod: 0x58000004, land: 0x58000005, lor: 0x58000007 },
  inPlace: -1n,
  statusIgnore: 1n,
  commTypeShared: 1,
  threadLevels: { single: 0, funneled: 1, serialized: 2, multiple: 3 },
  maxLibraryVersion: 8192,
};

/** The MPI-5 standard ABI's handles (the standard's mpi.h, Appendix A). */
const STANDARD: MpiHandles = {
  abi: 'standard',
  handleType: 'intptr_t',
  commWorld: 0x101n,
  infoNull: 0x130n,
  datatypes: { float32: 0x210n, float64: 0x214n, int32: 0x250n, uint8: 0x241n },
  ops: { sum: 0x21n, min: 0x22n, max: 0x23n, prod: 0x24n, land: 0x30n, lor: 0x31n },
  inPlace: 1n,
  statusIgnore: 0n,
  commTypeShared: 221,
  threadLevels: { single: 0, funneled: 1024, serialized: 2048, multiple: 4096 },
  maxLibraryVersion: 8192,
};

/** The exported globals whose addresses are Open MPI's handles. */
const OMPI_SYMBOLS = {
  commWorld: 'ompi_mpi_comm_world',
  infoNull: 'ompi_mpi_info_null',
  datatypes: { float32: 'ompi_mpi_float', float64: 'ompi_mpi_double', int32: 'ompi_mpi_int32_t', uint8: 'ompi_mpi_uint8_t' },
  ops: { sum: 'ompi_mpi_op_sum', prod: 'ompi_mpi_op_prod', max: 'ompi_mpi_op_max', min: 'ompi_mpi_op_min', land: 'ompi_mpi_op_land', lor: 'ompi_mpi_op_lor' },
} as const;

/** Looks up the address of an exported global of the loaded library (throws when absent). */
export type SymbolAddress = (name: string) => bigint;

/** Open MPI's handles: the addresses of its exported globals, read from the loaded library. */
export function openMpiHandles(address: SymbolAddress): MpiHandles {
  const map = <K extends string>(names: Readonly<Record<K, string>>): Record<K, bigint> =>
    Object.fromEntries(Object.entries<string>(names).map(([k, sym]) => [k, address(sym)])) as Record<K, bigint>;
  return {
    abi: 'openmpi',
    handleType: 'intptr_t',
    commWorld: address(OMPI_SYMBOLS.commWorld),
    infoNull: address(OMPI_SYMBOLS.infoNull),
    datatypes: map(OMPI_SYMBOLS.datatypes),
    ops: map(OMPI_SYMBOLS.ops),
    inPlace: 1n,
    statusIgnore: 0n,
    commTypeShared: 0, // the first member of Open MPI's enum
    threadLevels: { single: 0, funneled: 1, serialized: 2, multiple: 3 },
    maxLibraryVersion: 256,
  };
}

/** What the ABI detection looks at: which symbols the library exports, and its version string. */
export interface AbiProbe {
  /** Whether the library exports `name` (a function or a variable). */
  hasSymbol(name: string): boolean;
  /** MPI_Get_library_version's string (callable before MPI_Init), or null where the call failed. */
  libraryVersion(): string | null;
}

/**
 * Detects the ABI of a loaded MPI library, as mpi4py does: the standard ABI exports
 * MPI_Abi_get_version; Open MPI exports its handles as globals (ompi_mpi_comm_world); an MPICH
 * derivative says so in its version string (and exports MPIR_ symbols). Anything else is an error
 * naming the library and what it reported, rather than a guess that would crash in a call.
 */
export function detectAbi(path: string, probe: AbiProbe): MpiAbi {
  if (probe.hasSymbol('MPI_Abi_get_version')) return 'standard';
  if (probe.hasSymbol('ompi_mpi_comm_world')) return 'openmpi';
  const version = probe.libraryVersion() ?? '';
  if (/MPICH|MVAPICH|Intel\(R\) MPI|CRAY MPICH/i.test(version) || probe.hasSymbol('MPIR_Init_thread')) return 'mpich';
  throw new Error(
    `MPI library ${path}: unknown ABI (neither Open MPI's ompi_mpi_comm_world, the standard ABI's MPI_Abi_get_version, `
      + `nor an MPICH version string; it reports ${JSON.stringify(version.split('\n')[0] ?? '')}); set SYNK_MPI_LIB to an Open MPI or MPICH library`,
  );
}

/** The handle table of an ABI (Open MPI's is read from the library through `address`). */
export function handlesFor(abi: MpiAbi, address: SymbolAddress): MpiHandles {
  return abi === 'openmpi' ? openMpiHandles(address) : abi === 'mpich' ? MPICH : STANDARD;
}

/** The MPI datatype a buffer of `dtype` travels as (bool as uint8: MPI's logical ops accept C integer types). */
export function mpiDatatypeName(dtype: DType): MpiDatatypeName {
  switch (dtype) {
    case 'float32':
    case 'float64':
    case 'int32':
    case 'uint8':
      return dtype;
    case 'bool':
      return 'uint8';
    default:
      throw new TypeError(`MPI communicator: no MPI datatype for dtype ${String(dtype)}`);
  }
}
