/** The stock tfjs cpu kernels, run directly: the reference that fireopt's replacement kernels are tested against. */
import * as tf from '@tensorflow/tfjs-core';
import { stockKernel } from '../../src/backend/kernels.js';

/** The stock cpu kernel, run directly (fireopt replaced UnsortedSegmentSum on cpu too). */
export function stockCpu(
  kernelName: string,
  inputs: Record<string, tf.Tensor>,
  attrs: Record<string, number | boolean>,
): Float32Array {
  const backend = tf.findBackend('cpu');
  if (!backend) throw new Error('cpu backend missing');
  const cpuInputs = Object.fromEntries(
    Object.entries(inputs).map(([k, t]) => [k, { dataId: t.dataId, shape: t.shape, dtype: t.dtype }]),
  );
  const kernelFunc = stockKernel(kernelName, 'cpu').kernelFunc as unknown as (args: object) => tf.TensorInfo;
  const out = kernelFunc({ inputs: cpuInputs, backend, attrs });
  const values = Float32Array.from(backend.readSync(out.dataId) as Float32Array);
  backend.disposeData(out.dataId);
  return values;
}
