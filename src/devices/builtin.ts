// Registers the devices this build ships (the reference device is always there).
export async function registerBuiltinDevices(): Promise<void> {
  // Fast CPU and CUDA devices register here once they exist in this build.
}
