// A mutable view of a Program that the rewrite passes edit in place.
import type { NDArray } from '../../tensor/ndarray.js';
import type { OpName } from '../../ops/registry.js';
import type { Program, ProgramStep, SlotInfo } from '../program.js';
import { deserializeArray, serializeArray } from '../serialize-array.js';

export interface WorkStep {
  op: OpName;
  attrs: Readonly<Record<string, unknown>>;
  inputs: number[];
  output: number;
}

export class WorkProgram {
  slots: SlotInfo[];
  inputs: number[];
  shareds: { slot: number; sharedId: string }[];
  constants = new Map<number, NDArray>();
  steps: WorkStep[];
  outputs: number[];
  updates: { sharedId: string; slot: number }[];
  /** A record of what each pass did, printed with the graph. */
  readonly log: string[] = [];

  constructor(p: Program) {
    this.slots = [...p.slots];
    this.inputs = [...p.inputs];
    this.shareds = p.shareds.map((s) => ({ ...s }));
    for (const c of p.constants) this.constants.set(c.slot, deserializeArray(c.value));
    this.steps = p.steps.map((s) => ({ op: s.op, attrs: s.attrs, inputs: [...s.inputs], output: s.output }));
    this.outputs = [...p.outputs];
    this.updates = p.updates.map((u) => ({ ...u }));
  }

  isConstant(slot: number): boolean {
    return this.constants.has(slot);
  }

  /** Makes every reader of `from` read `to` instead. */
  replaceSlot(from: number, to: number): void {
    if (from === to) return;
    for (const s of this.steps) s.inputs = s.inputs.map((i) => (i === from ? to : i));
    this.outputs = this.outputs.map((o) => (o === from ? to : o));
    for (const u of this.updates) if (u.slot === from) u.slot = to;
  }

  /** Number of readers of each slot (steps, outputs and updates). */
  useCounts(): Map<number, number> {
    const uses = new Map<number, number>();
    const bump = (i: number) => uses.set(i, (uses.get(i) ?? 0) + 1);
    for (const s of this.steps) s.inputs.forEach(bump);
    this.outputs.forEach(bump);
    this.updates.forEach((u) => bump(u.slot));
    return uses;
  }

  producerOf(): Map<number, WorkStep> {
    const m = new Map<number, WorkStep>();
    for (const s of this.steps) m.set(s.output, s);
    return m;
  }

  /** Removes steps whose results nobody reads (and constants nobody reads). */
  eliminateDeadCode(): void {
    const live = new Set<number>([...this.outputs, ...this.updates.map((u) => u.slot)]);
    const kept: WorkStep[] = [];
    for (let k = this.steps.length - 1; k >= 0; k--) {
      const s = this.steps[k]!;
      if (!live.has(s.output)) continue;
      kept.push(s);
      s.inputs.forEach((i) => live.add(i));
    }
    const removed = this.steps.length - kept.length;
    if (removed > 0) this.log.push(`dead code: removed ${removed} step(s)`);
    this.steps = kept.reverse();
    for (const slot of [...this.constants.keys()]) if (!live.has(slot)) this.constants.delete(slot);
  }

  toProgram(): Program {
    const steps: ProgramStep[] = this.steps.map((s) => ({ op: s.op, attrs: s.attrs, inputs: [...s.inputs], output: s.output }));
    return {
      slots: this.slots,
      inputs: this.inputs,
      shareds: this.shareds,
      constants: [...this.constants].map(([slot, v]) => ({ slot, value: serializeArray(v) })),
      steps,
      outputs: this.outputs,
      updates: this.updates,
    };
  }
}
