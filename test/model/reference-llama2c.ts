/**
 * An independent reference: a direct port of llama2.c's run.c forward pass (one token at a time,
 * float32 arrays, plain loops, interleaved RoPE) working on LlamaWeights as read from disk.
 * The tfjs model is tested against it; it shares no code with src/model/llama.ts.
 */
import type { LlamaWeights } from '../../src/model/weights.js';

export class ReferenceLlama {
  private keyCache: Float32Array[];
  private valueCache: Float32Array[];
  private position = 0;

  constructor(private readonly w: LlamaWeights) {
    const c = w.config;
    const kvDim = (c.dim * c.nKvHeads) / c.nHeads;
    this.keyCache = w.layers.map(() => new Float32Array(c.maxSeqLen * kvDim));
    this.valueCache = w.layers.map(() => new Float32Array(c.maxSeqLen * kvDim));
  }

  /** run.c `forward(transformer, token, pos)`: logits for the token after `token`. */
  forward(token: number): Float32Array {
    const { config: c } = this.w;
    const dim = c.dim;
    const headSize = dim / c.nHeads;
    const kvDim = headSize * c.nKvHeads;
    const kvMul = c.nHeads / c.nKvHeads;
    const pos = this.position++;
    const x = Float32Array.from(this.w.tokenEmbedding.data.subarray(token * dim, (token + 1) * dim));
    const xb = new Float32Array(dim);
    for (let l = 0; l < c.nLayers; l++) {
      const layer = this.w.layers[l];
      rmsnorm(xb, x, layer.attnNorm.data, c.normEps);
      const q = matmul(xb, layer.wq.data, dim, dim);
      const k = matmul(xb, layer.wk.data, dim, kvDim);
      const v = matmul(xb, layer.wv.data, dim, kvDim);
      for (let i = 0; i < dim; i += 2) {
        const headDimIndex = i % headSize;
        const freq = Math.fround(1 / Math.fround(Math.pow(c.ropeTheta, headDimIndex / headSize)));
        const val = Math.fround(pos * freq);
        const fcr = Math.fround(Math.cos(val));
        const fci = Math.fround(Math.sin(val));
        const rotations = i < kvDim ? 2 : 1;
        for (let r = 0; r < rotations; r++) {
          const vec = r === 0 ? q : k;
          const v0 = vec[i];
          const v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      this.keyCache[l].set(k, pos * kvDim);
      this.valueCache[l].set(v, pos * kvDim);
      const attnOut = new Float32Array(dim);
      for (let h = 0; h < c.nHeads; h++) {
        const kvHead = Math.floor(h / kvMul);
        const att = new Float32Array(pos + 1);
        for (let t = 0; t <= pos; t++) {
          let score = 0;
          for (let i = 0; i < headSize; i++)
            score += q[h * headSize + i] * this.keyCache[l][t * kvDim + kvHead * headSize + i];
          att[t] = score / Math.sqrt(headSize);
        }
        softmax(att);
        for (let t = 0; t <= pos; t++) {
          for (let i = 0; i < headSize; i++)
            attnOut[h * headSize + i] += att[t] * this.valueCache[l][t * kvDim + kvHead * headSize + i];
        }
      }
      const o = matmul(attnOut, layer.wo.data, dim, dim);
      for (let i = 0; i < dim; i++) x[i] += o[i];
      rmsnorm(xb, x, layer.ffnNorm.data, c.normEps);
      const hb = matmul(xb, layer.w1.data, dim, c.hiddenDim);
      const hb2 = matmul(xb, layer.w3.data, dim, c.hiddenDim);
      for (let i = 0; i < c.hiddenDim; i++) hb[i] = (hb[i] / (1 + Math.exp(-hb[i]))) * hb2[i];
      const down = matmul(hb, layer.w2.data, c.hiddenDim, dim);
      for (let i = 0; i < dim; i++) x[i] += down[i];
    }
    rmsnorm(xb, x, this.w.finalNorm.data, c.normEps);
    const head = (this.w.output ?? this.w.tokenEmbedding).data;
    return matmul(xb, head, dim, c.vocabSize);
  }
}

function rmsnorm(out: Float32Array, x: Float32Array, weight: Float32Array, eps: number): void {
  let ss = 0;
  for (let j = 0; j < x.length; j++) ss += x[j] * x[j];
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  for (let j = 0; j < x.length; j++) out[j] = weight[j] * (scale * x[j]);
}

function softmax(x: Float32Array): void {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    x[i] = Math.exp(x[i] - max);
    sum += x[i];
  }
  for (let i = 0; i < x.length; i++) x[i] /= sum;
}

/** W (d,n) @ x (n,) → (d,), W row-major [out, in] as run.c's matmul. */
function matmul(x: Float32Array, w: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(d);
  for (let i = 0; i < d; i++) {
    let val = 0;
    for (let j = 0; j < n; j++) val += w[i * n + j] * x[j];
    out[i] = val;
  }
  return out;
}
