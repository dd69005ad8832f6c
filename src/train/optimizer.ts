/**
 * AdamW (Loshchilov & Hutter 2019) with its moments exposed for exact checkpoints, the
 * learning-rate schedule as a pure function, and global-norm gradient clipping. tfjs has Adam but no
 * decoupled weight decay, and its optimiser state is not addressable per variable name.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ADAMW, fusedAdamWAvailable } from '../backend/kernels.js';

export interface ScheduleOptions {
  peakLr: number;
  warmupSteps: number;
  totalSteps: number;
  minLrRatio: number;
}

/**
 * Learning rate of optimiser step `step` (0-based): linear warm-up to the peak over warmupSteps,
 * then cosine decay to peak · minLrRatio at totalSteps (and flat after).
 */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (o.warmupSteps > 0 && step < o.warmupSteps) return (o.peakLr * (step + 1)) / o.warmupSteps;
  const decaySteps = Math.max(1, o.totalSteps - o.warmupSteps);
  const progress = Math.min(1, (step - o.warmupSteps) / decaySteps);
  const minLr = o.peakLr * o.minLrRatio;
  return minLr + 0.5 * (o.peakLr - minLr) * (1 + Math.cos(Math.PI * progress));
}

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** First and second moments per variable name, and the step count (bias correction). */
export interface AdamWState {
  step: number;
  m: Map<string, tf.Variable>;
  v: Map<string, tf.Variable>;
}

export class AdamW {
  readonly state: AdamWState;

  /**
   * @param fused use the one-pass native update (default: when the backend has it; the numbers are
   * the same either way).
   */
  constructor(
    private readonly params: Map<string, tf.Variable>,
    private readonly options: AdamWOptions,
    private readonly fused?: boolean,
  ) {
    const zeros = (p: tf.Variable) => tf.variable(tf.zerosLike(p), false);
    this.state = {
      step: 0,
      m: new Map([...params].map(([name, p]) => [name, zeros(p)])),
      v: new Map([...params].map(([name, p]) => [name, zeros(p)])),
    };
  }

  /** Apply one update with learning rate `lr`; `grads` by variable name (not disposed here). */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.options;
    this.state.step++;
    const t = this.state.step;
    const correction1 = 1 - Math.pow(beta1, t);
    const correction2 = 1 - Math.pow(beta2, t);
    for (const [name, param] of this.params) {
      const grad = grads.get(name);
      if (!grad) continue;
      const m = this.state.m.get(name) as tf.Variable;
      const v = this.state.v.get(name) as tf.Variable;
      const decay = param.rank >= 2 && weightDecay > 0;
      if (this.fused ?? fusedAdamWAvailable()) {
        tf.tidy(() => {
          // One pass in native code, bit-identical to the ops below (native/kernels.cc).
          const constants = [
            lr,
            beta1,
            1 - beta1,
            beta2,
            1 - beta2,
            eps,
            1 - lr * weightDecay,
            decay ? 1 : 0,
            correction1,
            correction2,
          ];
          const [pNext, mNext, vNext] = tf
            .engine()
            .runKernel(
              ADAMW,
              { param, m, v, grad } as unknown as tf.NamedTensorMap,
              { constants } as unknown as tf.NamedAttrMap,
            ) as tf.Tensor[];
          m.assign(mNext);
          v.assign(vNext);
          param.assign(pNext);
        });
        continue;
      }
      tf.tidy(() => {
        const mNext = tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1));
        const vNext = tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2));
        const update = tf.div(tf.div(mNext, correction1), tf.add(tf.sqrt(tf.div(vNext, correction2)), eps));
        // Decoupled weight decay on matrices only (norm gains stay at their scale).
        const decayed = decay ? tf.mul(param, 1 - lr * weightDecay) : param;
        m.assign(mNext);
        v.assign(vNext);
        param.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    }
  }

  dispose(): void {
    for (const t of [...this.state.m.values(), ...this.state.v.values()]) t.dispose();
  }
}

/**
 * Scale the gradients in place so their global L2 norm is at most maxNorm (0 = no clipping), on the
 * device: the norm is a tensor and the scale is chosen with it (maxNorm / (norm + 1e-6) when the norm
 * exceeds maxNorm, else exactly 1), so nothing is read back here. Returns the norm before clipping as
 * a scalar tensor that the caller owns (read it asynchronously, with the step's other numbers, for
 * logging; dispose it).
 */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): tf.Scalar {
  const norm = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
  if (maxNorm > 0) {
    const scale = tf.tidy(() =>
      tf.where(tf.greater(norm, maxNorm), tf.div(maxNorm, tf.add(norm, 1e-6)), tf.onesLike(norm)),
    );
    for (const [name, g] of grads) {
      grads.set(name, tf.mul(g, scale));
      g.dispose();
    }
    scale.dispose();
  }
  return norm;
}
