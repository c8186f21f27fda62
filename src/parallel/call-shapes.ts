// The shape check of a data-parallel call on the controller, before any work is sent: the shapes
// rank 0 will see (axis 0 of scattered inputs and sliceable shareds unknown: rows are split and
// selected on the workers) pushed through the program's shape rules (compile/shape-check.ts).
// Shared values are read only where the controller holds the current one; rank 0's value is the
// controller's, so an error found from it is one rank 0 would raise.
import { shapeToString } from '../tensor/ndarray.js';
import { findShared, type SharedVariable } from '../tensor/variable.js';
import { hostShapeOf, shapeChecker, type PartialShape } from '../compile/shape-check.js';
import type { Program } from '../compile/program.js';
import type { Data } from './data.js';

export interface CallShapeInfo {
  readonly nScattered: number;
  readonly sliceable: readonly SharedVariable[];
  readonly inputLabel: (i: number) => string;
}

/** A check to run on each call's inputs (throws a ShapeError naming the op and the user's shapes). */
export function callShapeChecker(program: Program, info: CallShapeInfo): (datas: readonly Data[], outputSubset?: readonly number[]) => void {
  const check = shapeChecker(program);
  return (datas, outputSubset) => {
    const given = datas.map((d) => d.shape);
    const inputs: PartialShape[] = given.map((shape, i) => (i < info.nScattered ? [null, ...shape.slice(1)] : shape));
    for (const s of info.sliceable) {
      const shape = hostShapeOf(s);
      inputs.push(shape ? [null, ...shape.slice(1)] : s.broadcastable.map(() => null));
    }
    check(inputs, (id) => hostShapeOf(findShared(id)), (i) => (i < datas.length
      ? `${info.inputLabel(i)} has shape ${shapeToString(given[i]!)}${i < info.nScattered ? ', its rows split over the workers' : ''}`
      : `sliceable shared ${info.sliceable[i - datas.length]?.name ?? ''} (rows chosen by batchS)`), outputSubset);
  };
}
