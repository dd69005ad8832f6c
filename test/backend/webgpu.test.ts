/**
 * WebGPU backend selection on a machine without a GPU (this one, CI): `auto` passes over WebGPU with
 * one reason in its log line, an explicit request fails with a hint, and nothing throws in `auto`.
 * Every command reads tensors asynchronously, so `auto` tries any adapter it finds.
 * The GPU side itself is checked by scripts/gpu/run.sh on a GPU machine.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initBackend, type WebGpuProbe } from '../../src/backend/index.js';
import { describeAdapter, findVulkanLoader, guardSyncReads, probeWebGpu } from '../../src/backend/webgpu.js';
import { RunError } from '../../src/errors.js';

const h100: WebGpuProbe = {
  found: true,
  adapter: { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3' },
};

describe('WebGPU without an adapter', () => {
  it('the probe finds no Vulkan loader here, and Dawn itself finds no adapter', async () => {
    expect(findVulkanLoader()).toBeUndefined();
    expect(await probeWebGpu()).toEqual({ found: false, reason: 'no Vulkan loader (libvulkan.so.1) on this machine' });
    // Dawn really loads (in a child process) and answers: no adapter, not an error.
    expect(await probeWebGpu({ skipLoaderCheck: true })).toEqual({ found: false, reason: 'Dawn found no adapter' });
  });

  it("'auto' picks wasm and says why in its one log line", async () => {
    const lines: string[] = [];
    const choice = await initBackend('auto', (line) => lines.push(line));
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        String.raw`^backend: wasm .*\(not available: .*tfjs-node-gpu: .*; ` +
          String.raw`webgpu: no Vulkan loader \(libvulkan\.so\.1\) on this machine\)$`,
      ),
    );
  });

  it("'webgpu' is a RunError with a hint, and the active backend is unchanged", async () => {
    await initBackend('cpu');
    const error = await initBackend('webgpu').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunError);
    expect((error as RunError).code).toBe('E_NO_WEBGPU');
    expect((error as RunError).message).toMatch(/no Vulkan loader/);
    expect((error as RunError).hint).toMatch(/Vulkan driver.*--backend wasm/);
    expect(tf.getBackend()).toBe('cpu');
  });

  it(
    "'auto' tries a found adapter for every caller, " +
      'and falls back to wasm, never throws, when WebGPU cannot start',
    async () => {
      await initBackend('cpu');
      const lines: string[] = [];
      const choice = await initBackend('auto', (line) => lines.push(line), { webgpuProbe: async () => h100 });
      expect(choice.name).toBe('wasm');
      expect(lines).toHaveLength(1);
      // Activation was attempted (there is no "reads synchronously" pass-over any more) and failed here.
      expect(lines[0]).toMatch(/webgpu: backend 'webgpu': no Vulkan loader/);
      expect(lines[0]).not.toMatch(/synchronous/);
    },
  );
});

describe('WebGPU helpers', () => {
  it('finds libvulkan.so.1 on a search path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fireopt-vulkan-'));
    expect(findVulkanLoader([dir])).toBeUndefined();
    writeFileSync(join(dir, 'libvulkan.so.1'), '');
    expect(findVulkanLoader(['/nonexistent', dir])).toBe(join(dir, 'libvulkan.so.1'));
  });

  it('names an adapter in one line', () => {
    expect(describeAdapter(h100.found ? h100.adapter : {})).toBe('nvidia hopper (NVIDIA H100 80GB HBM3)');
    expect(describeAdapter({ vendor: 'mesa', architecture: '', device: 'llvmpipe', description: '' })).toBe(
      'mesa (llvmpipe)',
    );
    expect(describeAdapter({})).toBe('unknown adapter');
  });

  it('turns the OffscreenCanvas failure of a synchronous GPU read into E_WEBGPU_SYNC_READ', () => {
    const cpuResident = new Float32Array([1, 2]);
    const backend = {
      readSync(dataId: object): Float32Array {
        if ((dataId as { onGpu: boolean }).onGpu) throw new ReferenceError('OffscreenCanvas is not defined');
        return cpuResident;
      },
    };
    guardSyncReads(backend);
    guardSyncReads(backend); // idempotent
    expect(backend.readSync({ onGpu: false })).toBe(cpuResident);
    const error = (() => {
      try {
        backend.readSync({ onGpu: true });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(RunError);
    expect((error as RunError).code).toBe('E_WEBGPU_SYNC_READ');
    expect((error as RunError).hint).toMatch(/await tensor\.data\(\)/);
  });
});
