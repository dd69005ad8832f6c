/**
 * The WebGPU backend under Node: @tensorflow/tfjs-backend-webgpu over Dawn's Node bindings (the npm
 * package `webgpu`, a prebuilt `dawn.node`). On Linux Dawn drives the GPU through Vulkan, so this
 * route does not depend on the CUDA version that tfjs-node-gpu is tied to (CUDA 11.2 / cuDNN 8.1).
 * Both packages are optional dependencies, imported only from here.
 *
 * What Node lacks, and how it is handled:
 * - Node 20 has no `navigator`; tfjs-backend-webgpu registers itself only when `navigator.gpu`
 *   exists when it is imported, so Dawn's `GPU` object is installed there first.
 * - tfjs reads a GPU tensor back synchronously (`dataSync`, `arraySync`) through OffscreenCanvas,
 *   which Node does not have, and Dawn's Node bindings offer no blocking read. Only asynchronous
 *   reads (`await t.data()`) work, and every fireopt command reads that way. A synchronous read
 *   (library code, or a regression) raises E_WEBGPU_SYNC_READ instead of "OffscreenCanvas is not
 *   defined".
 * - Without a Vulkan loader or driver Dawn finds no adapter (and prints a warning of its own), so the
 *   loader is looked for first; the adapter itself is probed in a child process, which keeps a driver
 *   that crashes or hangs, and Dawn's background threads, out of this process.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { RunError, UsageError, describeError } from '../errors.js';

/** What Dawn says about the adapter (GPUAdapterInfo). */
export interface WebGpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

/** The outcome of looking for a WebGPU adapter. */
export type WebGpuProbe = { found: true; adapter: WebGpuAdapterInfo } | { found: false; reason: string };

export const WEBGPU_PACKAGES = ['webgpu', '@tensorflow/tfjs-backend-webgpu'] as const;

/** The parts of Dawn's `GPU` / `GPUAdapter` this file uses (the package's own types need @webgpu/types). */
interface GpuAdapterView {
  info?: Partial<WebGpuAdapterInfo>;
}
interface GpuView {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapterView | null>;
}
interface DawnModule {
  create(options: string[]): GpuView;
  globals: Record<string, unknown>;
}
/** The parts of tfjs-backend-webgpu's WebGPUBackend this file uses. */
interface WebGpuBackendView {
  readSync(dataId: object): tf.backend_util.BackendValues;
  fireoptGuarded?: boolean;
}

/** One line naming the adapter, e.g. "nvidia hopper (NVIDIA H100 80GB HBM3)". */
export function describeAdapter(info: Partial<WebGpuAdapterInfo>): string {
  const name = [info.vendor, info.architecture].filter((part) => part).join(' ') || 'unknown adapter';
  const detail = info.description || info.device;
  return detail ? `${name} (${detail})` : name;
}

/**
 * Directories the dynamic loader searches for libvulkan.so.1: LD_LIBRARY_PATH (read here because it
 * is the loader's own input, not a fireopt setting), the multiarch and default library folders,
 * and those named in /etc/ld.so.conf.d.
 */
function librarySearchPath(): string[] {
  const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  dirs.push(`/lib/${triplet}`, `/usr/lib/${triplet}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib', '/usr/local/lib');
  try {
    for (const file of readdirSync('/etc/ld.so.conf.d')) {
      if (!file.endsWith('.conf')) continue;
      for (const line of readFileSync(`/etc/ld.so.conf.d/${file}`, 'utf8').split('\n')) {
        const dir = line.trim();
        if (dir.startsWith('/')) dirs.push(dir);
      }
    }
  } catch {
    // no ld.so.conf.d: the default folders above remain
  }
  return dirs;
}

/** Where libvulkan.so.1 is, on Linux (undefined: not found). Other platforms use Metal or D3D12: '(system)'. */
export function findVulkanLoader(searchPath: string[] = librarySearchPath()): string | undefined {
  if (process.platform !== 'linux') return '(system)';
  return searchPath.map((dir) => `${dir}/libvulkan.so.1`).find((path) => existsSync(path));
}

/** Resolve an optional package's entry file, or undefined when it is not installed. */
function resolveOptional(name: string): string | undefined {
  try {
    return createRequire(import.meta.url).resolve(name);
  } catch {
    return undefined;
  }
}

// The child's whole program: load Dawn, ask for an adapter and a device (the device is where a
// software or too-old driver fails), print one JSON line, exit (Dawn would otherwise keep it alive).
const PROBE_PROGRAM = `
const [dawnPath] = process.argv.slice(1);
const say = (result) => { process.stdout.write(JSON.stringify(result) + '\\n'); process.exit(0); };
try {
  const { create } = await import(dawnPath);
  const gpu = create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) say({ found: false, reason: 'Dawn found no adapter' });
  const info = adapter.info ?? {};
  const device = await adapter.requestDevice();
  device.destroy();
  say({
    found: true,
    adapter: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    },
  });
} catch (error) {
  const message = String(error && error.message ? error.message : error);
  say({ found: false, reason: 'adapter set-up failed: ' + message.split('\\n')[0] });
}
`;

export interface ProbeOptions {
  /** Give up after this long (a hung driver). Default 30 s. */
  timeoutMs?: number;
  /** Run Dawn even when no Vulkan loader is found (tests). */
  skipLoaderCheck?: boolean;
}

/**
 * Is there a WebGPU adapter? Never throws: every failure is a reason. Cheap when there is no Vulkan
 * loader (nothing is started); otherwise one short-lived child process.
 */
export async function probeWebGpu(options: ProbeOptions = {}): Promise<WebGpuProbe> {
  const missing = WEBGPU_PACKAGES.filter((name) => !resolveOptional(name));
  if (missing.length) return { found: false, reason: `${missing.join(' and ')} not installed` };
  if (!options.skipLoaderCheck && !findVulkanLoader())
    return { found: false, reason: 'no Vulkan loader (libvulkan.so.1) on this machine' };
  const dawnPath = resolveOptional('webgpu') as string;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', PROBE_PROGRAM, dawnPath],
      { timeout: options.timeoutMs ?? 30_000, encoding: 'utf8' },
      (error, stdout) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve(JSON.parse(line) as WebGpuProbe);
        } catch {
          const why = error
            ? error.killed
              ? `timed out after ${options.timeoutMs ?? 30_000} ms`
              : describeError(error).split('\n')[0]
            : `unexpected output '${line}'`;
          resolve({ found: false, reason: `adapter probe failed: ${why}` });
        }
      },
    );
  });
}

/** Make Dawn's GPU object visible where tfjs-backend-webgpu looks for it (navigator.gpu, GPU* globals). */
function installNavigatorGpu(dawn: DawnModule): GpuView {
  const scope = globalThis as Record<string, unknown>;
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in scope)) scope[name] = value;
  }
  const gpu = dawn.create([]);
  const navigator = scope.navigator as Record<string, unknown> | undefined;
  if (navigator && typeof navigator === 'object') {
    Object.defineProperty(navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  return gpu;
}

/** Replace an OffscreenCanvas ReferenceError from a synchronous read with a clear error. Idempotent per backend. */
export function guardSyncReads(backend: object): void {
  const view = backend as WebGpuBackendView;
  if (view.fireoptGuarded) return;
  const readSync = view.readSync.bind(backend);
  view.readSync = (dataId: object) => {
    try {
      return readSync(dataId);
    } catch (error) {
      if (error instanceof ReferenceError && /OffscreenCanvas/.test(error.message)) {
        throw new RunError(
          'a synchronous read (dataSync/arraySync) of a GPU tensor is not possible on the webgpu backend under Node',
          'fireopt reads tensors asynchronously, so this is a bug to report; ' +
            'meanwhile use --backend wasm (or tensorflow). Code written for webgpu reads with await tensor.data()',
          'E_WEBGPU_SYNC_READ',
        );
      }
      throw error;
    }
  };
  view.fireoptGuarded = true;
}

let activated: WebGpuAdapterInfo | undefined;

/**
 * Make `webgpu` the active tfjs backend in this process. Throws UsageError when the packages are not
 * installed and RunError (E_NO_WEBGPU) when there is no usable adapter, each with a hint.
 */
export async function activateWebGpu(): Promise<WebGpuAdapterInfo> {
  if (activated && tf.findBackend('webgpu')) {
    if (!(await tf.setBackend('webgpu')))
      throw new RunError("tf.setBackend('webgpu') failed", undefined, 'E_NO_WEBGPU');
    return activated;
  }
  const missing = WEBGPU_PACKAGES.filter((name) => !resolveOptional(name));
  if (missing.length) {
    throw new UsageError(
      `backend 'webgpu' is not available: ${missing.join(' and ')} not installed`,
      'they are optional dependencies (npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0); ' +
        'or use --backend wasm',
    );
  }
  const noAdapterHint =
    'WebGPU needs a GPU with a Vulkan driver on Linux (the Vulkan loader libvulkan.so.1 and the vendor ICD, ' +
    'e.g. VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json); or use --backend wasm';
  if (!findVulkanLoader())
    throw new RunError(
      "backend 'webgpu': no Vulkan loader (libvulkan.so.1) on this machine",
      noAdapterHint,
      'E_NO_WEBGPU',
    );
  // Variable specifiers keep TypeScript from requiring the optional packages at build time.
  const dawnSpecifier: string = 'webgpu';
  const dawn = (await import(dawnSpecifier)) as DawnModule;
  const gpu = installNavigatorGpu(dawn);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new RunError("backend 'webgpu': Dawn found no adapter", noAdapterHint, 'E_NO_WEBGPU');
  const backendSpecifier: string = '@tensorflow/tfjs-backend-webgpu';
  await import(backendSpecifier);
  if (!tf.findBackendFactory('webgpu'))
    throw new RunError(
      'tfjs-backend-webgpu did not register (navigator.gpu was not visible when it loaded)',
      undefined,
      'E_NO_WEBGPU',
    );
  let ok = false;
  try {
    ok = await tf.setBackend('webgpu');
  } catch (error) {
    throw new RunError(`backend 'webgpu' failed to start: ${describeError(error)}`, noAdapterHint, 'E_NO_WEBGPU');
  }
  if (!ok)
    throw new RunError(
      "backend 'webgpu' failed to start (tfjs could not create a device on the adapter)",
      noAdapterHint,
      'E_NO_WEBGPU',
    );
  await tf.ready();
  guardSyncReads(tf.backend());
  // GPUAdapterInfo's fields are prototype getters: read them one by one (a spread copies nothing).
  const info = adapter.info ?? {};
  activated = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
  };
  return activated;
}
