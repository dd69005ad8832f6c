/**
 * tfjs-backend-wasm with more than one XNNPACK thread under Node.
 *
 * tfjs turns threads off under Node (its flag says so) and its loader hands emscripten's pthread
 * workers `blob:` URLs, which Node's worker_threads cannot load; the C++ side also caps the
 * thread pool at half of `os.cpus().length`, read once when the module starts. This file starts
 * the threaded SIMD build itself: the worker script and the main script go to a temporary folder
 * as files, `os.cpus` is widened for the duration of the start-up only, and the pool's workers are
 * unref'd so that they do not keep the process alive.
 *
 * Fragile by nature (it depends on tfjs 4.22's emscripten glue), hence opt-in: initBackend uses it
 * only when asked for more than one wasm thread, and falls back to one thread if it fails.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

interface EmscriptenWorker {
  unref(): void;
}
interface ThreadedModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: number[]) => number;
  wasmMemory: WebAssembly.Memory;
  PThread: { runningWorkers: EmscriptenWorker[]; unusedWorkers: EmscriptenWorker[] };
  tfjs?: unknown;
}
type ModuleFactory = ((config: Record<string, unknown>) => Promise<ThreadedModule>) & { toString(): string };
interface WasmPackage {
  BackendWasm: new (module: never) => tf.KernelBackend;
  setThreadsCount(count: number): void;
  getThreadsCount(): number;
}

const require = createRequire(import.meta.url);

/**
 * tfjs reads `Module.HEAPU8` directly. With threads, an XNNPACK worker can grow the shared memory,
 * and the main thread's view then still has the old length: writes past it throw, and reads
 * (`HEAPU8.slice`) come back silently short. Serve a view that follows the current buffer.
 */
function keepHeapViewFresh(module: ThreadedModule): void {
  let view = new Uint8Array(module.wasmMemory.buffer);
  Object.defineProperty(module, 'HEAPU8', {
    configurable: true,
    get: () => {
      if (view.buffer !== module.wasmMemory.buffer) view = new Uint8Array(module.wasmMemory.buffer);
      return view;
    },
    set: () => {}, // emscripten re-assigns it after growing; the getter already follows
  });
}

/** Register (replacing any earlier one) a 'wasm' backend running `threads` XNNPACK threads. */
export async function registerThreadedWasm(threads: number, wasmPackage: WasmPackage): Promise<void> {
  const factoryPath = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const factory = require(factoryPath) as ModuleFactory;
  const { wasmWorkerContents } =
    require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
      wasmWorkerContents: string;
    };
  const directory = mkdtempSync(join(os.tmpdir(), 'fireopt-wasm-threads-'));
  const workerPath = join(directory, 'worker.cjs');
  const mainPath = join(directory, 'main.js');
  // The worker source holds "\n" escapes that tfjs's template literal turned into newlines; tfjs
  // re-escapes them before making its Blob, and so does this.
  writeFileSync(workerPath, wasmWorkerContents.replace(/\n/g, '\\n'));
  writeFileSync(mainPath, `var WasmBackendModuleThreadedSimd = ${factory.toString()}`);
  const realCpus = os.cpus;
  let module: ThreadedModule;
  try {
    // The C++ pool size is cpus / 2, computed while the module starts: widen it for that moment.
    os.cpus = () => Array.from({ length: Math.max(1, 2 * threads) }, () => realCpus()[0]);
    module = await factory({
      locateFile: (path: string) => (path.endsWith('.worker.js') ? workerPath : join(dirname(factoryPath), path)),
      mainScriptUrlOrBlob: mainPath,
    });
  } finally {
    os.cpus = realCpus;
  }
  // Workers have loaded both scripts by now (the module resolves after they report 'loaded').
  rmSync(directory, { recursive: true, force: true });
  keepHeapViewFresh(module);
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  wasmPackage.setThreadsCount(threads);
  if (tf.findBackendFactory('wasm')) tf.removeBackend('wasm');
  tf.registerBackend('wasm', () => new wasmPackage.BackendWasm(module as never), 2);
  if (!(await tf.setBackend('wasm'))) throw new Error('the threaded wasm backend did not start');
  await tf.ready();
  for (const worker of [...module.PThread.runningWorkers, ...module.PThread.unusedWorkers]) worker.unref();
}
