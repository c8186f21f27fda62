// The torchvision ResNets: parameter counts and state-dict names against torchvision's, the v1.5
// stride placement, initialisation, output shapes, gradients of tiny ones against finite differences
// (float64, reference device), one data-parallel step on 2 CPU workers against a one-device oracle,
// learning on a tiny problem, safetensors round trips and bad input.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as synk from '../../src/index.js';
import { T } from '../../src/index.js';
import { NDArray } from '../../src/tensor/ndarray.js';
import * as X from '../../src/extensions/index.js';
import { splitPoints } from '../../src/parallel/split.js';
import { lowerProgram } from '../../src/devices/cuda/lower-program.js';
import { hostOps } from '../../src/devices/cuda/lowering-table.js';
import { assertAllClose, randomArray, rng } from '../helpers/allclose.js';

const REF = new T.ReferenceDevice();
const shapeOf = (v: T.SharedVariable) => [...v.getValue({ borrow: true }).shape];
const tiny = (block: X.ResNetBlockKind, options: X.ResNetOptions = {}) =>
  X.resnet({ block, layers: [1, 1, 1, 1] }, { width: 2, inChannels: 2, numClasses: 3, stem: 'small', dtype: 'float64', seed: 3, ...options });

describe('resnet: torchvision architectures', () => {
  it('parameter counts equal torchvision\'s (1000 classes): ResNet-18 11,689,512, ResNet-50 25,557,032', () => {
    const r18 = X.resnet18();
    assert.equal(r18.parameterCount(), 11_689_512);
    assert.equal(r18.params.length, 62, 'len(list(resnet18().parameters()))');
    const r50 = X.resnet50();
    assert.equal(r50.parameterCount(), 25_557_032);
    assert.equal(r50.params.length, 161, 'len(list(resnet50().parameters()))');
    // torchvision's state_dict has 320 entries for ResNet-50: these 267 and 53 num_batches_tracked.
    const sd = r50.stateDict();
    assert.equal(Object.keys(sd).length, 267);
    assert.equal(r50.states.length, 106);
    const want: Record<string, number[]> = {
      'conv1.weight': [64, 3, 7, 7], 'bn1.running_var': [64], 'layer1.0.conv1.weight': [64, 64, 1, 1], 'layer1.0.conv3.weight': [256, 64, 1, 1],
      'layer1.0.downsample.0.weight': [256, 64, 1, 1], 'layer1.0.downsample.1.running_mean': [256], 'layer2.0.conv2.weight': [128, 128, 3, 3],
      'layer3.5.bn3.bias': [1024], 'layer4.2.conv3.weight': [2048, 512, 1, 1], 'fc.weight': [1000, 2048], 'fc.bias': [1000],
    };
    for (const [name, shape] of Object.entries(want)) assert.deepEqual(shapeOf(sd[name]!), shape, name);
    assert.equal(sd['layer1.1.downsample.0.weight'], undefined, 'only the first block of a layer downsamples');
    assert.deepEqual(Object.keys(r18.stateDict()).filter((k) => k.includes('downsample.0')),
      ['layer2.0.downsample.0.weight', 'layer3.0.downsample.0.weight', 'layer4.0.downsample.0.weight']);
    assert.deepEqual(shapeOf(r18.stateDict()['fc.weight']!), [1000, 512]);
  });

  it('v1.5 strides: a bottleneck strides on its 3x3 convolution, a basic block on its first; downsample 1x1 with the same stride', () => {
    const r50 = X.resnet50({ width: 4 });
    const b = r50.layers[1]![0]!;
    assert.deepEqual(b.convs.map((c) => c.options.stride), [1, 2, 1]);
    assert.equal(b.downsample![0].options.stride, 2);
    assert.deepEqual(r50.layers.map((l) => l.length), [3, 4, 6, 3]);
    const r18 = X.resnet18({ width: 4 });
    assert.deepEqual(r18.layers[2]![0]!.convs.map((c) => c.options.stride), [2, 1]);
    assert.equal(r18.layers[0]![0]!.downsample, null, 'layer1 of ResNet-18 keeps its shape');
  });

  it('initialisation as torchvision: convolutions N(0, 2 / fan_out), batch norms gamma 1 and beta 0, fc U(±1/sqrt(fan_in))', () => {
    const net = X.resnet18({ width: 32, seed: 5 });
    const w = net.stateDict()['layer4.0.conv2.weight']!.getValue();
    assert.deepEqual([...w.shape], [256, 256, 3, 3]);
    let s = 0, q = 0;
    for (const v of w.data) { s += v; q += v * v; }
    const std = Math.sqrt(q / w.size - (s / w.size) ** 2);
    assert.ok(Math.abs(std - Math.sqrt(2 / (256 * 9))) < 0.01 * std && Math.abs(s / w.size) < 1e-3 * 3, `std ${std}`);
    for (const bn of [net.bn1, ...net.layers.flat().flatMap((b) => b.norms)]) {
      assert.ok(bn.gamma.getValue().data.every((v) => v === 1) && bn.beta.getValue().data.every((v) => v === 0));
      assert.ok(bn.runningMean.getValue().data.every((v) => v === 0) && bn.runningVar.getValue().data.every((v) => v === 1));
    }
    const bound = 1 / Math.sqrt(256);
    const fc = net.fcWeight.getValue().data;
    assert.ok(fc.every((v) => Math.abs(v) <= bound) && fc.some((v) => Math.abs(v) > 0.95 * bound));
    const zero = X.resnet50({ width: 4, zeroInitResidual: true });
    assert.ok(zero.layers.flat().every((b) => b.norms[2]!.gamma.getValue().data.every((v) => v === 0)));
    const fcOf = (seed: number) => Array.from(X.resnet18({ width: 4, seed }).fcWeight.getValue().data);
    assert.deepEqual(fcOf(1), fcOf(1));
    assert.notDeepEqual(fcOf(1), fcOf(2));
  });

  it('output shapes: 224x224 (ImageNet stem) and 28x28 / 32x32 (small stem), train and eval mode', () => {
    const x = T.tensor4('x');
    const img = X.makeImageNetLike({ rows: 1, seed: 1 });
    for (const make of [X.resnet18, X.resnet50]) {
      const net = make({ width: 4, numClasses: 7 });
      const mode = X.trainMode();
      const f = T.fn({ inputs: [x], outputs: [net.apply(x, mode), net.apply(x, X.evalMode())] });
      assert.equal(mode.updates.length, net.states.length, 'one running-mean and one running-var update per batch norm');
      const [train, evaluated] = f(img.x) as NDArray[];
      assert.deepEqual([...train!.shape], [1, 7]);
      assert.deepEqual([...evaluated!.shape], [1, 7]);
      assert.ok(evaluated!.data.every(Number.isFinite));
    }
    const small = X.resnet18({ width: 4, numClasses: 10, inChannels: 1, stem: 'small' });
    const g = T.fn({ inputs: [x], outputs: small.apply(x) });
    assert.deepEqual([...(g(NDArray.zeros([3, 1, 28, 28])) as NDArray).shape], [3, 10]);
    assert.deepEqual([...(g(NDArray.zeros([2, 1, 32, 32])) as NDArray).shape], [2, 10]);
  });
});

describe('resnet: the CUDA device (code generation, no GPU needed)', () => {
  it('a ResNet-18 training program lowers for CUDA with every step on the device (none on the host)', () => {
    const net = X.resnet18({ width: 4 });
    const x = T.tensor4('x');
    const y = T.vector('y', 'int32');
    const mode = X.trainMode();
    const loss = X.crossEntropy(net.apply(x, mode), y);
    const program = T.fn({ inputs: [x, y], outputs: [loss, ...T.grad(loss, net.params)], updates: mode.updates }).compiled.description.program;
    const ops = new Set(program.steps.map((s) => s.op));
    for (const op of ['conv2d', 'conv2dInputGrad', 'conv2dFilterGrad', 'maxPool2d', 'maxPool2dGrad', 'matmul'] as const) assert.ok(ops.has(op), op);
    const host = new Set<string>(hostOps());
    assert.deepEqual([...ops].filter((op) => host.has(op)), [], 'no step falls back to the host');
    const lowered = lowerProgram(program);
    assert.equal(lowered.runners.length, program.steps.length);
    assert.ok(lowered.units.length > 0);
  });
});

/** d cost / d shared against central differences at `per` sampled elements of every parameter (float64, reference device). */
function checkParamGrads(cost: T.Variable, shareds: readonly T.SharedVariable[], x: T.Variable, value: NDArray, per = 3): void {
  const grads = T.fn({ inputs: [x], outputs: T.grad(cost, [...shareds]), device: REF })(value) as NDArray[];
  const f = T.fn({ inputs: [x], outputs: cost, device: REF });
  const pick = rng(11);
  const eps = 1e-6;
  shareds.forEach((s, k) => {
    const v0 = s.getValue();
    for (let n = 0; n < Math.min(per, v0.size); n++) {
      const i = Math.floor(pick() * v0.size);
      const at = (d: number) => { const v = v0.copy(); v.data[i]! += d; s.setValue(v); return (f(value) as NDArray).item(); };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      s.setValue(v0);
      const analytic = grads[k]!.data[i]!;
      assert.ok(Math.abs(numeric - analytic) <= 1e-6 + 1e-4 * Math.abs(numeric), `${s.name} element ${i}: symbolic ${analytic}, finite difference ${numeric}`);
    }
  });
}

/** A fixed random projection of the logits, so every one matters. */
const project = (y: T.Variable, shape: readonly number[]) => T.sum(T.mul(y, T.constant(randomArray(shape, 9))));

describe('resnet: gradients of tiny networks against finite differences (float64)', () => {
  for (const [block, stem, size] of [['basic', 'small', 8], ['bottleneck', 'small', 8], ['basic', 'imagenet', 16]] as const) {
    it(`${block} blocks, ${stem} stem, train mode: every parameter tensor and the input`, () => {
      const net = tiny(block, { stem });
      const x = T.tensor4('x', 'float64');
      const value = randomArray([3, 2, size, size], 21, { lo: -1, hi: 1 });
      const cost = project(net.apply(x, X.trainMode()), [3, 3]);
      checkParamGrads(cost, net.params, x, value);
      const gx = T.fn({ inputs: [x], outputs: T.grad(cost, x), device: REF })(value) as NDArray;
      const f = T.fn({ inputs: [x], outputs: cost, device: REF });
      for (const i of [0, 37, 101, value.size - 1]) {
        const at = (d: number) => { const v = value.copy(); v.data[i]! += d; return (f(v) as NDArray).item(); };
        const numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
        assert.ok(Math.abs(numeric - gx.data[i]!) <= 1e-6 + 1e-4 * Math.abs(numeric), `input element ${i}: ${gx.data[i]} vs ${numeric}`);
      }
    });
  }

  it('eval mode: the gradient through batch norms on their running statistics', () => {
    const net = tiny('bottleneck');
    for (const bn of [net.bn1, ...net.layers.flat().flatMap((b) => b.norms)]) {
      bn.runningMean.setValue(randomArray([bn.features], 3, { lo: -0.5, hi: 0.5 }));
      bn.runningVar.setValue(randomArray([bn.features], 4, { lo: 0.5, hi: 2 }));
    }
    const x = T.tensor4('x', 'float64');
    checkParamGrads(project(net.apply(x, X.evalMode()), [2, 3]), net.params, x, randomArray([2, 2, 8, 8], 22), 2);
  });
});

describe('resnet: data parallel on 2 CPU workers', () => {
  const WORKERS = 2;
  before(async () => { await synk.fork({ n: WORKERS, devices: 'cpu' }); });
  after(async () => { await synk.close(); });

  const set = X.makeImages({ rows: 64, size: 8, classes: 3, seed: 5, shift: 1, noise: 0.1 });
  const rowsOf = (a: NDArray, from: number, to: number) => {
    const w = a.size / a.shape[0]!;
    return new NDArray(a.dtype, [to - from, ...a.shape.slice(1)], a.data.slice(from * w, to * w));
  };

  for (const training of [true, false]) {
    const what = training
      ? 'train mode: each rank normalises its rows (as DDP without SyncBatchNorm); params and running statistics equal the one-device mean of the halves'
      : 'eval mode (frozen batch norms): one step equals one device on the whole batch';
    it(what, async () => {
      const net = X.resnet18({ width: 4, inChannels: 1, numClasses: 3, stem: 'small', seed: 7 });
      const x = T.tensor4('x');
      const y = T.vector('y', 'int32');
      const mode = training ? X.trainMode() : X.evalMode();
      const loss = X.crossEntropy(net.apply(x, mode), y);
      // The oracle, on the controller before the step: gradients (and running-statistic updates) of each rank's rows.
      const oracle = T.fn({ inputs: [x, y], outputs: [...T.grad(loss, net.params), ...mode.updates.map(([, e]) => e)] });
      const batch = 16;
      const p = splitPoints(batch, WORKERS);
      const parts = training ? [0, 1].map((r) => [p[r]!, p[r + 1]!] as const) : [[0, batch] as const];
      const outs = parts.map(([a, b]) => oracle(rowsOf(set.x, a, b), rowsOf(set.y, a, b)) as NDArray[]);
      if (training) {
        // The oracle matters: with batch statistics, the whole batch's gradient is not the mean of the halves'.
        const whole = oracle(rowsOf(set.x, 0, batch), rowsOf(set.y, 0, batch)) as NDArray[];
        const g = whole[0]!.data, ga = outs[0]![0]!.data, gb = outs[1]![0]!.data;
        assert.ok(g.some((v, i) => Math.abs(v - (ga[i]! + gb[i]!) / 2) > 1e-3 * Math.abs(v) + 1e-5), 'per-rank statistics change the gradient');
      }
      const lr = 0.1;
      const before = [...net.params, ...net.states].map((v) => v.getValue());
      const train = X.makeTrainFunction(loss, net.params, [x, y], 'sgd', { learningRate: lr, updates: mode.updates });
      await train(rowsOf(set.x, 0, batch), rowsOf(set.y, 0, batch));
      const after = (await synk.gather([...net.params, ...net.states])) as NDArray[];
      const np = net.params.length;
      after.forEach((stacked, k) => {
        const size = stacked.size / WORKERS;
        const want = new NDArray('float32', before[k]!.shape);
        for (let i = 0; i < size; i++) {
          // Row-weighted mean over the ranks of each rank's gradient (or running-statistic update).
          const mean = () => outs.reduce((sum, o, r) => sum + o[k]!.data[i]! * (parts[r]![1] - parts[r]![0]), 0) / batch;
          want.data[i] = k < np ? before[k]!.data[i]! - lr * mean() : training ? mean() : before[k]!.data[i]!;
        }
        for (let r = 0; r < WORKERS; r++) {
          const got = new NDArray('float32', want.shape, stacked.data.slice(r * size, (r + 1) * size) as Float32Array);
          assertAllClose(got, want, { rtol: 2e-4, atol: 2e-6 }, `${k < np ? net.params[k]!.name : net.states[k - np]!.name} on rank ${r}`);
        }
      });
      if (!training) assert.equal(mode.updates.length, 0);
    });
  }

  it('learns a tiny problem: the loss falls over 20 Adam steps (batch norm in train mode)', async () => {
    const net = X.resnet18({ width: 4, inChannels: 1, numClasses: 3, stem: 'small', seed: 2 });
    const x = T.tensor4('x');
    const y = T.vector('y', 'int32');
    const mode = X.trainMode();
    const train = X.makeTrainFunction(X.crossEntropy(net.apply(x, mode), y), net.params, [x, y], 'adam', { learningRate: 0.01, updates: mode.updates });
    const xs = synk.data(set.x);
    const ys = synk.data(set.y);
    const r = new X.Rng(4);
    const losses: number[] = [];
    for (let s = 0; s < 20; s++) losses.push(await train(xs, ys, { batch: Array.from(r.permutation(64).subarray(0, 32)) }));
    const mean = (a: number[]) => a.reduce((p, v) => p + v, 0) / a.length;
    assert.ok(mean(losses.slice(-4)) < 0.6 * mean(losses.slice(0, 4)), `loss fell: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  });
});

describe('resnet: saving, loading, data and bad input', () => {
  it('save and load through safetensors with torchvision\'s names; a mismatched file changes nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'synk-resnet-'));
    try {
      const a = X.resnet18({ width: 4, numClasses: 5, seed: 1 });
      a.bn1.runningMean.setValue(NDArray.full([4], 0.25));
      const path = join(dir, 'a.safetensors');
      a.save(path, { arch: 'resnet18' });
      const read = X.loadSafetensors(path);
      assert.deepEqual(Object.keys(read.tensors), Object.keys(a.stateDict()));
      assert.deepEqual(read.metadata, { arch: 'resnet18' });
      const b = X.resnet18({ width: 4, numClasses: 5, seed: 2 });
      assert.deepEqual(b.load(path), { arch: 'resnet18' });
      const saved = a.stateDict();
      for (const [name, v] of Object.entries(b.stateDict())) assert.deepEqual(Array.from(v.getValue().data), Array.from(saved[name]!.getValue().data), name);
      const other = X.resnet18({ width: 4, numClasses: 6, seed: 3 });
      const fcBefore = Array.from(other.fcBias.getValue().data);
      const convBefore = Array.from(other.conv1.W.getValue().data);
      assert.throws(() => other.load(path), /fc\.weight has shape \(5, 32\) in the file, the variable has \(6, 32\)/);
      assert.deepEqual(Array.from(other.fcBias.getValue().data), fcBefore);
      assert.deepEqual(Array.from(other.conv1.W.getValue().data), convBefore, 'nothing changed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makeImageNetLike: shapes, seeded, normalised per channel as ImageNet pixels', () => {
    const a = X.makeImageNetLike({ rows: 4, size: 32, classes: 1000, seed: 3 });
    assert.deepEqual([...a.x.shape], [4, 3, 32, 32]);
    assert.equal(a.x.dtype, 'float32');
    assert.equal(a.y.dtype, 'int32');
    assert.ok(a.y.data.every((c) => Number.isInteger(c) && c >= 0 && c < 1000));
    assert.deepEqual(Array.from(X.makeImageNetLike({ rows: 4, size: 32, seed: 3 }).x.data), Array.from(a.x.data));
    assert.notDeepEqual(Array.from(X.makeImageNetLike({ rows: 4, size: 32, seed: 4 }).x.data.slice(0, 10)), Array.from(a.x.data.slice(0, 10)));
    [[0.485, 0.229], [0.456, 0.224], [0.406, 0.225]].forEach(([m, s], c) => {
      let sum = 0;
      for (let n = 0; n < 4; n++) for (let i = 0; i < 1024; i++) sum += a.x.data[(n * 3 + c) * 1024 + i]!;
      const want = (0.5 - m!) / s!;
      assert.ok(Math.abs(sum / 4096 - want) < 0.05 / s!, `channel ${c} mean ${sum / 4096}, want ${want}`);
    });
    assert.throws(() => X.makeImageNetLike({ rows: 0 }), /makeImageNetLike: rows must be a positive integer, got 0/);
  });

  it('bad options and inputs: clear errors naming the argument', () => {
    assert.throws(() => X.resnet18({ numClasses: 0 }), /resnet: numClasses must be a positive integer, got number 0/);
    assert.throws(() => X.resnet50({ width: 2.5 }), /resnet: width must be a positive integer, got number 2\.5/);
    assert.throws(() => X.resnet18({ stem: 'tiny' as X.ResNetStem }), /resnet: stem must be 'imagenet' or 'small', got string tiny/);
    assert.throws(() => X.resnet({ block: 'wide' as X.ResNetBlockKind, layers: [1, 1, 1, 1] }), /block must be 'basic' or 'bottleneck'/);
    const three = [1, 1, 1] as unknown as [number, number, number, number];
    assert.throws(() => X.resnet({ block: 'basic', layers: three }), /layers must list the blocks of 4 layers/);
    assert.throws(() => X.resnet18({ seed: 1, rng: new X.Rng(1) }), /give seed or rng, not both/);
    assert.throws(() => X.resnet18({ width: 4 }).apply(T.matrix('x')), /resnet: expected images \(N, 3, H, W\)/);
    assert.throws(() => X.conv2dLayer(1, 1, 1, { naming: 'keras' as X.ParamNaming }), /conv2dLayer: naming must be 'synk' or 'torch', got string keras/);
  });
});
