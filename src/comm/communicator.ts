// The Communicator interface, its options and errors, for the layers above devices/. They live in
// devices/communicator.ts because a device may bring its own communicator (the CUDA device's NCCL).
export * from '../devices/communicator.js';
