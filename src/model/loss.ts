/** Next-token cross-entropy for training. */
import * as tf from '@tensorflow/tfjs-core';

/**
 * Mean cross entropy of `targets` under `logits`, over the positions where `weights` is non-zero.
 * logits: [B, T, V]; targets: [B, T] int32; weights: [B, T] float32 (1 = count, 0 = ignore;
 * default all ones) → scalar. Padding and prompt tokens are masked with weight 0.
 *
 * The gradient is written out ((softmax − onehot) · weight / Σweight) instead of being derived
 * through logSoftmax: one [N, V] pass instead of several. The one-hot is built as int32 and cast,
 * because tfjs-backend-wasm's float32 oneHot returns garbage (TFJS-NOTES).
 */
export function crossEntropyLoss(logits: tf.Tensor3D, targets: tf.Tensor2D, weights?: tf.Tensor2D): tf.Scalar {
  const [B, T, V] = logits.shape;
  return tf.tidy(() => {
    const N = B * T;
    const flatTargets = tf.reshape(targets, [N]) as tf.Tensor1D;
    const flatWeights = weights ? (tf.reshape(tf.cast(weights, 'float32'), [N]) as tf.Tensor1D) : tf.ones([N], 'float32');
    const total = tf.maximum(tf.sum(flatWeights), 1); // avoid 0/0 when everything is masked
    const scale = tf.div(flatWeights, total); // [N]
    const oneHot = tf.cast(tf.oneHot(flatTargets, V, 1, 0, 'int32'), 'float32'); // [N, V]
    const lossFn = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [flatLogits, save] = args as [tf.Tensor, tf.GradSaveFunc];
      const logProbs = tf.logSoftmax(flatLogits); // [N, V]
      const nll = tf.neg(tf.sum(tf.mul(logProbs, oneHot), -1)); // [N]
      // Saved (kept alive for the backward pass; the engine frees them after it): the one-hot and
      // the weights belong to this function's tidy scope, which ends before gradients are taken.
      save([logProbs, oneHot, scale]);
      return {
        value: tf.sum(tf.mul(nll, scale)),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [savedLogProbs, savedOneHot, savedScale] = saved;
          const probs = tf.exp(savedLogProbs); // [N, V]
          return tf.mul(tf.sub(probs, savedOneHot), tf.mul(tf.reshape(savedScale, [N, 1]), dy)); // [N, V]
        },
      };
    });
    return lossFn(tf.reshape(logits, [N, V])) as tf.Scalar;
  });
}
