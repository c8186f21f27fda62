// How the CUDA device runs every op of the table: typed over OpName, so an op added to the table
// without an entry here fails to compile. 'host' marks the explicit fallback (reference perform on
// downloaded inputs); everything else runs on the GPU.
import type { OpName } from '../../ops/registry.js';
import { lowerElementwise } from './lower/elementwise.js';
import { lowerReduce } from './lower/reduce.js';
import {
  lowerAlloc, lowerArange, lowerBroadcastLike, lowerDimshuffle, lowerFillLike, lowerRebroadcast, lowerReshape, lowerShapeI, lowerSumToLike,
} from './lower/layout.js';
import { lowerConcatenate, lowerIncSubtensor, lowerScatterRowwise, lowerSubtensor, lowerTake, lowerTakeRowwise } from './lower/indexing.js';
import { lowerMatmul, lowerSoftmax } from './lower/linalg-nn.js';
import { hostFallback } from './lower/host.js';
import { lowerAdvance, lowerDraw } from './lower/random.js';
import { lowerOneHot, lowerRepeat, lowerTile } from './lower/shape.js';
import { lowerConv2dFilterGradStep, lowerConv2dInputGradStep, lowerConv2dStep } from './lower/conv-bf16.js';
import { lowerAvgPool2d, lowerAvgPool2dGrad, lowerMaxPool2d, lowerMaxPool2dGrad, lowerMaxPool2dGradGrad } from './lower/pool.js';
import { lowerIncTake } from './lower/scatter.js';
import { lowerBnGradInput, lowerBnGradStats, lowerBnStats, lowerBnTrain } from './lower/batchnorm.js';
import type { Lowering } from './lower/types.js';

export type CudaRule = Lowering | 'host';

const ew = lowerElementwise;
const rd = lowerReduce;

export const CUDA_LOWERINGS: { readonly [K in OpName]: CudaRule } = {
  neg: ew, abs: ew, sign: ew, exp: ew, expm1: ew, log: ew, log1p: ew, sqrt: ew, square: ew, reciprocal: ew,
  sin: ew, cos: ew, tanh: ew, sigmoid: ew, softplus: ew, relu: ew, erf: ew, floor: ew, ceil: ew, round: ew, not: ew,
  add: ew, sub: ew, mul: ew, div: ew, intDiv: ew, mod: ew, pow: ew, maximum: ew, minimum: ew,
  eq: ew, neq: ew, lt: ew, le: ew, gt: ew, ge: ew, and: ew, or: ew, xor: ew, where: ew, clip: ew, cast: ew, fused: ew,
  sum: rd, prod: rd, mean: rd, max: rd, min: rd, all: rd, any: rd, argmax: rd, argmin: rd, var: rd, logsumexp: rd,
  shapeI: lowerShapeI,
  sumToLike: lowerSumToLike,
  broadcastLike: lowerBroadcastLike,
  fillLike: lowerFillLike,
  dimshuffle: lowerDimshuffle,
  reshape: lowerReshape,
  rebroadcast: lowerRebroadcast,
  scalarFromNumber: 'host',
  concatenate: lowerConcatenate,
  alloc: lowerAlloc,
  arange: lowerArange,
  oneHot: lowerOneHot,
  repeat: lowerRepeat,
  tile: lowerTile,
  subtensor: lowerSubtensor,
  incSubtensor: lowerIncSubtensor,
  take: lowerTake,
  incTake: lowerIncTake,
  matmul: lowerMatmul,
  softmax: lowerSoftmax,
  logSoftmax: lowerSoftmax,
  takeRowwise: lowerTakeRowwise,
  scatterRowwise: lowerScatterRowwise,
  conv2d: lowerConv2dStep,
  conv2dInputGrad: lowerConv2dInputGradStep,
  conv2dFilterGrad: lowerConv2dFilterGradStep,
  maxPool2d: lowerMaxPool2d,
  maxPool2dGrad: lowerMaxPool2dGrad,
  maxPool2dGradGrad: lowerMaxPool2dGradGrad,
  avgPool2d: lowerAvgPool2d,
  avgPool2dGrad: lowerAvgPool2dGrad,
  bnStats: lowerBnStats,
  bnTrain: lowerBnTrain,
  bnGradStats: lowerBnGradStats,
  bnGradInput: lowerBnGradInput,
  randomUniform: lowerDraw,
  randomNormal: lowerDraw,
  randomBernoulli: lowerDraw,
  randomAdvance: lowerAdvance,
};

/** The ops that run through the host fallback. */
export function hostOps(): OpName[] {
  return (Object.keys(CUDA_LOWERINGS) as OpName[]).filter((k) => CUDA_LOWERINGS[k] === 'host');
}

export function loweringOf(op: OpName): Lowering {
  // A program is typed by op name, but one read from outside may still carry another string.
  const rule = Object.prototype.hasOwnProperty.call(CUDA_LOWERINGS, op) ? CUDA_LOWERINGS[op] : undefined;
  if (rule === undefined) throw new Error(`cuda: no lowering for op '${op}'`);
  return rule === 'host' ? hostFallback : rule;
}
