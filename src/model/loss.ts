/** Next-token cross-entropy for training, and the soft-target cross-entropy it is a case of. */
import * as tf from '@tensorflow/tfjs-core';
import { fusedSoftXentAvailable, SOFT_XENT, SOFT_XENT_GRAD } from '../backend/kernels.js';

/**
 * Sparse loss coefficients c_s[n, v] over an [N, V] logits matrix, `sets` of them sharing one
 * sparsity pattern, in CSR form: row n's entries are j ∈ [rowPtr[n], rowPtr[n + 1]), at column
 * cols[j], with coefficient coefs[j · sets + s] in set s. A column may repeat within a row (the
 * coefficients add up).
 */
export interface SparseCoefficients {
  rowPtr: Int32Array;
  cols: Int32Array;
  coefs: Float32Array;
  sets: number;
}

export interface SoftCrossEntropyOptions {
  /**
   * Use the fused native kernel (one pass over the logits forward, one backward; native/kernels.cc):
   * default when the backend has it. false computes the same numbers through logSoftmax and dense
   * coefficient matrices.
   */
  fused?: boolean;
}

/**
 * For each coefficient set s, −Σ_n Σ_v c_s[n, v] · log softmax(logits)[n, v] → [sets], differentiable
 * in the logits. With one-hot coefficients 1/N this is the mean cross-entropy; with a top-k
 * distribution, the cross-entropy part of a KL.
 */
export function softCrossEntropySums(
  logits: tf.Tensor2D,
  coefficients: SparseCoefficients,
  options: SoftCrossEntropyOptions = {},
): tf.Tensor1D {
  const [N, V] = logits.shape;
  const { rowPtr, cols, coefs, sets } = coefficients;
  if (rowPtr.length !== N + 1 || rowPtr[0] !== 0 || cols.length !== rowPtr[N] || coefs.length !== cols.length * sets) {
    throw new Error(
      `softCrossEntropySums: coefficients do not fit ${N} rows (rowPtr ` +
        `${rowPtr.length}, cols ${cols.length}, coefs ${coefs.length}, sets ${sets})`,
    );
  }
  if (options.fused ?? fusedSoftXentAvailable()) {
    return tf.tidy(() =>
      fusedSoftCrossEntropy(
        logits,
        tf.tensor1d(rowPtr, 'int32'),
        tf.tensor1d(cols, 'int32'),
        tf.tensor2d(coefs, [cols.length, sets]),
      ),
    );
  }
  return tf.tidy(() => {
    const dense = Array.from({ length: sets }, () => new Float32Array(N * V));
    for (let n = 0; n < N; n++) {
      for (let j = rowPtr[n]; j < rowPtr[n + 1]; j++) {
        for (let s = 0; s < sets; s++) dense[s][n * V + cols[j]] += coefs[j * sets + s];
      }
    }
    const matrices = dense.map((values) => tf.tensor2d(values, [N, V]));
    return softCrossEntropyDense(logits, matrices);
  });
}

/**
 * The fused kernels through tf.customGrad. rowPtr [N + 1] int32, cols [nnz] int32, coefs [nnz, S]
 * float32 (tensors, so that a caller holding its targets on the device never reads them back).
 */
function fusedSoftCrossEntropy(
  logits: tf.Tensor2D,
  rowPtr: tf.Tensor1D,
  cols: tf.Tensor1D,
  coefs: tf.Tensor2D,
): tf.Tensor1D {
  const engine = tf.engine();
  const sums = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const [lse, partial] = engine.runKernel(SOFT_XENT, {
      logits: x,
      rowPtr,
      cols,
      coefs,
    } as unknown as tf.NamedTensorMap) as tf.Tensor[];
    // Saved, not closed over: rowPtr, cols and coefs belong to the caller's tidy scope, which may
    // end before gradients are taken; the engine keeps saved tensors alive for the backward pass.
    save([x, rowPtr, cols, coefs, lse]);
    return {
      value: tf.sum(partial, 0) as tf.Tensor1D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedRowPtr, savedCols, savedCoefs, savedLse] = saved;
        const inputs = {
          logits: savedX,
          rowPtr: savedRowPtr,
          cols: savedCols,
          coefs: savedCoefs,
          lse: savedLse,
          setWeights: tf.cast(dy, 'float32'),
        };
        return engine.runKernel(SOFT_XENT_GRAD, inputs as unknown as tf.NamedTensorMap) as tf.Tensor;
      },
    };
  });
  return sums(logits) as tf.Tensor1D;
}

/**
 * The same sums through logSoftmax, with dense [N, V] coefficient matrices (one per set). The
 * gradient is written out (rowsum(c) · softmax − c) instead of being derived through logSoftmax:
 * one [N, V] pass instead of several.
 */
function softCrossEntropyDense(logits: tf.Tensor2D, matrices: tf.Tensor2D[]): tf.Tensor1D {
  const sums = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const logProbs = tf.logSoftmax(x); // [N, V]
    save([logProbs, ...matrices]);
    return {
      value: tf.stack(matrices.map((c) => tf.neg(tf.sum(tf.mul(logProbs, c))))) as tf.Tensor1D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedLogProbs, ...savedMatrices] = saved;
        const weights = tf.unstack(dy);
        // Σ_s dy_s · c_s, and its row sums.
        const combined = savedMatrices.map((c, s) => tf.mul(c, weights[s])).reduce((a, b) => tf.add(a, b));
        const rowMass = tf.sum(combined, -1, true); // [N, 1]
        return tf.sub(tf.mul(tf.exp(savedLogProbs), rowMass), combined); // [N, V]
      },
    };
  });
  return sums(logits) as tf.Tensor1D;
}

/**
 * Mean cross entropy of `targets` under `logits`, over the positions where `weights` is non-zero.
 * logits: [B, T, V]; targets: [B, T] int32; weights: [B, T] float32 (1 = count, 0 = ignore;
 * default all ones) → scalar. Padding and prompt tokens are masked with weight 0; a counted
 * target outside [0, V) is an error on the fused path (the dense path silently counts it as 0).
 *
 * Without the fused kernel, the gradient is written out ((softmax − onehot) · weight / Σweight);
 * the one-hot is built as int32 and cast, because tfjs-backend-wasm's float32 oneHot returns
 * garbage (TFJS-NOTES).
 */
export function crossEntropyLoss(
  logits: tf.Tensor3D,
  targets: tf.Tensor2D,
  weights?: tf.Tensor2D,
  options: SoftCrossEntropyOptions = {},
): tf.Scalar {
  const [B, T, V] = logits.shape;
  return tf.tidy(() => {
    const N = B * T;
    const flatTargets = tf.reshape(targets, [N]) as tf.Tensor1D;
    const flatWeights = weights
      ? (tf.reshape(tf.cast(weights, 'float32'), [N]) as tf.Tensor1D)
      : tf.ones([N], 'float32');
    const total = tf.maximum(tf.sum(flatWeights), 1); // avoid 0/0 when everything is masked
    const scale = tf.div(flatWeights, total); // [N]
    const flatLogits = tf.reshape(logits, [N, V]) as tf.Tensor2D;
    if (options.fused ?? fusedSoftXentAvailable()) {
      // One entry per row; a masked row points at column 0 with coefficient 0.
      const cols = tf.where(tf.greater(flatWeights, 0), flatTargets, tf.zerosLike(flatTargets)) as tf.Tensor1D;
      const rowPtr = tf.range(0, N + 1, 1, 'int32') as tf.Tensor1D;
      return tf.reshape(fusedSoftCrossEntropy(flatLogits, rowPtr, cols, tf.reshape(scale, [N, 1])), []) as tf.Scalar;
    }
    const oneHot = tf.cast(tf.oneHot(flatTargets, V, 1, 0, 'int32'), 'float32'); // [N, V]
    return tf.reshape(
      softCrossEntropyDense(flatLogits, [tf.mul(oneHot, tf.reshape(scale, [N, 1])) as tf.Tensor2D]),
      [],
    ) as tf.Scalar;
  });
}
