// Packs kernel arguments for cuLaunchKernel's `void **kernelParams`: an array whose i-th
// entry points at the value of the kernel's i-th parameter. The values live in one Buffer,
// each in its own 8-byte-aligned slot; `views` holds one Buffer view per slot, and koffi
// turns that JS array into the C array of pointers for the duration of the call (the
// driver copies the values when the launch is enqueued, so nothing must outlive the call).

/** One kernel argument, tagged by its C type. */
export type KernelArg =
  | { readonly ptr: bigint } // a device pointer (T*), 8 bytes
  | { readonly i32: number }
  | { readonly u32: number }
  | { readonly i64: bigint | number }
  | { readonly u64: bigint | number }
  | { readonly f32: number }
  | { readonly f64: number };

export type KernelArgKind = 'ptr' | 'i32' | 'u32' | 'i64' | 'u64' | 'f32' | 'f64';

export interface PackedKernelParams {
  /** All values, little-endian, each at offsets[i]. */
  readonly bytes: Buffer;
  readonly offsets: readonly number[];
  /** Size in bytes of each value (4 or 8). */
  readonly sizes: readonly number[];
  /** One view of `bytes` per argument: passed as the `void **kernelParams` array. */
  readonly views: readonly Buffer[];
}

const SLOT = 8;
const KINDS: readonly KernelArgKind[] = ['ptr', 'i32', 'u32', 'i64', 'u64', 'f32', 'f64'];

/** The C type tag of an argument; throws unless exactly one known tag is present. */
export function kernelArgKind(arg: KernelArg, index = 0): KernelArgKind {
  const keys = Object.keys(arg);
  const kind = KINDS.find((k) => k === keys[0]);
  if (keys.length !== 1 || kind === undefined) {
    throw new TypeError(`kernel argument ${index} must have exactly one of ${KINDS.join(', ')}; got {${keys.join(', ')}}`);
  }
  return kind;
}

function valueOf(arg: KernelArg, kind: KernelArgKind): number | bigint {
  return (arg as Record<KernelArgKind, number | bigint>)[kind];
}

function asBigInt(value: number | bigint, index: number, kind: KernelArgKind): bigint {
  if (typeof value === 'bigint') return value;
  if (!Number.isSafeInteger(value)) throw new RangeError(`kernel argument ${index} (${kind}) must be an integer, got ${value}`);
  return BigInt(value);
}

function checkRange(value: bigint, min: bigint, max: bigint, index: number, kind: KernelArgKind): bigint {
  if (value < min || value > max) throw new RangeError(`kernel argument ${index} (${kind}) out of range: ${value}`);
  return value;
}

/** Packs kernel arguments into slots; see the module comment. */
export function packKernelParams(args: readonly KernelArg[]): PackedKernelParams {
  const bytes = Buffer.alloc(Math.max(1, args.length) * SLOT);
  const offsets: number[] = [];
  const sizes: number[] = [];
  const views: Buffer[] = [];
  args.forEach((arg, i) => {
    const kind = kernelArgKind(arg, i);
    const value = valueOf(arg, kind);
    const offset = i * SLOT;
    let size = 8;
    switch (kind) {
      case 'ptr':
        if (typeof value !== 'bigint') throw new TypeError(`kernel argument ${i} (ptr) must be a bigint device address`);
        bytes.writeBigUInt64LE(checkRange(value, 0n, 2n ** 64n - 1n, i, kind), offset);
        break;
      case 'u64':
        bytes.writeBigUInt64LE(checkRange(asBigInt(value, i, kind), 0n, 2n ** 64n - 1n, i, kind), offset);
        break;
      case 'i64':
        bytes.writeBigInt64LE(checkRange(asBigInt(value, i, kind), -(2n ** 63n), 2n ** 63n - 1n, i, kind), offset);
        break;
      case 'i32':
        bytes.writeInt32LE(Number(checkRange(asBigInt(value, i, kind), -(2n ** 31n), 2n ** 31n - 1n, i, kind)), offset);
        size = 4;
        break;
      case 'u32':
        bytes.writeUInt32LE(Number(checkRange(asBigInt(value, i, kind), 0n, 2n ** 32n - 1n, i, kind)), offset);
        size = 4;
        break;
      case 'f32':
        bytes.writeFloatLE(Number(value), offset);
        size = 4;
        break;
      case 'f64':
        bytes.writeDoubleLE(Number(value), offset);
        break;
      default:
        kind satisfies never;
    }
    offsets.push(offset);
    sizes.push(size);
    views.push(bytes.subarray(offset, offset + SLOT));
  });
  return { bytes, offsets, sizes, views };
}
