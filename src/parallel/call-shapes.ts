// The shape check of a data-parallel call on the controller, before any work is sent: the shapes
// rank 0 will see (axis 0 of scattered inputs and sliceable shareds unknown: rows are split and
// selected on the workers) pushed through the program's shape rules (compile/shape-check.ts).
import { shapeToString } from '../tensor/ndarray.js';
import { findShared, type SharedVariable } from '../tensor/variable.js';
import { checkShapes, type PartialShape } from '../compile/shape-check.js';
import type { Program } from '../compile/program.js';
import type { Data } from './data.js';

/** Checked shape signatures kept per function, so a training loop pays for the check once. */
const MAX_CACHED = 64;

/**
 * The controller's shape of a shared variable's value, when the controller holds the current value
 * (no device or rank-0 copy is newer): reading it then costs nothing. Rank 0's value is the
 * controller's, so an error found from it is an error rank 0 would raise.
 */
function currentShape(s: SharedVariable | undefined): readonly number[] | undefined {
  if (!s || s.deviceCopies.size > 0) return undefined;
  return s.getValue({ borrow: true }).shape;
}

export interface CallShapeInfo {
  readonly nScattered: number;
  readonly sliceable: readonly SharedVariable[];
  readonly inputLabel: (i: number) => string;
}

/** A check to run on each call's inputs (throws a ShapeError naming the op and the user's shapes). */
export function callShapeChecker(program: Program, info: CallShapeInfo): (datas: readonly Data[]) => void {
  const checked = new Set<string>();
  return (datas) => {
    const inputs: PartialShape[] = datas.map((d, i) => (i < info.nScattered ? [null, ...d.shape.slice(1)] : d.shape));
    info.sliceable.forEach((s) => {
      const shape = currentShape(s);
      inputs.push(shape ? [null, ...shape.slice(1)] : s.broadcastable.map(() => null));
    });
    const sharedShapes = new Map(program.shareds.map((p) => [p.sharedId, currentShape(findShared(p.sharedId))] as const));
    const key = `${inputs.map((s) => s.join(',')).join(';')}|${[...sharedShapes.values()].map((s) => s?.join(',') ?? '?').join(';')}`;
    if (checked.has(key)) return;
    checkShapes(program, {
      inputs,
      sharedShape: (id) => sharedShapes.get(id),
      describeInput: (i) => (i < datas.length
        ? `${info.inputLabel(i)} has shape ${shapeToString(datas[i]!.shape)}${i < info.nScattered ? ', its rows split over the workers' : ''}`
        : `sliceable shared ${info.sliceable[i - datas.length]?.name ?? ''} (rows chosen by batchS)`),
    });
    if (checked.size >= MAX_CACHED) checked.clear();
    checked.add(key);
  };
}
