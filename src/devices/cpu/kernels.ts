// The CPU device's kernel table, typed over the op union: adding an op to src/ops/registry.ts
// without an entry here fails `tsc`. An entry is a fast kernel or `reference` (the op's perform).
import type { OpAttrs, OpName } from '../../ops/registry.js';
import { reference, type Kernel } from './kernel-types.js';
import { broadcastLikeKernel, elementwiseKernel, fusedKernel } from './elementwise-kernel.js';
import { reduceKernel, sumToLikeKernel } from './reductions.js';
import { logSoftmaxKernel, softmaxKernel } from './softmax.js';
import { matmulKernel } from './matmul.js';
import { withBf16Operands } from './bf16-operands.js';
import { conv2dFilterGradKernel, conv2dInputGradKernel, conv2dKernel } from './conv.js';
import { concatenateKernel, fillLikeKernel, scatterRowwiseKernel, shapeIKernel, subtensorKernel, takeRowwiseKernel } from './structural-kernels.js';
import { bnGradInputKernel, bnGradStatsKernel, bnStatsKernel, bnTrainKernel } from './bn-kernels.js';
import { avgPool2dGradKernel, avgPool2dKernel, maxPool2dGradGradKernel, maxPool2dGradKernel, maxPool2dKernel } from './pooling.js';

const ew = elementwiseKernel;

export const KERNELS: { readonly [N in OpName]: Kernel<OpAttrs<N>> } = {
  // elementwise: generated loops (one step), see fused-codegen.ts
  neg: ew, abs: ew, sign: ew, exp: ew, expm1: ew, log: ew, log1p: ew, sqrt: ew, square: ew, reciprocal: ew,
  sin: ew, cos: ew, tanh: ew, sigmoid: ew, softplus: ew, relu: ew, erf: ew, floor: ew, ceil: ew, round: ew, not: ew,
  add: ew, sub: ew, mul: ew, div: ew, intDiv: ew, mod: ew, pow: ew, maximum: ew, minimum: ew,
  eq: ew, neq: ew, lt: ew, le: ew, gt: ew, ge: ew, and: ew, or: ew, xor: ew, where: ew, clip: ew, cast: ew,
  fused: fusedKernel,

  // reductions
  sum: reduceKernel('sum'),
  prod: reduceKernel('prod'),
  mean: reduceKernel('mean'),
  max: reduceKernel('max'),
  min: reduceKernel('min'),
  all: reference,
  any: reference,
  argmax: reference,
  argmin: reference,
  var: reference,
  logsumexp: reference,

  // structure and shape
  shapeI: shapeIKernel,
  sumToLike: sumToLikeKernel,
  broadcastLike: broadcastLikeKernel,
  fillLike: fillLikeKernel,
  dimshuffle: reference,
  reshape: reference,
  rebroadcast: reference,
  scalarFromNumber: reference,
  concatenate: concatenateKernel,
  alloc: reference,
  arange: reference,
  oneHot: reference,
  repeat: reference,
  tile: reference,

  // indexing
  subtensor: subtensorKernel,
  incSubtensor: reference,
  take: reference,
  incTake: reference,

  // linear algebra and networks
  matmul: withBf16Operands(matmulKernel),
  softmax: softmaxKernel,
  logSoftmax: logSoftmaxKernel,
  takeRowwise: takeRowwiseKernel,
  scatterRowwise: scatterRowwiseKernel,
  conv2d: withBf16Operands(conv2dKernel),
  conv2dInputGrad: withBf16Operands(conv2dInputGradKernel),
  conv2dFilterGrad: withBf16Operands(conv2dFilterGradKernel),
  maxPool2d: maxPool2dKernel,
  maxPool2dGrad: maxPool2dGradKernel,
  maxPool2dGradGrad: maxPool2dGradGradKernel,
  avgPool2d: avgPool2dKernel,
  avgPool2dGrad: avgPool2dGradKernel,
  bnStats: bnStatsKernel,
  bnTrain: bnTrainKernel,
  bnGradStats: bnGradStatsKernel,
  bnGradInput: bnGradInputKernel,

  // random draws
  randomUniform: reference,
  randomNormal: reference,
  randomBernoulli: reference,
  randomAdvance: reference,
};
