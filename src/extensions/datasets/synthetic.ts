// Generated, learnable data sets for quick tests and demos: Gaussian class blobs (rows of
// features) and MNIST-shaped images (each class a template of smooth blobs, randomly shifted and
// noised). Deterministic for a seed.
import { NDArray } from '../../tensor/ndarray.js';
import { Rng } from '../init.js';
import type { LabelledSet } from './mnist.js';

function positive(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${v}`);
  return v;
}

/** Options of {@link makeBlobs}: the number of rows, features and classes, the seed and how far apart the classes are. */
export interface BlobsOptions {
  rows: number;
  features: number;
  classes: number;
  seed?: number;
  /** Distance scale between class centres (default 3): larger is easier. */
  separation?: number;
}

/** Rows x = centre[y] + N(0, 1), centres drawn once from N(0, separation² / features). */
export function makeBlobs(options: BlobsOptions): LabelledSet {
  const rows = positive('makeBlobs: rows', options.rows);
  const f = positive('makeBlobs: features', options.features);
  const k = positive('makeBlobs: classes', options.classes);
  const r = new Rng(options.seed ?? 0);
  const sep = (options.separation ?? 3) / Math.sqrt(f);
  const centres = Array.from({ length: k * f }, () => sep * r.normal() * Math.sqrt(f));
  const x = new NDArray('float32', [rows, f]);
  const y = new NDArray('int32', [rows]);
  for (let i = 0; i < rows; i++) {
    const c = r.int(k);
    y.data[i] = c;
    for (let j = 0; j < f; j++) x.data[i * f + j] = centres[c * f + j]! + r.normal();
  }
  return { x, y };
}

/** Options of {@link makeImages}. */
export interface ImagesOptions {
  rows: number;
  classes?: number;
  /** Side of the square images (default 28). */
  size?: number;
  seed?: number;
  /** Standard deviation of the pixel noise (default 0.2). */
  noise?: number;
  /** Largest random shift in pixels (default 2). */
  shift?: number;
}

/** MNIST-shaped images (rows, 1, size, size) in [0, 1] with int32 classes. */
export function makeImages(options: ImagesOptions): LabelledSet {
  const rows = positive('makeImages: rows', options.rows);
  const k = positive('makeImages: classes', options.classes ?? 10);
  const s = positive('makeImages: size', options.size ?? 28);
  const noise = options.noise ?? 0.2;
  const maxShift = options.shift ?? 2;
  const r = new Rng(options.seed ?? 0);
  // Each class: 4 Gaussian bumps at random places (the same for every image of the class).
  const templates = Array.from({ length: k }, () => {
    const t = new Float32Array(s * s);
    for (let b = 0; b < 4; b++) {
      const cy = r.uniform(0.2, 0.8) * s,
        cx = r.uniform(0.2, 0.8) * s,
        w = r.uniform(0.06, 0.14) * s;
      for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) t[i * s + j]! += Math.exp(-((i - cy) ** 2 + (j - cx) ** 2) / (2 * w * w));
    }
    return t;
  });
  const x = new NDArray('float32', [rows, 1, s, s]);
  const y = new NDArray('int32', [rows]);
  for (let n = 0; n < rows; n++) {
    const c = r.int(k);
    y.data[n] = c;
    const dy = r.int(2 * maxShift + 1) - maxShift,
      dx = r.int(2 * maxShift + 1) - maxShift;
    const t = templates[c]!;
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) {
        const si = i - dy,
          sj = j - dx;
        const v = si >= 0 && si < s && sj >= 0 && sj < s ? t[si * s + sj]! : 0;
        x.data[n * s * s + i * s + j] = Math.min(1, Math.max(0, v + noise * r.normal()));
      }
    }
  }
  return { x, y };
}

/** Rows [start, stop) of a labelled set (copies). */
export function sliceSet(set: LabelledSet, start: number, stop: number): LabelledSet {
  const rowsOf = (a: NDArray) => {
    const rowSize = a.shape.slice(1).reduce((p, d) => p * d, 1);
    return new NDArray(a.dtype, [stop - start, ...a.shape.slice(1)], a.data.slice(start * rowSize, stop * rowSize));
  };
  if (!(Number.isInteger(start) && Number.isInteger(stop) && start >= 0 && start <= stop && stop <= set.x.shape[0]!))
    throw new RangeError(`sliceSet: rows ${start}..${stop} are outside 0..${set.x.shape[0]}`);
  return { x: rowsOf(set.x), y: rowsOf(set.y) };
}

/** Options of {@link makeImageNetLike}. */
export interface ImageNetLikeOptions {
  rows: number;
  /** Default 1000. */
  classes?: number;
  /** Side of the square images (default 224). */
  size?: number;
  /** Default 3. */
  channels?: number;
  seed?: number;
}

// torchvision's Normalize for ImageNet: per-channel mean and standard deviation of the pixels in [0, 1].
const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/**
 * Generated data shaped as a normalised ImageNet batch, for throughput: images (rows, channels, size, size) float32 of
 * uniform pixels in [0, 1) normalised with ImageNet's channel means and deviations (as torchvision's transforms leave
 * them), and uniform int32 classes. Nothing to learn; the arithmetic of a step does not depend on the values.
 * Deterministic for a seed.
 */
export function makeImageNetLike(options: ImageNetLikeOptions): LabelledSet {
  const rows = positive('makeImageNetLike: rows', options.rows);
  const k = positive('makeImageNetLike: classes', options.classes ?? 1000);
  const s = positive('makeImageNetLike: size', options.size ?? 224);
  const ch = positive('makeImageNetLike: channels', options.channels ?? 3);
  if (rows * ch * s * s > 2 ** 31) throw new RangeError(`makeImageNetLike: ${rows} images of ${ch}x${s}x${s} exceed 2^31 elements; generate fewer rows`);
  const r = new Rng(options.seed ?? 0);
  const x = new NDArray('float32', [rows, ch, s, s]);
  const plane = s * s;
  for (let n = 0; n < rows; n++) {
    for (let c = 0; c < ch; c++) {
      const mean = IMAGENET_MEAN[c % 3]!, std = IMAGENET_STD[c % 3]!;
      const base = (n * ch + c) * plane;
      for (let i = 0; i < plane; i++) x.data[base + i] = (r.next() - mean) / std;
    }
  }
  const y = new NDArray('int32', [rows]);
  for (let n = 0; n < rows; n++) y.data[n] = r.int(k);
  return { x, y };
}
