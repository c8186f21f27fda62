// A ResNet-style block for the CUDA storage tests: conv - batch norm - relu (h) - 2x2 max pool (p) -
// conv - batch norm + the residual p - relu (r), on symbolic inputs x, w1, w2, gamma, beta.
import * as T from '../../src/tensor.js';
import { batchNormTrain } from '../../src/extensions/layers.js';

export function resnetStyleBlock(): { inputs: T.Variable[]; h: T.Variable; r: T.Variable } {
  const x = T.tensor4('x');
  const [w1, w2] = [T.tensor4('w1'), T.tensor4('w2')];
  const [gamma, beta] = [T.vector('gamma'), T.vector('beta')];
  const h = T.relu(batchNormTrain(T.conv2d(x, w1, { padding: 1 }), gamma, beta).y);
  const p = T.maxPool2d(h, { kernel: 2, stride: 2 });
  const r = T.relu(T.add(batchNormTrain(T.conv2d(p, w2, { padding: 1 }), gamma, beta).y, p));
  return { inputs: [x, w1, w2, gamma, beta], h, r };
}
