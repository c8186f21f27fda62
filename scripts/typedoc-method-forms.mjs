// TypeDoc plugin: two kinds of declarations that repeat a documented function get that function's comment, so each
// is documented once and the copies agree. A copy whose function has no comment stays undocumented (and
// `npm run docs` reports it).
// - The method forms of the tensor functions (`x.add(y)` is `T.add(x, y)`, `x.astype(d)` is `T.cast(x, d)`), declared
//   compactly in src/build/methods.ts and src/build/build-shape.ts.
// - The entries of lookup tables such as `initializers = { glorotUniform, ... }` and `optimizers = { sgd, ... }`.
import { Converter, ReflectionKind } from 'typedoc';

const CLASSES = new Set(['Variable', 'Constant', 'SharedVariable']);
const TENSOR_MODULE = 'synkhronos/tensor';
const FUNCTION_OF_METHOD = { astype: 'cast', var: 'variance' };

/** The comment of a function or of a variable holding one (`export const exp = un('exp')`). */
function commentOf(reflection) {
  return reflection.comment ?? reflection.signatures?.[0]?.comment ?? reflection.type?.declaration?.signatures?.[0]?.comment;
}

function moduleOf(reflection) {
  let r = reflection.parent;
  while (r && !r.kindOf(ReflectionKind.Module)) r = r.parent;
  return r;
}

/** A copy of `fn`'s comment led by "`lead` {@link name}". */
function copiedComment(fn, lead, name, tail) {
  const source = commentOf(fn);
  if (!source) return undefined;
  const comment = source.clone();
  comment.summary = [
    { kind: 'text', text: lead },
    { kind: 'inline-tag', tag: '@link', text: name, target: fn },
    { kind: 'text', text: tail },
    ...comment.summary,
  ];
  return comment;
}

/** Functions (and variables holding them) of each module, by name. */
function functionsByModule(project) {
  const byModule = new Map();
  for (const reflection of project.getReflectionsByKind(ReflectionKind.Function | ReflectionKind.Variable)) {
    const parent = reflection.parent;
    if (!parent?.kindOf(ReflectionKind.Module)) continue;
    if (!byModule.has(parent.name)) byModule.set(parent.name, new Map());
    byModule.get(parent.name).set(reflection.name, reflection);
  }
  return byModule;
}

export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const project = context.project;
    const functions = functionsByModule(project);
    const tensorFunctions = functions.get(TENSOR_MODULE) ?? new Map();
    for (const method of project.getReflectionsByKind(ReflectionKind.Method)) {
      if (!CLASSES.has(method.parent?.name)) continue;
      const name = FUNCTION_OF_METHOD[method.name] ?? method.name;
      const fn = tensorFunctions.get(name);
      for (const signature of fn ? method.signatures ?? [] : []) {
        signature.comment ??= copiedComment(fn, 'Method form of ', `T.${name}`, ' with this variable as its first argument. ');
      }
    }
    for (const property of project.getReflectionsByKind(ReflectionKind.Property)) {
      if (property.comment || !property.parent?.kindOf(ReflectionKind.TypeLiteral)) continue;
      const table = property.parent.parent;
      if (!table?.kindOf(ReflectionKind.Variable)) continue;
      const fn = functions.get(moduleOf(table)?.name)?.get(property.name);
      if (fn && fn !== table) property.comment = copiedComment(fn, 'The entry for ', property.name, ': ');
    }
  });
}
