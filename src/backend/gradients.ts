/**
 * Register tfjs-core's gradient functions (training needs them; tfjs-core's Node bundle does not
 * include them, only the umbrella @tensorflow/tfjs package does, at ~300 MB).
 */
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

let registered: Promise<void> | undefined;

export function registerAllGradients(): Promise<void> {
  registered ??= (async () => {
    if (tf.getGradient(tf.Sum)) return; // already there (e.g. loaded by tfjs-node)
    // Under plain Node the gradient modules need the extension hook; under a bundler or vitest
    // (running the .ts sources, where the compiled hook does not exist) they resolve as they are.
    const hook = new URL('./extensionless-hook.js', import.meta.url);
    if (existsSync(fileURLToPath(hook))) register(hook);
    await import('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    if (!tf.getGradient(tf.Sum)) throw new Error('tfjs-core gradients did not register');
  })();
  return registered;
}
