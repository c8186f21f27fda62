// Filled in by the shape op family.
export const shapeOps = {};
