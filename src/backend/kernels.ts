/**
 * Replacement TensorFlow.js kernels for the slow or missing cases that training a transformer hits
 * (see ../shared/TFJS-NOTES.md):
 * - wasm `BatchMatMul` runs XNNPACK only for untransposed products with batch 1; everything else
 *   (every backward-pass product, every attention product) falls to a naive single-threaded loop.
 *   The replacement materialises transposes and calls the XNNPACK path once per batch slice, on
 *   zero-copy views of the wasm heap.
 * - `UnsortedSegmentSum` (the gradient of `tf.gather`, i.e. of the embedding) has no wasm kernel,
 *   and the cpu one loops over every segment with whole-tensor ops (O(segments × size)).
 * No library does these; they are small, and each is tested against the stock cpu kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { RunError } from '../errors.js';
import { nativeKernels, nativeWorthIt } from './native.js';

/** The parts of tfjs-backend-wasm's BackendWasm this file uses (its own typings omit cwrap). */
interface WasmModuleView {
  HEAPU8: Uint8Array;
  cwrap(name: string, returnType: null, argTypes: string[]): (...args: Array<number | Uint8Array | boolean>) => void;
  tfjs: { registerTensor(id: number, size: number, memoryOffset: number): void; disposeData(id: number): void };
}
interface WasmBackendView {
  wasm: WasmModuleView;
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  disposeData(dataId: object): boolean;
}
interface CpuBackendView {
  data: { get(dataId: object): { values: tf.backend_util.BackendValues } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: tf.backend_util.BackendValues): TensorInfo;
}

interface KernelArgs {
  inputs: NamedTensorInfoMap;
  backend: unknown;
  attrs?: NamedAttrMap;
}

const stockKernels = new Map<string, KernelConfig>();

/** The kernel tfjs shipped for (name, backend), captured before fireopt replaced it. */
export function stockKernel(kernelName: string, backendName: string): KernelConfig {
  const key = `${kernelName}/${backendName}`;
  const kernel = stockKernels.get(key) ?? tf.getKernel(kernelName, backendName);
  if (!kernel) throw new Error(`no ${kernelName} kernel registered for backend ${backendName}`);
  return kernel;
}

function replaceKernel(kernelName: string, backendName: string, kernelFunc: (args: KernelArgs) => TensorInfo): void {
  const key = `${kernelName}/${backendName}`;
  const existing = tf.getKernel(kernelName, backendName);
  if (existing && !stockKernels.has(key)) stockKernels.set(key, existing);
  if (existing) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ kernelName, backendName, kernelFunc: kernelFunc as unknown as KernelFunc });
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// ---------------------------------------------------------------------------------------------
// UnsortedSegmentSum: out[segmentIds[i], ...] += x[i, ...], one pass, in index order.

function segmentSumInto(
  out: Float32Array | Int32Array,
  x: ArrayLike<number>,
  segmentIds: ArrayLike<number>,
  inner: number,
  numSegments: number,
): void {
  out.fill(0);
  for (let i = 0; i < segmentIds.length; i++) {
    const segment = segmentIds[i];
    if (segment < 0 || segment >= numSegments) continue; // TensorFlow drops out-of-range ids
    const src = i * inner;
    const dst = segment * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += x[src + j];
  }
}

function segmentSumShape(args: KernelArgs): {
  x: TensorInfo;
  ids: TensorInfo;
  numSegments: number;
  inner: number;
  outShape: number[];
} {
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  const trailing = x.shape.slice(segmentIds.shape.length);
  return { x, ids: segmentIds, numSegments, inner: size(trailing), outShape: [numSegments, ...trailing] };
}

function wasmUnsortedSegmentSum(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendView;
  const { x, ids, numSegments, inner, outShape } = segmentSumShape(args);
  if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`UnsortedSegmentSum: unsupported dtype ${x.dtype}`);
  const out = backend.makeOutput(outShape, x.dtype);
  // Views are taken after makeOutput: an allocation may grow (and move) the wasm heap.
  const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
  const view = (t: TensorInfo, Ctor: typeof Float32Array | typeof Int32Array) =>
    new Ctor(heap, backend.dataIdMap.get(t.dataId).memoryOffset, size(t.shape));
  const Values = x.dtype === 'float32' ? Float32Array : Int32Array;
  segmentSumInto(view(out, Values), view(x, Values), view(ids, Int32Array), inner, numSegments);
  return out;
}

// ---------------------------------------------------------------------------------------------
// BatchMatMul on cpu: the native sgemm when it is built and the product is large enough.

function cpuBatchMatMul(args: KernelArgs): TensorInfo {
  const backend = args.backend as CpuBackendView;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const dims = productDims(a, b, transposeA, transposeB);
  const native = nativeKernels().kernels;
  const aValues = backend.data.get(a.dataId).values;
  const bValues = backend.data.get(b.dataId).values;
  if (
    !native ||
    !dims ||
    !(aValues instanceof Float32Array) ||
    !(bValues instanceof Float32Array) ||
    !nativeWorthIt(dims.batch, dims.M, dims.N, dims.K)
  ) {
    return (stockKernel(tf.BatchMatMul, 'cpu').kernelFunc as unknown as (args: KernelArgs) => TensorInfo)(args);
  }
  const { batch, batchA, batchB, M, N, K } = dims;
  const out = new Float32Array(batch * M * N);
  native.gemm(aValues, bValues, out, batchA, batchB, M, N, K, transposeA, transposeB);
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), M, N];
  return backend.makeTensorInfo(outShape, 'float32', out);
}

/** M, N, K and batch sizes of a float32 BatchMatMul whose batches match or broadcast one operand; else undefined. */
function productDims(a: TensorInfo, b: TensorInfo, transposeA: boolean, transposeB: boolean) {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const rankA = a.shape.length;
  const rankB = b.shape.length;
  const M = transposeA ? a.shape[rankA - 1] : a.shape[rankA - 2];
  const K = transposeA ? a.shape[rankA - 2] : a.shape[rankA - 1];
  const N = transposeB ? b.shape[rankB - 2] : b.shape[rankB - 1];
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return undefined;
  return { batch: Math.max(batchA, batchB), batchA, batchB, M, N, K };
}

function cpuUnsortedSegmentSum(args: KernelArgs): TensorInfo {
  const backend = args.backend as CpuBackendView;
  const { x, ids, numSegments, inner, outShape } = segmentSumShape(args);
  const out = x.dtype === 'int32' ? new Int32Array(size(outShape)) : new Float32Array(size(outShape));
  const xValues = backend.data.get(x.dataId).values as Float32Array | Int32Array;
  const idValues = backend.data.get(ids.dataId).values as Int32Array;
  segmentSumInto(out, xValues, idValues, inner, numSegments);
  return backend.makeTensorInfo(outShape, x.dtype, out);
}

// ---------------------------------------------------------------------------------------------
// BatchMatMul on wasm: C[i] = op(A[i]) · op(B[i]) through XNNPACK's fully-connected path.

/** Ids for heap views, far above the backend's own counter (which starts at 1 and counts up). */
const VIEW_ID_BASE = 2_147_483_000;

const stockSetUp = new WeakSet<object>();
const wasmMatMulFns = new WeakMap<object, (...args: Array<number | Uint8Array | boolean>) => void>();

function shapeBytes(shape: number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

function wasmBatchMatMul(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendView;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  const stockConfig = stockKernel(tf.BatchMatMul, 'wasm');
  const stock = (stockArgs: KernelArgs): TensorInfo => {
    // A backend started after the replacement never ran the stock kernel's set-up (its cwrap).
    if (!stockSetUp.has(backend)) {
      stockConfig.setupFunc?.(backend as unknown as tf.KernelBackend);
      stockSetUp.add(backend);
    }
    return (stockConfig.kernelFunc as unknown as (args: KernelArgs) => TensorInfo)(stockArgs);
  };
  const dims = productDims(a, b, transposeA, transposeB);
  if (!dims || dims.M * dims.N * dims.K === 0) return stock(args);
  const { batch, batchA, batchB, M, N, K } = dims;
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), M, N];

  const native = nativeKernels().kernels;
  if (native && nativeWorthIt(batch, M, N, K)) {
    const out = backend.makeOutput([batch, M, N], 'float32');
    // Views are taken after makeOutput: an allocation may grow (and move) the wasm heap.
    const heap = backend.wasm.HEAPU8.buffer as ArrayBuffer;
    const view = (t: TensorInfo, length: number) =>
      new Float32Array(heap, backend.dataIdMap.get(t.dataId).memoryOffset, length);
    native.gemm(
      view(a, batchA * M * K),
      view(b, batchB * K * N),
      view(out, batch * M * N),
      batchA,
      batchB,
      M,
      N,
      K,
      transposeA,
      transposeB,
    );
    return { dataId: out.dataId, shape: outShape, dtype: 'float32' };
  }

  // Row-major [batch, M, K] and [batch, K, N] operands: transposes are materialised (a copy is
  // O(size), the product O(M·N·K)).
  const transposeKernel = tf.getKernel(tf.Transpose, 'wasm').kernelFunc as unknown as (args: KernelArgs) => TensorInfo;
  const temporaries: TensorInfo[] = [];
  const rowMajor = (x: TensorInfo, batchX: number, rows: number, cols: number, transposed: boolean): TensorInfo => {
    if (!transposed) return { dataId: x.dataId, shape: [batchX, rows, cols], dtype: x.dtype };
    const stored: TensorInfo = { dataId: x.dataId, shape: [batchX, cols, rows], dtype: x.dtype };
    const t = transposeKernel({ inputs: { x: stored }, backend, attrs: { perm: [0, 2, 1] } });
    temporaries.push(t);
    return t;
  };
  const a3 = rowMajor(a, batchA, M, K, transposeA);
  const b3 = rowMajor(b, batchB, K, N, transposeB);
  const out = backend.makeOutput([batch, M, N], 'float32');

  let matMul = wasmMatMulFns.get(backend.wasm);
  if (!matMul) {
    matMul = backend.wasm.cwrap(tf.BatchMatMul, null, [
      'number',
      'array',
      'number',
      'number',
      'array',
      'number',
      'number',
      'number',
      'number',
    ]);
    wasmMatMulFns.set(backend.wasm, matMul);
  }
  const aOffset = backend.dataIdMap.get(a3.dataId).memoryOffset;
  const bOffset = backend.dataIdMap.get(b3.dataId).memoryOffset;
  const outOffset = backend.dataIdMap.get(out.dataId).memoryOffset;
  const aShape = shapeBytes([1, M, K]);
  const bShape = shapeBytes([1, K, N]);
  const registry = backend.wasm.tfjs;
  if (batch === 1) {
    // Real tensor ids: XNNPACK caches its packed copy of B on B's id, so a weight matrix used for
    // decoding is packed once, not on every token.
    const id = (t: TensorInfo) => backend.dataIdMap.get(t.dataId).id;
    try {
      matMul(id(a3), aShape, 3, id(b3), bShape, 3, 0, 0, id(out));
    } finally {
      for (const t of temporaries) backend.disposeData(t.dataId);
    }
    return { dataId: out.dataId, shape: outShape, dtype: 'float32' };
  }
  const [aView, bView, outView] = [VIEW_ID_BASE, VIEW_ID_BASE + 1, VIEW_ID_BASE + 2];
  try {
    for (let i = 0; i < batch; i++) {
      const ai = batchA === 1 ? 0 : i;
      const bi = batchB === 1 ? 0 : i;
      // A broadcast B keeps its view (and XNNPACK's packed copy of it, cached per tensor id).
      if (i === 0 || batchA !== 1) registry.registerTensor(aView, M * K, aOffset + ai * M * K * 4);
      if (i === 0 || batchB !== 1) registry.registerTensor(bView, K * N, bOffset + bi * K * N * 4);
      registry.registerTensor(outView, M * N, outOffset + i * M * N * 4);
      matMul(aView, aShape, 3, bView, bShape, 3, 0, 0, outView);
      // Disposing a view frees no memory; it drops XNNPACK's operator cached on that id.
      if (batchA !== 1) registry.disposeData(aView);
      if (batchB !== 1) registry.disposeData(bView);
      registry.disposeData(outView);
    }
  } finally {
    if (batchA === 1) registry.disposeData(aView);
    if (batchB === 1) registry.disposeData(bView);
    for (const t of temporaries) backend.disposeData(t.dataId);
  }
  return { dataId: out.dataId, shape: outShape, dtype: 'float32' };
}

// ---------------------------------------------------------------------------------------------
// Identity, and Cast to the same dtype, on wasm: share the input's memory (as Reshape does, and as
// the cpu backend's Identity does) instead of copying it. Autodiff emits many (the gradient of
// every Mul casts its inputs to float32; pass-through gradients clone): ~350 copies per training
// step of a 4-layer draft. Safe because tfjs never writes into an existing tensor's memory
// (a Variable's assign swaps its dataId).

interface RefCountedBackend {
  incRef(dataId: object): void;
}

function wasmIdentity(args: KernelArgs): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  if (x.dtype === 'string')
    return (stockKernel(tf.Identity, 'wasm').kernelFunc as unknown as (args: KernelArgs) => TensorInfo)(args);
  (args.backend as RefCountedBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function wasmCast(args: KernelArgs): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const { dtype } = args.attrs as { dtype: tf.DataType };
  if (dtype !== x.dtype || x.dtype === 'string')
    return (stockKernel(tf.Cast, 'wasm').kernelFunc as unknown as (args: KernelArgs) => TensorInfo)(args);
  (args.backend as RefCountedBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

// ---------------------------------------------------------------------------------------------
// Fused soft-target cross-entropy over the vocabulary (native only; see native/kernels.cc):
//   FireoptSoftXent      logits [N, V], rowPtr [N + 1], cols [nnz], coefs [nnz, S] → lse [N], partial [N, S]
//   FireoptSoftXentGrad  logits, rowPtr, cols, coefs, lse, setWeights [S]           → grad [N, V]
// partial[n, s] = −Σ_v c_s[n, v] · log softmax(logits)[n, v];
// grad = d(Σ_s setWeights[s] · Σ_n partial[n, s]) / d logits.

export const SOFT_XENT = 'FireoptSoftXent';
export const SOFT_XENT_GRAD = 'FireoptSoftXentGrad';

/**
 * Whether the active backend has the fused loss kernels (the native addon is loaded and the backend is wasm or cpu).
 */
export function fusedSoftXentAvailable(): boolean {
  const name = tf.getBackend();
  return (
    nativeKernels().kernels !== undefined &&
    (name === 'wasm' || name === 'cpu') &&
    tf.getKernel(SOFT_XENT, name) !== undefined
  );
}

interface SoftXentArrays {
  logits: Float32Array;
  rowPtr: Int32Array;
  cols: Int32Array;
  coefs: Float32Array;
  N: number;
  V: number;
  S: number;
}

function softXentShapes(inputs: NamedTensorInfoMap): { N: number; V: number; S: number; nnz: number } {
  const { logits, coefs, cols } = inputs as { logits: TensorInfo; coefs: TensorInfo; cols: TensorInfo };
  return { N: logits.shape[0], V: logits.shape[1], S: coefs.shape[1], nnz: cols.shape[0] };
}

function softXentKernels(backendName: 'wasm' | 'cpu'): void {
  // Typed views of an input or output, by backend.
  const viewsOf = (backend: unknown) => {
    if (backendName === 'cpu') {
      const cpu = backend as CpuBackendView;
      return {
        f32: (t: TensorInfo) => cpu.data.get(t.dataId).values as Float32Array,
        i32: (t: TensorInfo) => cpu.data.get(t.dataId).values as Int32Array,
        output: (shape: number[]) => {
          const values = new Float32Array(size(shape));
          return { values, info: () => cpu.makeTensorInfo(shape, 'float32', values) };
        },
      };
    }
    const wasm = backend as WasmBackendView;
    const heap = () => wasm.wasm.HEAPU8.buffer as ArrayBuffer;
    return {
      f32: (t: TensorInfo) => new Float32Array(heap(), wasm.dataIdMap.get(t.dataId).memoryOffset, size(t.shape)),
      i32: (t: TensorInfo) => new Int32Array(heap(), wasm.dataIdMap.get(t.dataId).memoryOffset, size(t.shape)),
      output: (shape: number[]) => {
        const info = wasm.makeOutput(shape, 'float32');
        // Taken after makeOutput (an allocation may move the heap); callers allocate every output before taking any
        // input view.
        return {
          get values() {
            return new Float32Array(heap(), wasm.dataIdMap.get(info.dataId).memoryOffset, size(shape));
          },
          info: () => info,
        };
      },
    };
  };
  const arrays = (views: ReturnType<typeof viewsOf>, inputs: NamedTensorInfoMap): SoftXentArrays => {
    const { logits, rowPtr, cols, coefs } = inputs as Record<string, TensorInfo>;
    if (logits.dtype !== 'float32' || coefs.dtype !== 'float32' || rowPtr.dtype !== 'int32' || cols.dtype !== 'int32') {
      throw new Error(`${SOFT_XENT}: expected float32 logits and coefs, int32 rowPtr and cols`);
    }
    const { N, V, S } = softXentShapes(inputs);
    return {
      logits: views.f32(logits),
      rowPtr: views.i32(rowPtr),
      cols: views.i32(cols),
      coefs: views.f32(coefs),
      N,
      V,
      S,
    };
  };
  replaceKernel(SOFT_XENT, backendName, (args) => {
    const native = nativeKernels().kernels;
    if (!native) throw new Error(`${SOFT_XENT}: the native kernels are not loaded`);
    const views = viewsOf(args.backend);
    const { N, S } = softXentShapes(args.inputs);
    const lse = views.output([N]);
    const partial = views.output([N, S]);
    const a = arrays(views, args.inputs);
    native.softXentForward(a.logits, a.N, a.V, a.rowPtr, a.cols, a.coefs, a.S, lse.values, partial.values);
    return [lse.info(), partial.info()] as unknown as TensorInfo;
  });
  replaceKernel(SOFT_XENT_GRAD, backendName, (args) => {
    const native = nativeKernels().kernels;
    if (!native) throw new Error(`${SOFT_XENT_GRAD}: the native kernels are not loaded`);
    const views = viewsOf(args.backend);
    const { N, V } = softXentShapes(args.inputs);
    const grad = views.output([N, V]);
    const a = arrays(views, args.inputs);
    const { lse, setWeights } = args.inputs as Record<string, TensorInfo>;
    native.softXentBackward(
      a.logits,
      a.N,
      a.V,
      a.rowPtr,
      a.cols,
      a.coefs,
      a.S,
      views.f32(lse),
      views.f32(setWeights),
      grad.values,
    );
    return grad.info();
  });
}

// ---------------------------------------------------------------------------------------------
// AdamW in one pass (native only): FireoptAdamW  param, m, v, grad (float32, one shape) → param', m', v'
// attrs: constants (10 numbers, see native/kernels.cc). Bit-identical to the same update in tfjs ops.

export const ADAMW = 'FireoptAdamW';

/**
 * Whether the active backend has the fused AdamW kernel (the native addon is loaded and the backend is wasm or cpu).
 */
export function fusedAdamWAvailable(): boolean {
  const name = tf.getBackend();
  return (
    nativeKernels().kernels !== undefined &&
    (name === 'wasm' || name === 'cpu') &&
    tf.getKernel(ADAMW, name) !== undefined
  );
}

function adamWKernel(backendName: 'wasm' | 'cpu'): void {
  replaceKernel(ADAMW, backendName, (args) => {
    const native = nativeKernels().kernels;
    if (!native) throw new Error(`${ADAMW}: the native kernels are not loaded`);
    const { param, m, v, grad } = args.inputs as Record<string, TensorInfo>;
    const constants = Float32Array.from((args.attrs as { constants: number[] }).constants);
    for (const t of [param, m, v, grad]) {
      if (t.dtype !== 'float32' || size(t.shape) !== size(param.shape))
        throw new Error(`${ADAMW}: expected four float32 tensors of one shape`);
    }
    const n = size(param.shape);
    if (backendName === 'cpu') {
      const cpu = args.backend as CpuBackendView;
      const values = (t: TensorInfo) => cpu.data.get(t.dataId).values as Float32Array;
      const outs = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
      native.adamW(values(param), values(m), values(v), values(grad), outs[0], outs[1], outs[2], constants);
      return outs.map((out) => cpu.makeTensorInfo(param.shape, 'float32', out)) as unknown as TensorInfo;
    }
    const wasm = args.backend as WasmBackendView;
    const outs = [0, 1, 2].map(() => wasm.makeOutput(param.shape, 'float32'));
    // Views after every allocation (an allocation may move the heap).
    const heap = wasm.wasm.HEAPU8.buffer as ArrayBuffer;
    const view = (t: TensorInfo) => new Float32Array(heap, wasm.dataIdMap.get(t.dataId).memoryOffset, n);
    native.adamW(view(param), view(m), view(v), view(grad), view(outs[0]), view(outs[1]), view(outs[2]), constants);
    return outs as unknown as TensorInfo;
  });
}

/**
 * Make a failed wasm allocation throw a clear error. Past the 4 GiB heap cap the single-threaded
 * build traps inside malloc ("memory access out of bounds") and the threaded build returns 0,
 * which tfjs-backend-wasm does not check: it would write the tensor at address 0, over the heap.
 * Idempotent per module.
 */
export function guardWasmAllocations(backend: object): void {
  const wasm = (
    backend as {
      wasm: {
        _malloc: (bytes: number) => number;
        _free: (pointer: number) => void;
        HEAPU8: Uint8Array;
        fireoptGuarded?: boolean;
      };
    }
  ).wasm;
  if (wasm.fireoptGuarded) return;
  // emscripten's `_malloc` starts as a stub that replaces itself with the raw export on its first
  // call (which would drop a wrapper installed before then): call it once first.
  wasm._free(wasm._malloc(16));
  const malloc = wasm._malloc.bind(wasm);
  const exhausted = (bytes: number) =>
    new RunError(
      `wasm heap exhausted: cannot allocate ${Math.ceil(bytes / 2 ** 20)} MiB more ` +
        `(heap ${Math.round(wasm.HEAPU8.byteLength / 2 ** 20)} MiB, cap 4096 MiB)`,
      'reduce batch size × sequence length × vocabulary size (the logits are the largest tensors)',
      'E_WASM_MEMORY',
    );
  wasm._malloc = (bytes: number) => {
    let pointer: number;
    try {
      pointer = malloc(bytes);
    } catch (error) {
      // The single-threaded build traps inside malloc at the cap ("memory access out of bounds").
      if (error instanceof WebAssembly.RuntimeError) throw exhausted(bytes);
      throw error;
    }
    // The threaded build returns 0, or (seen under vitest) a block that ends past the heap.
    if (bytes > 0 && (pointer === 0 || (pointer >>> 0) + bytes > wasm.HEAPU8.byteLength)) throw exhausted(bytes);
    return pointer;
  };
  wasm.fireoptGuarded = true;
}

let wasmKernelsRegistered = false;
let cpuKernelsRegistered = false;

/** Register fireopt's wasm kernels (idempotent). Call after the wasm backend package is imported. */
export function registerWasmKernels(): void {
  if (wasmKernelsRegistered) return;
  replaceKernel(tf.BatchMatMul, 'wasm', wasmBatchMatMul);
  replaceKernel(tf.UnsortedSegmentSum, 'wasm', wasmUnsortedSegmentSum);
  replaceKernel(tf.Identity, 'wasm', wasmIdentity);
  replaceKernel(tf.Cast, 'wasm', wasmCast);
  // Used only while the native kernels are loaded (fusedSoftXentAvailable, fusedAdamWAvailable).
  softXentKernels('wasm');
  adamWKernel('wasm');
  wasmKernelsRegistered = true;
}

/** Register fireopt's cpu kernels (idempotent). */
export function registerCpuKernels(): void {
  if (cpuKernelsRegistered) return;
  replaceKernel(tf.UnsortedSegmentSum, 'cpu', cpuUnsortedSegmentSum);
  replaceKernel(tf.BatchMatMul, 'cpu', cpuBatchMatMul);
  softXentKernels('cpu');
  adamWKernel('cpu');
  cpuKernelsRegistered = true;
}
