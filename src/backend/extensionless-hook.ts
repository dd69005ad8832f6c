/**
 * A Node module-resolution hook (registered by gradients.ts): tfjs-core ships its gradient
 * registrations only as ES modules whose relative imports have no file extension
 * (`import '../ops/abs'`, and `'../gradients'` where both gradients.js and gradients/ exist), which
 * bundlers accept and Node's ESM loader does not. When such an import inside
 * @tensorflow/tfjs-core/dist fails to resolve, retry it as `<specifier>.js`, then
 * `<specifier>/index.js`. Nothing else is touched.
 */
interface ResolveContext {
  parentURL?: string;
}
type NextResolve = (specifier: string, context: ResolveContext) => Promise<unknown>;

export async function resolve(specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<unknown> {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const inTfjsCore = context.parentURL?.includes('/@tensorflow/tfjs-core/dist/') ?? false;
    const relativeWithoutExtension = /^\.\.?\//.test(specifier) && !/\.[cm]?js$/.test(specifier);
    const code = (error as { code?: string }).code;
    if (
      (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_UNSUPPORTED_DIR_IMPORT') &&
      inTfjsCore &&
      relativeWithoutExtension
    ) {
      try {
        return await nextResolve(`${specifier}.js`, context);
      } catch {
        return nextResolve(`${specifier}/index.js`, context);
      }
    }
    throw error;
  }
}
