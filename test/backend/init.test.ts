import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend, type BackendRequest } from '../../src/backend/index.js';
import { UsageError } from '../../src/errors.js';

describe('initBackend', () => {
  it("'auto' picks wasm here (no tfjs-node installed) and logs its choice once", async () => {
    const lines: string[] = [];
    const choice = await initBackend('auto', (line) => lines.push(line));
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    await initBackend('auto', (line) => lines.push(line));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend: wasm .*tfjs-node: not installed/);
  });

  it("'cpu' and 'wasm' switch the active backend", async () => {
    expect((await initBackend('cpu')).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend('wasm')).name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it("'tensorflow' without tfjs-node is a usage error with a hint", async () => {
    const attempt = initBackend('tensorflow');
    await expect(attempt).rejects.toThrow(UsageError);
    await expect(initBackend('tensorflow')).rejects.toThrow(/tfjs-node: not installed/);
    expect(tf.getBackend()).toBe('wasm'); // unchanged
  });

  it('rejects an unknown backend name', async () => {
    await expect(initBackend('metal' as BackendRequest)).rejects.toThrow(/unknown backend 'metal'/);
  });
});
