// The reduce ops of the collectives, for the layers above devices/. The table lives in
// devices/reduce-ops.ts, below the device communicators that use it too (the CUDA device's NCCL).
export * from '../devices/reduce-ops.js';
