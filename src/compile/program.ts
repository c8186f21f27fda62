// The compiled program: a device-neutral, JSON-serialisable list of steps.
// Devices receive only this (never closures); workers rebuild functions from it.
import type { DType } from '../tensor/dtype.js';
import type { OpName } from '../ops/registry.js';

export type { FusedStep } from '../ops/fused.js';

/** One value slot of a program: an input, a constant, a shared variable's value, or a step's result. */
export interface SlotInfo {
  readonly dtype: DType;
  readonly broadcastable: readonly boolean[];
  readonly kind: 'input' | 'constant' | 'shared' | 'step';
  readonly name?: string;
}

export interface SerializedArray {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Plain numbers (NaN/Infinity kept as strings so the JSON stays valid). */
  readonly values: readonly (number | string)[];
}

/** One step: an op of the op table applied to earlier slots, writing slot `output`. */
export interface ProgramStep {
  readonly op: OpName;
  readonly attrs: Readonly<Record<string, unknown>>;
  readonly inputs: readonly number[];
  readonly output: number;
}

export interface Program {
  readonly slots: readonly SlotInfo[];
  /** Slots of the explicit inputs, in call order. */
  readonly inputs: readonly number[];
  /** Slots holding shared-variable values, passed after the inputs when running. */
  readonly shareds: readonly { readonly slot: number; readonly sharedId: string }[];
  readonly constants: readonly { readonly slot: number; readonly value: SerializedArray }[];
  /** Steps in execution order; each writes one new slot. */
  readonly steps: readonly ProgramStep[];
  readonly outputs: readonly number[];
  /** New values of shared variables, computed from the old ones. */
  readonly updates: readonly { readonly sharedId: string; readonly slot: number }[];
}

/** Everything needed to rebuild a function elsewhere: plain JSON, no code. */
export interface FunctionDescription {
  readonly format: 'synkhronos.function/1';
  readonly name?: string;
  readonly program: Program;
  readonly inputs: readonly { readonly name?: string; readonly dtype: DType; readonly broadcastable: readonly boolean[] }[];
  readonly singleOutput: boolean;
  readonly shareds: readonly {
    readonly sharedId: string;
    readonly name?: string;
    readonly dtype: DType;
    readonly broadcastable: readonly boolean[];
    readonly value?: SerializedArray;
  }[];
  readonly log: readonly string[];
}
