// The thin koffi bindings to the CUDA libraries. Importing this never loads a library:
// each load*() finds its library on first call, and cudaAvailable() never throws.
export * from './errors.js';
export * from './find-library.js';
export * from './types.js';
export * from './kernel-params.js';
export * from './driver.js';
export * from './nvrtc.js';
export * from './cublas.js';
export * from './cublaslt.js';
export * from './nccl.js';
export * from './cudnn.js';
