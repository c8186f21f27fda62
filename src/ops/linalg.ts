// Filled in by the linalg op family.
export const linalgOps = {};
