import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { initBackend, type BackendOptions, type BackendRequest } from '../../src/backend/index.js';
import { UsageError } from '../../src/errors.js';

/**
 * The machine decides what is installed, so each branch of the choice is reached by injecting what
 * `initBackend` probes: which packages load, whether a GPU is visible, whether WebGPU has an adapter.
 */
const notInstalled = (packageName: string): Error =>
  Object.assign(new Error(`Cannot find package '${packageName}'`), { code: 'ERR_MODULE_NOT_FOUND' });

/** Probes where only `installed` load; a loaded tfjs-node registers its 'tensorflow' backend (here a CPU one). */
function machine(installed: string[], gpu: boolean): BackendOptions {
  return {
    gpuVisible: () => gpu,
    webgpuProbe: async () => ({ found: false, reason: 'no adapter (injected)' }),
    importPackage: async (packageName) => {
      if (!installed.includes(packageName)) throw notInstalled(packageName);
      if (packageName.startsWith('@tensorflow/tfjs-node')) {
        if (!tf.findBackendFactory('tensorflow')) tf.registerBackend('tensorflow', () => new MathBackendCPU());
        return {};
      }
      return import(packageName);
    },
  };
}

const WASM = '@tensorflow/tfjs-backend-wasm';

describe('initBackend: the choice, with injected probes', () => {
  afterEach(async () => {
    await initBackend('cpu'); // a different request, so the next 'auto' chooses afresh
    if (tf.findBackend('tensorflow')) tf.removeBackend('tensorflow');
  });

  it("'auto' takes tfjs-node-gpu when a GPU is visible and it loads", async () => {
    const lines: string[] = [];
    const choice = await initBackend(
      'auto',
      (line) => lines.push(line),
      machine(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', WASM], true),
    );
    expect(choice).toMatchObject({ name: 'tensorflow', packageName: '@tensorflow/tfjs-node-gpu' });
    expect(tf.getBackend()).toBe('tensorflow');
    expect(lines).toEqual(['backend: tensorflow (tfjs-node-gpu, CUDA)']);
  });

  it("'auto' skips tfjs-node-gpu without a GPU and takes tfjs-node, saying why", async () => {
    const lines: string[] = [];
    const choice = await initBackend(
      'auto',
      (line) => lines.push(line),
      machine(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', WASM], false),
    );
    expect(choice).toMatchObject({ name: 'tensorflow', packageName: '@tensorflow/tfjs-node' });
    expect(lines).toEqual([
      'backend: tensorflow (tfjs-node, native CPU) (not available: @tensorflow/tfjs-node-gpu: no GPU visible)',
    ]);
  });

  it("'auto' falls to wasm when neither tfjs-node nor a WebGPU adapter is there, listing each reason", async () => {
    const lines: string[] = [];
    const choice = await initBackend('auto', (line) => lines.push(line), machine([WASM], true));
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        String.raw`^backend: wasm .*\(not available: @tensorflow\/tfjs-node-gpu: not installed; ` +
          String.raw`@tensorflow\/tfjs-node: not installed; webgpu: no adapter \(injected\)\)$`,
      ),
    );
  });

  it("'auto' falls to the pure-JavaScript cpu backend when wasm does not load either", async () => {
    const lines: string[] = [];
    await initBackend('wasm'); // so that the fallback visibly switches away from it
    const choice = await initBackend('auto', (line) => lines.push(line), machine([], false));
    expect(choice.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(lines[0]).toMatch(
      new RegExp(
        String.raw`^backend: cpu \(pure JavaScript, slow; .*` +
          String.raw`\(not available: .*wasm: Cannot find package '@tensorflow\/tfjs-backend-wasm'\)$`,
      ),
    );
  });

  it("'tensorflow' without tfjs-node is a usage error with a hint, and leaves the backend as it was", async () => {
    const attempt = initBackend('tensorflow', () => {}, machine([WASM], false));
    await expect(attempt).rejects.toThrow(UsageError);
    await expect(attempt).rejects.toThrow(/@tensorflow\/tfjs-node: not installed/);
    expect(tf.getBackend()).toBe('cpu');
  });

  it("'wasm' that does not load is a usage error, not a silent fall to cpu", async () => {
    await expect(initBackend('wasm', () => {}, machine([], false))).rejects.toThrow(
      /backend 'wasm' failed to start: Cannot find package/,
    );
  });
});

describe('initBackend on this machine', () => {
  it("'cpu' and 'wasm' switch the active backend, and a repeated request is logged once", async () => {
    const lines: string[] = [];
    expect((await initBackend('cpu')).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend('wasm', (line) => lines.push(line))).name).toBe('wasm');
    await initBackend('wasm', (line) => lines.push(line));
    expect(tf.getBackend()).toBe('wasm');
    expect(lines).toHaveLength(1);
  });

  it('rejects an unknown backend name', async () => {
    await expect(initBackend('metal' as BackendRequest)).rejects.toThrow(/unknown backend 'metal'/);
  });
});
