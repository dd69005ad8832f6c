/**
 * The one place that chooses a TensorFlow.js backend.
 *
 * `auto` prefers @tensorflow/tfjs-node-gpu (CUDA, when installed and a GPU is visible), then
 * @tensorflow/tfjs-node, then WebGPU (Dawn over Vulkan, when an adapter is found; see webgpu.ts),
 * then @tensorflow/tfjs-backend-wasm (XNNPACK + SIMD),
 * then the pure-JS `cpu` backend. The native packages are optional peer dependencies and the WebGPU
 * ones optional dependencies: they are imported dynamically, and their absence (or a failure to load
 * their native library, or no adapter) only moves `auto` down the list.
 */
import { existsSync, readdirSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { UsageError, describeError } from '../errors.js';
import { registerAllGradients } from './gradients.js';
import { guardWasmAllocations, registerCpuKernels, registerWasmKernels } from './kernels.js';
import { nativeKernels } from './native.js';
import { registerThreadedWasm } from './wasm-threads.js';
import { activateWebGpu, describeAdapter, probeWebGpu, type WebGpuAdapterInfo, type WebGpuProbe } from './webgpu.js';

export type BackendRequest = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export const backendRequests: readonly BackendRequest[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];
export { describeAdapter, probeWebGpu, type WebGpuAdapterInfo, type WebGpuProbe } from './webgpu.js';

export interface BackendChoice {
  /** What was asked for. */
  requested: BackendRequest;
  /** The tfjs backend now active: 'tensorflow' (tfjs-node / tfjs-node-gpu), 'webgpu', 'wasm' or 'cpu'. */
  name: 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
  /** The package behind it. */
  packageName: string;
  /** One line for the log: what was chosen and why. */
  description: string;
  /** XNNPACK threads (wasm only). */
  threads?: number;
  /** The GPU (webgpu only). */
  adapter?: WebGpuAdapterInfo;
}

export interface BackendOptions {
  /**
   * XNNPACK threads for wasm (default 1). More than one starts tfjs's threaded build through a
   * workaround for Node (see wasm-threads.ts); if that fails, wasm runs one thread and says so.
   */
  wasmThreads?: number;
  /** How `auto` looks for a WebGPU adapter (default: probeWebGpu, cached per process; tests replace it). */
  webgpuProbe?: () => Promise<WebGpuProbe>;
  /** Whether an NVIDIA GPU is visible (default: /proc/driver/nvidia/gpus; tests replace it). */
  gpuVisible?: () => boolean;
  /** Loads a backend package by name (default: dynamic import; tests replace it to reach each branch). */
  importPackage?: (packageName: string) => Promise<unknown>;
}

/** A dynamic import from a variable, so TypeScript does not require the optional packages at build time. */
const importPackage = (packageName: string): Promise<unknown> => import(packageName);

let current: BackendChoice | undefined;

/** The backend chosen by the last initBackend call, if any. */
export function currentBackend(): BackendChoice | undefined {
  return current;
}

/**
 * Make `requested` the active tfjs backend and log the choice once (a repeated call with the same
 * request returns the earlier choice silently).
 */
export async function initBackend(
  requested: BackendRequest,
  log: (line: string) => void = () => {},
  options: BackendOptions = {},
): Promise<BackendChoice> {
  if (!backendRequests.includes(requested)) {
    throw new UsageError(`unknown backend '${requested}'`, `use one of: ${backendRequests.join(', ')}`);
  }
  const wantedThreads = Math.max(1, Math.min(8, Math.floor(options.wasmThreads ?? 1)));
  if (
    current &&
    current.requested === requested &&
    tf.getBackend() === current.name &&
    (current.name !== 'wasm' || current.threads === wantedThreads)
  )
    return current;
  // PROD silences tfjs's console banners ("looks like you are running TensorFlow.js in Node.js");
  // the choice is logged here instead. It changes no numerics.
  tf.env().set('PROD', true);
  await registerAllGradients();
  registerCpuKernels();
  const skipped: string[] = [];
  let choice: BackendChoice | undefined;
  if (requested === 'auto' || requested === 'tensorflow') {
    choice = await tryNative(requested, skipped, options);
    if (!choice && requested === 'tensorflow') {
      throw new UsageError(
        `backend 'tensorflow' is not available: ${skipped.join('; ')}`,
        'install @tensorflow/tfjs-node (or @tensorflow/tfjs-node-gpu with CUDA), or use --backend wasm',
      );
    }
  }
  if (!choice && requested === 'webgpu') {
    const adapter = await activateWebGpu(); // UsageError / RunError with a hint when it cannot
    choice = webGpuChoice(requested, adapter);
  }
  if (!choice && requested === 'auto') {
    choice = await tryWebGpu(requested, skipped, options);
  }
  if (!choice && (requested === 'auto' || requested === 'wasm')) {
    try {
      const load = options.importPackage ?? importPackage;
      const wasmPackage = (await load(
        '@tensorflow/tfjs-backend-wasm',
      )) as typeof import('@tensorflow/tfjs-backend-wasm');
      let threads = 1;
      let threadNote = '';
      if (wantedThreads > 1) {
        try {
          await registerThreadedWasm(wantedThreads, wasmPackage);
          threads = wasmPackage.getThreadsCount();
        } catch (error) {
          threadNote = `; ${wantedThreads} threads failed to start: ${describeError(error)}`;
        }
      }
      if (threads === 1) await activate('wasm');
      // After activation, so that the stock kernels kept as fallbacks have run their set-up.
      registerWasmKernels();
      guardWasmAllocations(tf.backend());
      const threadCount = `${threads} thread${threads === 1 ? '' : 's'}`;
      const description = `wasm (XNNPACK, SIMD, ${threadCount}${threadNote}; ${nativeKernels().description})`;
      choice = { requested, name: 'wasm', packageName: '@tensorflow/tfjs-backend-wasm', description, threads };
    } catch (error) {
      if (requested === 'wasm') throw new UsageError(`backend 'wasm' failed to start: ${describeError(error)}`);
      skipped.push(`wasm: ${describeError(error)}`);
    }
  }
  if (!choice) {
    await activate('cpu');
    choice = {
      requested,
      name: 'cpu',
      packageName: '@tensorflow/tfjs-backend-cpu',
      description: `cpu (pure JavaScript, slow; ${nativeKernels().description})`,
    };
  }
  current = choice;
  const why = requested === 'auto' && skipped.length ? ` (not available: ${skipped.join('; ')})` : '';
  log(`backend: ${choice.description}${why}`);
  return choice;
}

function webGpuChoice(requested: BackendRequest, adapter: WebGpuAdapterInfo): BackendChoice {
  return {
    requested,
    name: 'webgpu',
    packageName: '@tensorflow/tfjs-backend-webgpu',
    description: `webgpu (Dawn, ${describeAdapter(adapter)})`,
    adapter,
  };
}

let cachedProbe: Promise<WebGpuProbe> | undefined;

/** `auto`'s WebGPU step: used whenever an adapter is found (fireopt reads tensors only asynchronously). */
async function tryWebGpu(
  requested: BackendRequest,
  skipped: string[],
  options: BackendOptions,
): Promise<BackendChoice | undefined> {
  const probe = options.webgpuProbe ? await options.webgpuProbe() : await (cachedProbe ??= probeWebGpu());
  if (!probe.found) {
    skipped.push(`webgpu: ${probe.reason}`);
    return undefined;
  }
  try {
    return webGpuChoice(requested, await activateWebGpu());
  } catch (error) {
    skipped.push(`webgpu: ${describeError(error)}`);
    return undefined;
  }
}

async function activate(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}

/** True when an NVIDIA driver exposes at least one GPU to this process. */
function nvidiaGpuVisible(): boolean {
  try {
    return existsSync('/proc/driver/nvidia/gpus') && readdirSync('/proc/driver/nvidia/gpus').length > 0;
  } catch {
    return false;
  }
}

async function tryNative(
  requested: BackendRequest,
  skipped: string[],
  options: BackendOptions,
): Promise<BackendChoice | undefined> {
  const gpuVisible = options.gpuVisible ?? nvidiaGpuVisible;
  const load = options.importPackage ?? importPackage;
  const candidates = [
    { packageName: '@tensorflow/tfjs-node-gpu', description: 'tensorflow (tfjs-node-gpu, CUDA)', needsGpu: true },
    { packageName: '@tensorflow/tfjs-node', description: 'tensorflow (tfjs-node, native CPU)', needsGpu: false },
  ];
  for (const candidate of candidates) {
    if (candidate.needsGpu && !gpuVisible()) {
      skipped.push(`${candidate.packageName}: no GPU visible`);
      continue;
    }
    try {
      await load(candidate.packageName);
      await activate('tensorflow');
      return { requested, name: 'tensorflow', packageName: candidate.packageName, description: candidate.description };
    } catch (error) {
      skipped.push(`${candidate.packageName}: ${shortReason(error)}`);
    }
  }
  return undefined;
}

function shortReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = describeError(error);
  // Node says ERR_MODULE_NOT_FOUND; bundlers and test runners word it their own way.
  if (code === 'ERR_MODULE_NOT_FOUND' || /cannot find (package|module)|could not resolve/i.test(message))
    return 'not installed';
  return message.split('\n')[0];
}
