#!/usr/bin/env node
/**
 * fireopt's native sgemm alone (native/kernels.cc), on the shapes a draft-small training step
 * multiplies, each transpose case, beside numpy/OpenBLAS's 1024³ in the same run. Best of 5 after a
 * warm-up. Needs the addon (npm run build:native) and the build (npm run build).
 *
 *   node bench/native-gemm.mjs [--threads 1,2] [--smoke]   (--smoke: one small shape, one thread, no numpy)
 */
import { execFileSync } from 'node:child_process';
import { nativeKernels } from '../dist/backend/native.js';
import { benchArgs } from './args.mjs';

const args = benchArgs();
const { kernels, description } = nativeKernels();
if (!kernels) throw new Error(`no native kernels: ${description}`);
const numpy = (threads) => {
  const script =
    'import time, numpy as np\n' +
    'a=np.random.rand(1024,1024).astype(np.float32); b=np.random.rand(1024,1024).astype(np.float32)\n' +
    'for _ in range(2): a@b\n' +
    'best=1e9\n' +
    'for _ in range(10):\n' +
    '  t=time.perf_counter(); a@b; best=min(best,time.perf_counter()-t)\n' +
    'print(2*1024**3/best/1e9)';
  try {
    return Number(
      execFileSync('python3', ['-c', script], {
        env: { ...process.env, OPENBLAS_NUM_THREADS: String(threads) },
        encoding: 'utf8',
      }).trim(),
    ).toFixed(0);
  } catch {
    return 'n/a';
  }
};
const smoke = args.has('smoke');
const shapes = smoke
  ? [[64, 48, 32]]
  : [
      [1024, 1024, 1024],
      [2048, 704, 256],
      [2048, 8192, 256],
      [256, 8192, 2048],
      [2048, 256, 8192],
    ];
console.log(`${description}; kernel ${JSON.stringify(kernels.info())}`);
console.log('| threads | M × N × K | A·B | Aᵀ·B | A·Bᵀ | numpy 1024³ |\n|---|---|---:|---:|---:|---:|');
for (const threads of (args.get('threads') ?? (smoke ? '1' : '1,2')).split(',').map(Number)) {
  kernels.setThreads(threads);
  const floor = smoke ? 'n/a' : numpy(threads);
  for (const [M, N, K] of shapes) {
    const a = Float32Array.from({ length: M * K }, () => Math.random() - 0.5);
    const b = Float32Array.from({ length: K * N }, () => Math.random() - 0.5);
    const c = new Float32Array(M * N);
    const rates = [
      [false, false],
      [true, false],
      [false, true],
    ].map(([ta, tb]) => {
      kernels.gemm(a, b, c, 1, 1, M, N, K, ta, tb);
      let best = Infinity;
      for (let r = 0; r < 5; r++) {
        const t = performance.now();
        kernels.gemm(a, b, c, 1, 1, M, N, K, ta, tb);
        best = Math.min(best, performance.now() - t);
      }
      return ((2 * M * N * K) / best / 1e6).toFixed(0);
    });
    console.log(`| ${threads} | ${M} × ${N} × ${K} | ${rates.join(' | ')} | ${floor} |`);
  }
}
