// Symbolic variables: graph nodes are plain data (op name, JSON attributes, inputs), never closures.
import { inspect } from 'node:util';
import type { DType } from './dtype.js';
import { NDArray, shapeToString, describe } from './ndarray.js';
import { TensorType } from './type.js';
import { conformValue } from './conform.js';
import { arrayToString } from './format-array.js';

export type Attrs = Readonly<Record<string, unknown>>;

/** The application of an op that produced a variable. */
export interface Owner {
  readonly op: string;
  readonly attrs: Attrs;
  readonly inputs: readonly Variable[];
}

let nextVariableId = 0;

/**
 * A node of the symbolic graph: an input made by `T.matrix()` and friends, or the result of an op. It has a static
 * {@link TensorType} (dtype and broadcastable pattern) but no value; {@link fn} compiles graphs of them into functions.
 * Every op is also a method (`x.dot(w).tanh().mean(0)`), `x.T` transposes and `x.shape[i]` is a symbolic dimension.
 */
export class Variable {
  readonly id: number;
  readonly type: TensorType;
  readonly owner: Owner | null;
  name: string | undefined;

  constructor(type: TensorType, owner: Owner | null = null, name?: string) {
    this.id = nextVariableId++;
    this.type = type;
    this.owner = owner;
    this.name = name;
  }

  get dtype(): DType {
    return this.type.dtype;
  }

  get ndim(): number {
    return this.type.ndim;
  }

  get broadcastable(): readonly boolean[] {
    return this.type.broadcastable;
  }

  /** A short label for error messages and printed graphs. */
  label(): string {
    return this.name !== undefined ? `${this.name}: ${this.type}` : String(this.type);
  }

  /** e.g. `Variable(x: float32 matrix)`, or `Variable(float32 matrix, output of add)` for a computed one. */
  toString(): string {
    return `Variable(${this.label()}${this.owner ? `, output of ${this.owner.op}` : ''})`;
  }

  /** console.log and util.inspect print the name and type rather than the graph behind them. */
  [inspect.custom](): string {
    return this.toString();
  }
}

/** A constant's value is printed when it is this small; otherwise its shape. */
const CONSTANT_ELEMENTS_SHOWN = 10;

export class Constant extends Variable {
  readonly value: NDArray;

  constructor(value: NDArray, name?: string) {
    super(new TensorType(value.dtype, value.shape.map((d) => d === 1)), null, name);
    this.value = value;
  }

  /** e.g. `Constant(float32 vector, value [1., 2.])` or `Constant(float32 matrix, shape (100, 50))`. */
  override toString(): string {
    const v = this.value;
    const shown = v.size <= CONSTANT_ELEMENTS_SHOWN ? `value ${arrayToString(v, { lineWidth: Infinity })}` : `shape ${shapeToString(v.shape)}`;
    return `Constant(${this.label()}, ${shown})`;
  }
}

let nextSharedId = 0;
const sharedPrefix = Math.random().toString(36).slice(2, 8);

/** Removes this thread's random prefix from a generated shared-variable id ("k3x9q2-7" gives "-7"), so ids compare across processes. */
export function portableSharedId(id: string): string {
  return id.startsWith(`${sharedPrefix}-`) ? id.slice(sharedPrefix.length) : id;
}

/**
 * The shared variables of this thread by id, for rebuilding functions from descriptions. Held
 * weakly: a shared variable nothing uses any more is collected with its value. One made with an
 * explicit sharedId mirrors a variable owned by another thread (a worker's copy of a controller's
 * parameter, found later by id alone), so it is held until the thread ends.
 */
const sharedRegistry = new Map<string, WeakRef<SharedVariable>>();
const mirroredShareds = new Map<string, SharedVariable>();
const forgetCollected = new FinalizationRegistry<string>((sharedId) => {
  // The id may have been taken again by a newer variable since; only a dead entry goes.
  if (sharedRegistry.get(sharedId)?.deref() === undefined) sharedRegistry.delete(sharedId);
});

function registerShared(s: SharedVariable, mirror: boolean): void {
  if (mirror) {
    sharedRegistry.delete(s.sharedId);
    mirroredShareds.set(s.sharedId, s);
  } else {
    mirroredShareds.delete(s.sharedId);
    sharedRegistry.set(s.sharedId, new WeakRef(s));
    forgetCollected.register(s, s.sharedId);
  }
}

/** Options of {@link shared}. */
export interface SharedOptions {
  name?: string;
  /** Axes that always have size 1 (Theano's broadcastable); default: none. */
  broadcastable?: readonly boolean[];
  /**
   * Identity across threads; assigned automatically. Given explicitly, the variable is taken as a
   * copy of one owned by another thread and stays registered (findShared) for this thread's life.
   */
  sharedId?: string;
}

/**
 * A variable with a persistent value, read by compiled functions and changed by their updates.
 * Its value may also live on a device; `storage` tracks which copy is current.
 */
export class SharedVariable extends Variable {
  readonly sharedId: string;
  private hostValue: NDArray;
  /** Device-resident copies, kept by compiled functions; `hostStale` says the host copy is out of date. @internal */
  readonly deviceCopies = new Map<object, { value: unknown; sync(): NDArray; release(): void }>();
  private hostStale = false;
  /** Bumped on every change of value, so the data-parallel runtime knows when rank 0 needs a copy. */
  version = 0;

  constructor(value: NDArray, options: SharedOptions = {}) {
    const broadcastable = options.broadcastable ?? new Array<boolean>(value.ndim).fill(false);
    if (broadcastable.length !== value.ndim) {
      throw new TypeError(`shared: broadcastable has ${broadcastable.length} entries, value has ndim ${value.ndim}`);
    }
    broadcastable.forEach((b, i) => {
      if (b && value.shape[i] !== 1) throw new TypeError(`shared: axis ${i} is marked broadcastable but has size ${value.shape[i]}`);
    });
    super(new TensorType(value.dtype, broadcastable), null, options.name);
    this.hostValue = value;
    this.sharedId = options.sharedId ?? `${sharedPrefix}-${nextSharedId++}`;
    registerShared(this, options.sharedId !== undefined);
  }

  /** e.g. `SharedVariable(W: float32 matrix, shape (784, 100))`. */
  override toString(): string {
    return `SharedVariable(${this.label()}, shape ${shapeToString(this.currentShape())})`;
  }

  /** The current value's shape, read without copying a device-resident value to the host. */
  private currentShape(): readonly number[] {
    if (this.hostStale) {
      for (const copy of this.deviceCopies.values()) {
        const value = copy.value;
        if (typeof value === 'object' && value !== null && 'shape' in value && Array.isArray(value.shape)) return value.shape as number[];
      }
    }
    return this.hostValue.shape;
  }

  /** The current value (a copy unless `borrow` is set; a borrowed value must not be modified). */
  getValue(options: { borrow?: boolean } = {}): NDArray {
    if (this.hostStale) this.syncFromDevice();
    return options.borrow ? this.hostValue : this.hostValue.copy();
  }

  /**
   * Replaces the value. The dtype may be up-cast into the variable's dtype; ndim and broadcastable
   * axes are enforced. On error the value is unchanged.
   */
  setValue(value: unknown, options: { borrow?: boolean; forceCast?: boolean } = {}): void {
    const what = `setValue of shared variable ${this.name ?? this.sharedId}`;
    const given = conformValue(value, this.dtype, { what, ...(options.forceCast === true ? { forceCast: true } : {}) });
    if (given.ndim !== this.ndim) {
      throw new TypeError(`${what}: expected ndim ${this.ndim}, got shape ${shapeToString(given.shape)} (ndim ${given.ndim})`);
    }
    this.broadcastable.forEach((b, i) => {
      if (b && given.shape[i] !== 1) throw new TypeError(`${what}: axis ${i} is broadcastable and must have size 1, got ${given.shape[i]}`);
    });
    // conformValue wraps a typed value of the right dtype without copying; keep a private copy unless borrowed.
    const source = typeof value === 'object' && value !== null && 'data' in value ? (value as { data: unknown }).data : value;
    const stored = options.borrow || given.data !== source ? given : given.copy();
    this.dropDeviceCopies();
    this.hostValue = stored;
    this.hostStale = false;
    this.version++;
  }

  /** Called by a device-backed function after it wrote a new value on the device. */
  markDeviceCurrent(owner: object, copy: { value: unknown; sync(): NDArray; release(): void }): void {
    for (const [key, other] of this.deviceCopies) if (key !== owner) { other.release(); this.deviceCopies.delete(key); }
    this.deviceCopies.set(owner, copy);
    this.hostStale = true;
  }

  /**
   * Makes a value computed on a device the current one (a GPU function's update): the host copy
   * is refreshed from it only when read, and every other copy is dropped.
   */
  assignOnDevice(owner: object, copy: { value: unknown; sync(): NDArray; release(): void }): void {
    // A collective may hand back the very array it was given: that one stays alive.
    for (const other of this.deviceCopies.values()) if (other.value !== copy.value) other.release();
    this.deviceCopies.clear();
    this.deviceCopies.set(owner, copy);
    this.hostStale = true;
    this.version++;
  }

  /** Sets the host value from a computation (used by host devices; no checks, no copy). */
  assignComputed(value: NDArray): void {
    this.dropDeviceCopies();
    this.hostValue = value;
    this.hostStale = false;
    this.version++;
  }

  /** Forgets every device copy and keeps the host value as it is (a device copy that was lost). */
  discardDeviceCopies(): void {
    this.dropDeviceCopies();
    this.hostStale = false;
  }

  private syncFromDevice(): void {
    for (const copy of this.deviceCopies.values()) {
      this.hostValue = copy.sync();
      break;
    }
    this.hostStale = false;
  }

  private dropDeviceCopies(): void {
    for (const copy of this.deviceCopies.values()) copy.release();
    this.deviceCopies.clear();
  }
}

/** Finds a live shared variable of this thread by its id (used when rebuilding functions in workers). */
export function findShared(sharedId: string): SharedVariable | undefined {
  const mirror = mirroredShareds.get(sharedId);
  if (mirror) return mirror;
  const ref = sharedRegistry.get(sharedId);
  const found = ref?.deref();
  if (ref && !found) sharedRegistry.delete(sharedId);
  return found;
}

/**
 * Wraps a number, nested array, typed array or NDArray as a constant. A plain number is weakly typed
 * (as in JAX): next to a variable of dtype `like` it takes that dtype when it fits (an integer next to
 * an int32, any number next to a float), otherwise floatX.
 */
export function asVariable(value: unknown, what = 'argument', like?: DType): Variable {
  if (value instanceof Variable) return value;
  if (typeof value === 'boolean') return new Constant(NDArray.from(value, { what }));
  if (typeof value === 'number') {
    let dtype: DType = 'float32';
    if (like === 'float64' || like === 'float32') dtype = like;
    else if ((like === 'int32' || like === 'uint8') && Number.isInteger(value)) dtype = like === 'uint8' && value >= 0 && value < 256 ? 'uint8' : 'int32';
    else if (like === 'bool' && Number.isInteger(value)) dtype = 'int32';
    return new Constant(NDArray.from(value, { what, dtype }));
  }
  if (value instanceof NDArray || Array.isArray(value) || ArrayBuffer.isView(value)) return new Constant(NDArray.from(value, { what }));
  throw new TypeError(`${what}: expected a symbolic variable, a number or an array, got ${describe(value)}`);
}
