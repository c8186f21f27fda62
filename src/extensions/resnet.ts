// The torchvision ResNets (He et al. 2015, torchvision's "v1.5": a bottleneck strides on its 3x3
// convolution, not on its first 1x1), built from the layers of layers.ts, with torchvision's names,
// shapes and initialisation, so the parameter count equals torchvision's and a state dict saved as
// safetensors (without the integer num_batches_tracked buffers) loads into either.
//
//   stem  conv 7x7/2 (64), bn, relu, max pool 3x3/2 pad 1      ('small': conv 3x3/1, bn, relu)
//   layer1..layer4  blocks of width 64, 128, 256, 512 (stride 1, 2, 2, 2 on each layer's first block)
//   head  mean over H and W, fc (512·expansion -> numClasses)
import { NDArray, describe } from '../tensor/ndarray.js';
import type { DType } from '../tensor/dtype.js';
import { SharedVariable, Variable } from '../tensor/variable.js';
import * as B from '../build/build.js';
import { matmul } from '../build/build-linalg.js';
import { maxPool2d } from '../build/build-nn.js';
import { Rng, heNormalFanOut } from './init.js';
import { batchNorm, conv2dLayer, evalMode, type BatchNorm, type Conv2dLayer, type Mode, type Module } from './layers.js';
import { loadParams, saveParams } from './safetensors.js';

/** A residual block kind: 'basic' (two 3x3 convolutions, ResNet-18/34) or 'bottleneck' (1x1, 3x3, 1x1 with expansion 4, ResNet-50/101/152). */
export type ResNetBlockKind = 'basic' | 'bottleneck';

/** The stem: 'imagenet' (7x7 stride-2 convolution and a 3x3 stride-2 max pool, for 224x224) or 'small' (one 3x3 stride-1 convolution, for 32x32 or 28x28). */
export type ResNetStem = 'imagenet' | 'small';

/** Options of {@link resnet18}, {@link resnet50} and the others; every one has a default. */
export interface ResNetOptions {
  /** Classes of the final fully connected layer (default 1000). */
  numClasses?: number;
  /** Channels of the input images (default 3). */
  inChannels?: number;
  /**
   * Channels of the stem and of layer1's blocks (default 64, torchvision's); layer2..4 have 2, 4 and 8 times as many. A small
   * width makes a small network of the same shape for tests. (Not torchvision's `width_per_group`: this scales every layer.)
   */
  width?: number;
  /** Default 'imagenet' (see {@link ResNetStem}). */
  stem?: ResNetStem;
  /** Start the last batch norm of every block at gamma 0, so each block starts as the identity (torchvision's zero_init_residual; default false). */
  zeroInitResidual?: boolean;
  /** Batch-norm running-statistics momentum (default 0.1) and epsilon (default 1e-5), as torch.nn.BatchNorm2d. */
  momentum?: number;
  epsilon?: number;
  /** Parameter dtype (default float32; float64 for gradient checks). */
  dtype?: DType;
  /** Seed of a fresh generator for the initial weights (default 0), or a generator. */
  seed?: number;
  rng?: Rng;
}

/** A network's architecture: its block kind and the number of blocks in each of the four layers. */
export interface ResNetArchitecture {
  block: ResNetBlockKind;
  layers: readonly [number, number, number, number];
}

/** torchvision's depths. */
export const RESNET_ARCHITECTURES = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  resnet152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
} as const satisfies Record<string, ResNetArchitecture>;

const EXPANSION: Record<ResNetBlockKind, number> = { basic: 1, bottleneck: 4 };

interface Ctx {
  rng: Rng;
  dtype: DType;
  momentum: number;
  epsilon: number;
}

const conv = (c: Ctx, name: string, cin: number, cout: number, k: number, stride = 1) =>
  conv2dLayer(cin, cout, k, {
    name, naming: 'torch', bias: false, stride, padding: (k - 1) / 2, init: heNormalFanOut, rng: c.rng.fork(), dtype: c.dtype,
  });
const norm = (c: Ctx, name: string, features: number) =>
  batchNorm(features, { name, naming: 'torch', momentum: c.momentum, epsilon: c.epsilon, dtype: c.dtype });

/**
 * One residual block, torchvision's BasicBlock or Bottleneck: relu(main(x) + shortcut(x)), the shortcut being the
 * identity or `downsample` (1x1 convolution with the block's stride, then batch norm) when the shape changes.
 */
export class ResNetBlock implements Module {
  /** The convolutions and batch norms of the main path in order (conv1, bn1, conv2, bn2[, conv3, bn3]). */
  readonly convs: readonly Conv2dLayer[];
  readonly norms: readonly BatchNorm[];
  readonly downsample: readonly [Conv2dLayer, BatchNorm] | null;
  readonly outChannels: number;
  constructor(
    readonly kind: ResNetBlockKind,
    readonly name: string,
    inChannels: number,
    planes: number,
    readonly stride: number,
    c: Ctx,
  ) {
    this.outChannels = planes * EXPANSION[kind];
    // torchvision: BasicBlock strides its first 3x3; Bottleneck strides its 3x3 (the second convolution).
    const shapes: [number, number, number, number][] =
      kind === 'basic'
        ? [[inChannels, planes, 3, stride], [planes, planes, 3, 1]]
        : [[inChannels, planes, 1, 1], [planes, planes, 3, stride], [planes, this.outChannels, 1, 1]];
    const convs: Conv2dLayer[] = [];
    const norms: BatchNorm[] = [];
    shapes.forEach(([cin, cout, k, s], i) => {
      convs.push(conv(c, `${name}.conv${i + 1}`, cin, cout, k, s));
      norms.push(norm(c, `${name}.bn${i + 1}`, cout));
    });
    this.convs = convs;
    this.norms = norms;
    this.downsample =
      stride !== 1 || inChannels !== this.outChannels
        ? [conv(c, `${name}.downsample.0`, inChannels, this.outChannels, 1, stride), norm(c, `${name}.downsample.1`, this.outChannels)]
        : null;
  }
  /** Parameters in torchvision's order (main path, then downsample). */
  get params(): SharedVariable[] {
    return this.modules().flatMap((m) => m.params);
  }
  get states(): SharedVariable[] {
    return this.modules().flatMap((m) => m.states);
  }
  /** Every layer with state, in torchvision's state-dict order. */
  modules(): Module[] {
    return [...this.convs.flatMap((cv, i) => [cv, this.norms[i]!]), ...(this.downsample ?? [])];
  }
  apply(x: Variable, mode: Mode = evalMode()): Variable {
    let h = x;
    this.convs.forEach((cv, i) => {
      h = this.norms[i]!.apply(cv.apply(h), mode);
      if (i < this.convs.length - 1) h = B.relu(h);
    });
    const shortcut = this.downsample ? this.downsample[1].apply(this.downsample[0].apply(x), mode) : x;
    return B.relu(B.add(h, shortcut));
  }
}

function positiveInt(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${describe(v)}`);
  return v;
}

/**
 * A torchvision ResNet (made by {@link resnet18}, {@link resnet50}, ... or {@link resnet}): NCHW images in, logits out.
 * Its parameters and running statistics carry torchvision's state-dict names (`conv1.weight`, `layer1.0.bn1.running_mean`,
 * `layer2.0.downsample.0.weight`, `fc.weight` of shape (numClasses, features), ...).
 */
export class ResNet implements Module {
  readonly conv1: Conv2dLayer;
  readonly bn1: BatchNorm;
  /** layer1..layer4: the blocks of each. */
  readonly layers: readonly (readonly ResNetBlock[])[];
  /** fc.weight (numClasses, features) as torch.nn.Linear stores it, and fc.bias. */
  readonly fcWeight: SharedVariable;
  readonly fcBias: SharedVariable;
  readonly numClasses: number;
  readonly inChannels: number;
  readonly stem: ResNetStem;
  constructor(
    readonly architecture: ResNetArchitecture,
    options: ResNetOptions = {},
  ) {
    if (typeof options !== 'object' || options === null) throw new TypeError(`resnet: options must be an object, got ${describe(options)}`);
    const { block } = architecture;
    if (block !== 'basic' && block !== 'bottleneck') throw new TypeError(`resnet: block must be 'basic' or 'bottleneck', got ${describe(block)}`);
    if (!Array.isArray(architecture.layers) || architecture.layers.length !== 4)
      throw new TypeError(`resnet: layers must list the blocks of 4 layers, got ${describe(architecture.layers)}`);
    architecture.layers.forEach((n, i) => positiveInt(`resnet: layers[${i}]`, n));
    this.numClasses = positiveInt('resnet: numClasses', options.numClasses ?? 1000);
    this.inChannels = positiveInt('resnet: inChannels', options.inChannels ?? 3);
    const width = positiveInt('resnet: width', options.width ?? 64);
    this.stem = options.stem ?? 'imagenet';
    if (this.stem !== 'imagenet' && this.stem !== 'small') throw new TypeError(`resnet: stem must be 'imagenet' or 'small', got ${describe(this.stem)}`);
    if (options.seed !== undefined && options.rng !== undefined) throw new TypeError('resnet: give seed or rng, not both');
    const c: Ctx = {
      rng: options.rng ?? new Rng(options.seed ?? 0), dtype: options.dtype ?? 'float32', momentum: options.momentum ?? 0.1, epsilon: options.epsilon ?? 1e-5,
    };

    this.conv1 = this.stem === 'imagenet'
      ? conv2dLayer(this.inChannels, width, 7, {
        name: 'conv1', naming: 'torch', bias: false, stride: 2, padding: 3, init: heNormalFanOut, rng: c.rng.fork(), dtype: c.dtype,
      })
      : conv(c, 'conv1', this.inChannels, width, 3);
    this.bn1 = norm(c, 'bn1', width);
    let channels = width;
    this.layers = architecture.layers.map((blocks, li) => {
      const planes = width * 2 ** li;
      return Array.from({ length: blocks }, (_, bi) => {
        const b = new ResNetBlock(block, `layer${li + 1}.${bi}`, channels, planes, bi === 0 && li > 0 ? 2 : 1, c);
        channels = b.outChannels;
        return b;
      });
    });
    if (options.zeroInitResidual) {
      for (const b of this.layers.flat()) {
        const last = b.norms[b.norms.length - 1]!;
        last.gamma.setValue(NDArray.full([last.features], 0, c.dtype));
      }
    }
    // torch.nn.Linear's initialisation: weight and bias U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    const bound = 1 / Math.sqrt(channels);
    const r = c.rng.fork();
    const uniform = (shape: number[]) => {
      const a = new NDArray(c.dtype, shape);
      for (let i = 0; i < a.size; i++) a.data[i] = r.uniform(-bound, bound);
      return a;
    };
    this.fcWeight = new SharedVariable(uniform([this.numClasses, channels]), { name: 'fc.weight' });
    this.fcBias = new SharedVariable(uniform([this.numClasses]), { name: 'fc.bias' });
  }

  /** Features entering the fc layer (512 for basic blocks, 2048 for bottlenecks, at width 64). */
  get features(): number {
    return this.fcWeight.getValue({ borrow: true }).shape[1]!;
  }
  private modules(): Module[] {
    return [this.conv1, this.bn1, ...this.layers.flat()];
  }
  /** Trainable parameters in torchvision's `parameters()` order. */
  get params(): SharedVariable[] {
    return [...this.modules().flatMap((m) => m.params), this.fcWeight, this.fcBias];
  }
  /** Batch-norm running statistics (running_mean, running_var of each). */
  get states(): SharedVariable[] {
    return this.modules().flatMap((m) => m.states);
  }
  /** Parameters and running statistics by torchvision's state-dict names, in its order (without num_batches_tracked). */
  stateDict(): Record<string, SharedVariable> {
    const out: Record<string, SharedVariable> = {};
    const add = (m: Module) => {
      for (const v of [...m.params, ...m.states]) out[v.name!] = v;
    };
    add(this.conv1);
    add(this.bn1);
    for (const b of this.layers.flat()) b.modules().forEach(add);
    out['fc.weight'] = this.fcWeight;
    out['fc.bias'] = this.fcBias;
    return out;
  }
  /** Number of trainable weights (torchvision's `sum(p.numel() for p in model.parameters())`). */
  parameterCount(): number {
    return this.params.reduce((s, p) => s + p.getValue({ borrow: true }).size, 0);
  }
  /** Writes the state dict to a safetensors file (workers' values reach the controller through synk.gather first if they trained). */
  save(path: string, metadata: Readonly<Record<string, string>> = {}): void {
    saveParams(path, this.stateDict(), metadata);
  }
  /**
   * Reads the state dict from a safetensors file (every name with its shape and dtype, or nothing changes); `strict: false`
   * ignores tensors of the file that the network does not have.
   */
  load(path: string, options: { strict?: boolean } = {}): Record<string, string> {
    return loadParams(path, this.stateDict(), options);
  }
  apply(x: Variable, mode: Mode = evalMode()): Variable {
    if (!(x instanceof Variable) || x.ndim !== 4) throw new TypeError(`resnet: expected images (N, ${this.inChannels}, H, W), got ${describe(x)}`);
    let h = B.relu(this.bn1.apply(this.conv1.apply(x), mode));
    if (this.stem === 'imagenet') h = maxPool2d(h, { kernel: 3, stride: 2, padding: 1 });
    for (const b of this.layers.flat()) h = b.apply(h, mode);
    const pooled = B.mean(h, [2, 3]);
    return B.add(matmul(pooled, this.fcWeight, { transB: true }), this.fcBias);
  }
}

/** A ResNet of any architecture (see {@link RESNET_ARCHITECTURES}). */
export const resnet = (architecture: ResNetArchitecture, options?: ResNetOptions): ResNet => new ResNet(architecture, options);

/**
 * torchvision's ResNet-18: basic blocks [2, 2, 2, 2], 11,689,512 parameters at 1000 classes.
 *
 * @example
 * ```ts
 * import * as T from 'synkhronos/tensor';
 * import * as X from 'synkhronos/extensions';
 * const net = X.resnet18({ numClasses: 10, inChannels: 1, stem: 'small', width: 8 }); // a small one for 28x28 images
 * const x = T.tensor4('x');
 * const f = T.fn({ inputs: [x], outputs: net.apply(x, X.evalMode()) });
 * console.log((f(T.NDArray.zeros([2, 1, 28, 28])) as T.NDArray).shape); // [2, 10]
 * ```
 */
export const resnet18 = (options?: ResNetOptions): ResNet => new ResNet(RESNET_ARCHITECTURES.resnet18, options);
/** torchvision's ResNet-34: basic blocks [3, 4, 6, 3], 21,797,672 parameters at 1000 classes. */
export const resnet34 = (options?: ResNetOptions): ResNet => new ResNet(RESNET_ARCHITECTURES.resnet34, options);
/** torchvision's ResNet-50 (v1.5): bottlenecks [3, 4, 6, 3], 25,557,032 parameters at 1000 classes. */
export const resnet50 = (options?: ResNetOptions): ResNet => new ResNet(RESNET_ARCHITECTURES.resnet50, options);
/** torchvision's ResNet-101: bottlenecks [3, 4, 23, 3], 44,549,160 parameters at 1000 classes. */
export const resnet101 = (options?: ResNetOptions): ResNet => new ResNet(RESNET_ARCHITECTURES.resnet101, options);
/** torchvision's ResNet-152: bottlenecks [3, 8, 36, 3], 60,192,808 parameters at 1000 classes. */
export const resnet152 = (options?: ResNetOptions): ResNet => new ResNet(RESNET_ARCHITECTURES.resnet152, options);
