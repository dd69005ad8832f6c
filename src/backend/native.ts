/**
 * fireopt's optional native CPU kernels (native/kernels.cc): a blocked, multi-threaded sgemm built at
 * install time for the machine (scripts/build-native.mjs). The wasm and cpu backends' BatchMatMul
 * use it for products large enough to pay for packing; without it they keep their own kernels.
 * Ingest hashes its samples with it (`nativeHashing`); without it, with `crypto.hash`.
 *
 * FIREOPT_NATIVE=0 turns it off; FIREOPT_NATIVE_THREADS=n sets its threads (default: the CPUs
 * this process may use, at most 8).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeKernels {
  /** C[i] = op(A[i]) · op(B[i]), i < max(batchA, batchB); an operand with batch 1 is broadcast. */
  gemm(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batchA: number,
    batchB: number,
    M: number,
    N: number,
    K: number,
    transposeA: boolean,
    transposeB: boolean,
  ): void;
  /**
   * lse[n] = log Σ_v exp(logits[n, v]);
   * partial[n, s] = Σ_j coefs[j, s] · (lse[n] − logits[n, cols[j]]) over row n's entries.
   */
  softXentForward(
    logits: Float32Array,
    N: number,
    V: number,
    rowPtr: Int32Array,
    cols: Int32Array,
    coefs: Float32Array,
    S: number,
    lse: Float32Array,
    partial: Float32Array,
  ): void;
  /** grad[n, v] = (Σ_s setWeights[s] · Σ_j coefs[j, s]) · softmax[n, v] − Σ_s setWeights[s] · c_s[n, v]. */
  softXentBackward(
    logits: Float32Array,
    N: number,
    V: number,
    rowPtr: Int32Array,
    cols: Int32Array,
    coefs: Float32Array,
    S: number,
    lse: Float32Array,
    setWeights: Float32Array,
    grad: Float32Array,
  ): void;
  /** One AdamW step; constants = [lr, β1, 1 − β1, β2, 1 − β2, ε, 1 − lr·decay, decay ? 1 : 0, c1, c2]. */
  adamW(
    param: Float32Array,
    m: Float32Array,
    v: Float32Array,
    grad: Float32Array,
    paramOut: Float32Array,
    mOut: Float32Array,
    vOut: Float32Array,
    constants: Float32Array,
  ): void;
  setThreads(threads: number): void;
  info(): { isa: string; threads: number; mr: number; nr: number };
}

export interface NativeStatus {
  kernels?: NativeKernels;
  /** One phrase for the backend's log line. */
  description: string;
}

/** Where the build script puts the addon (the package root's native/build/). */
export const nativeAddonPath = join(
  resolve(dirname(fileURLToPath(import.meta.url)), '..', '..'),
  'native',
  'build',
  'fireopt_native.node',
);

let status: NativeStatus | undefined;
let disabled = false;

/**
 * Turn the native kernels off (or back on) for this process from now on, e.g. to measure the
 * backends' own kernels beside them in one run. FIREOPT_NATIVE=0 does the same from the start.
 */
export function setNativeEnabled(enabled: boolean): void {
  disabled = !enabled;
}

/** The native kernels when built and enabled, loaded once per process (per thread). */
export function nativeKernels(): NativeStatus {
  if (disabled) return { description: 'native sgemm off' };
  if (status) return status;
  if (process.env.FIREOPT_NATIVE === '0') return (status = { description: 'native sgemm off (FIREOPT_NATIVE=0)' });
  const problem = nativeBuildProblem(nativeAddonPath);
  if (problem) return (status = { description: `native sgemm ${problem} (npm run build:native)` });
  try {
    const kernels = createRequire(import.meta.url)(nativeAddonPath) as NativeKernels;
    const requested = Number(process.env.FIREOPT_NATIVE_THREADS);
    const threads =
      Number.isInteger(requested) && requested >= 1 ? Math.min(requested, 64) : Math.min(availableParallelism(), 8);
    kernels.setThreads(threads);
    const info = kernels.info();
    return (status = {
      kernels,
      description: `native sgemm ${info.isa}, ${info.threads} thread${info.threads === 1 ? '' : 's'}`,
    });
  } catch (error) {
    return (status = { description: `native sgemm failed to load (${(error as Error).message.split('\n')[0]})` });
  }
}

/** The addon's hashing for ingest (native/kernels.cc). */
export interface NativeHashing {
  /**
   * out[32·i, 32·i + 32) = sha256(data[start, split) ‖ separator ‖ data[split, end)) for each sample i,
   * (start, split, end) = spans[3·i, 3·i + 3). Consecutive samples with one `start` share the hash of their common
   * prefix.
   */
  sampleDigests(data: Uint8Array, spans: Int32Array, count: number, separator: number, out: Uint8Array): void;
  /** The first 4 bytes of sha256(UTF-8 of `text`), big-endian, as an unsigned integer. */
  sha256Prefix32(text: string): number;
}

let hashing: NativeHashing | null | undefined;

/**
 * The addon's ingest hashing when built for this CPU, enabled, and this Node exports OpenSSL's
 * SHA-256 (the addon looks it up at load); undefined otherwise, and callers use `crypto.hash`,
 * which gives the same digests. Unlike `nativeKernels` it starts no threads and loads no
 * TensorFlow.js, so each ingest parse worker can load it. Loaded once per thread.
 */
export function nativeHashing(): NativeHashing | undefined {
  if (disabled || process.env.FIREOPT_NATIVE === '0') return undefined;
  if (hashing === undefined) hashing = loadHashing();
  return hashing ?? undefined;
}

function loadHashing(): NativeHashing | null {
  if (nativeBuildProblem(nativeAddonPath)) return null;
  try {
    const addon = createRequire(import.meta.url)(nativeAddonPath) as Partial<NativeHashing>;
    return typeof addon.sampleDigests === 'function' && typeof addon.sha256Prefix32 === 'function'
      ? (addon as NativeHashing)
      : null;
  } catch {
    // An addon that fails to load here also fails in nativeKernels, which reports why; ingest's
    // fallback (crypto.hash) gives identical digests, so there is nothing to report to it.
    return null;
  }
}

/**
 * Why the addon at `addonPath` must not be loaded here, if it must not: missing, or built (with
 * -march=native) for another CPU according to the stamp beside it (`.json`, written by
 * scripts/build-native.mjs) — its code could die of an illegal instruction on this one.
 */
export function nativeBuildProblem(addonPath: string): string | undefined {
  if (!existsSync(addonPath)) return 'not built';
  let builtFor: string | undefined;
  try {
    builtFor = (JSON.parse(readFileSync(addonPath.replace(/\.node$/, '.json'), 'utf8')) as { cpu?: string }).cpu;
  } catch {
    return 'has no build stamp';
  }
  return builtFor === cpuSignature() ? undefined : 'built for another CPU';
}

/**
 * This CPU as `-march=native` sees it: model and feature flags (the same string as
 * scripts/build-native.mjs's cpuSignature).
 */
export function cpuSignature(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string) => info.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? '';
    return `${field('model name')} | ${field('flags').split(/\s+/).sort().join(' ')}`;
  } catch {
    return `${cpus()[0]?.model ?? 'unknown'}`;
  }
}

/**
 * Whether a product is worth the native kernel: it packs both operands, so tiny products and
 * matrix-vector products (decoding one token; XNNPACK keeps its packed weights for those) stay
 * with the backend's own kernel.
 */
export function nativeWorthIt(batch: number, M: number, N: number, K: number): boolean {
  return M >= 16 && N >= 16 && batch * M * N * K >= 1 << 18;
}
