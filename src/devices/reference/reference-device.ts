// The reference device: each step runs its op's plain `perform`. Obviously correct, slow, and able
// to compute every float in float64, which makes it the oracle for every other device.
import { NDArray } from '../../tensor/ndarray.js';
import { TensorType } from '../../tensor/type.js';
import type { DType } from '../../tensor/dtype.js';
import { getOpDef } from '../../ops/apply.js';
import { OpRuntimeError } from '../../ops/op.js';
import type { Program } from '../../compile/program.js';
import { deserializeArray } from '../../compile/serialize-array.js';
import { StepError } from '../../compile/step-error.js';
import type { Device, DeviceArray, Executable } from '../device.js';
import { promoteFloats } from './promote.js';
import { detachResults, storageOf, type Storage } from './detach-results.js';

export interface ReferenceOptions {
  /** Compute every float32 value in float64 (results come back as float64). */
  float64?: boolean;
}

/**
 * The reference device: a plain JavaScript interpreter of the program, written for clarity, used as the oracle that the
 * fast devices are tested against and as the default device of {@link fn}. `{ float64: true }` computes in float64.
 */
export class ReferenceDevice implements Device {
  readonly kind = 'reference' as const;
  readonly name: string;
  private readonly float64: boolean;

  constructor(options: ReferenceOptions = {}) {
    this.float64 = options.float64 ?? false;
    this.name = this.float64 ? 'reference (float64)' : 'reference';
  }

  upload(value: NDArray): DeviceArray {
    return value;
  }

  download(value: DeviceArray): NDArray {
    if (!(value instanceof NDArray)) throw new TypeError('reference device: not a host array');
    return value;
  }

  free(): void {}

  /**
   * Every policy: under 'bf16' the marked products round their operands to bfloat16 and sum in float64
   * (the ops' reference implementations), which is the oracle the other devices are tested against.
   */
  supportsPrecision(): true {
    return true;
  }

  compile(source: Program): Executable {
    const program = this.float64 ? promoteFloats(source) : source;
    const constants = program.constants.map((c) => ({ slot: c.slot, value: deserializeArray(c.value) }));
    const types = program.slots.map((s) => new TensorType(s.dtype, s.broadcastable));
    const argSlots = [...program.inputs, ...program.shareds.map((s) => s.slot)];
    const constantStorage = constants.map((c) => storageOf(c.value));
    return {
      run(args: readonly DeviceArray[]): DeviceArray[] {
        const values: (NDArray | undefined)[] = new Array(program.slots.length);
        for (const c of constants) values[c.slot] = c.value;
        argSlots.forEach((slot, i) => {
          const a = args[i];
          if (!(a instanceof NDArray)) throw new TypeError(`reference device: argument ${i} is not a host array`);
          const want: DType = program.slots[slot]!.dtype;
          values[slot] = a.dtype === want ? a : a.astype(want);
        });
        program.steps.forEach((step, k) => {
          const def = getOpDef(step.op);
          try {
            values[step.output] = def.perform(step.inputs.map((i) => values[i]!), step.attrs, types[step.output]!);
          } catch (e) {
            throw new StepError(k, e instanceof OpRuntimeError || e instanceof Error ? e : new Error(String(e)));
          }
        });
        const results = [...program.outputs, ...program.updates.map((u) => u.slot)].map((slot) => values[slot]!);
        // Outputs may be (views of) arguments, constants or each other: those the caller gets as copies.
        const foreign = new Set<Storage>(constantStorage);
        for (const a of args) foreign.add(storageOf(a as NDArray));
        detachResults(results, foreign);
        return results;
      },
    };
  }

  synchronize(): void {}
  close(): void {}
}

/** A new {@link ReferenceDevice}. */
export function referenceDevice(options: ReferenceOptions = {}): ReferenceDevice {
  return new ReferenceDevice(options);
}
