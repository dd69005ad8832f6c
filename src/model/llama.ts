/**
 * A decoder-only Llama-architecture transformer in TensorFlow.js (Touvron et al. 2023):
 * token embedding → L × [RMSNorm → attention with RoPE and grouped-query heads → residual,
 * RMSNorm → SwiGLU MLP → residual] → RMSNorm → output head (tied to the embedding or not).
 * Qwen2 adds biases to the q/k/v projections; Qwen3 instead normalises each head of q and k with
 * an RMSNorm before RoPE and may have a head size other than C / H (see config.ts).
 *
 * Shapes: B batch, T time, C model width (dim), H query heads, KV key/value heads, R = H / KV
 * query heads per key/value head, D head size, F SwiGLU hidden width, V vocabulary.
 *
 * Layout inside the model (converted from/to LlamaWeights at the edges):
 * - linear weights are stored [in, out], so every projection is `x · W` with no transpose: the
 *   form tfjs-backend-wasm runs through XNNPACK (and whose packed weights it caches);
 * - the rows of wq and wk are permuted within each head from the interleaved RoPE layout of
 *   LlamaWeights (pairs 2i, 2i+1) to rotate-half (pairs i, i + D/2), which RoPE applies with one
 *   [D, D] product per head instead of a rank-5 reshape. q·k is unchanged because q and k are
 *   permuted alike.
 */
import * as tf from '@tensorflow/tfjs-core';
import { configProblems, headDim, type LlamaConfig } from './config.js';
import { dense, expectedShapes, type DenseTensor, type LayerWeights, type LlamaWeights } from './weights.js';

export interface LayerParams {
  attnNorm: tf.Variable; // [C]
  wq: tf.Variable; // [C, H·D]  (rotate-half rows)
  wk: tf.Variable; // [C, KV·D] (rotate-half rows)
  wv: tf.Variable; // [C, KV·D]
  wo: tf.Variable; // [H·D, C]
  ffnNorm: tf.Variable; // [C]
  w1: tf.Variable; // gate [C, F]
  w2: tf.Variable; // down [F, C]
  w3: tf.Variable; // up   [C, F]
  bq?: tf.Variable; // [H·D]  (Qwen2; rotate-half order)
  bk?: tf.Variable; // [KV·D] (Qwen2; rotate-half order)
  bv?: tf.Variable; // [KV·D] (Qwen2)
  qNorm?: tf.Variable; // [D] (Qwen3; rotate-half order)
  kNorm?: tf.Variable; // [D] (Qwen3; rotate-half order)
}

export interface LlamaParams {
  tokenEmbedding: tf.Variable; // [V, C]
  layers: LayerParams[];
  finalNorm: tf.Variable; // [C]
  output?: tf.Variable; // [C, V], untied heads only
}

/** Key/value cache of one layer for single-sequence decoding. */
export interface LayerCache {
  keysT: tf.Tensor3D; // [KV, D, t]: keys stored transposed, so scores are q · kᵀ without a transpose
  values: tf.Tensor3D; // [KV, t, D]
}

/** What a block's attention needs besides its input: shapes, RoPE rows, the mask and the layer's cache. */
interface AttentionInputs {
  batch: number; // B
  time: number; // T, the new positions
  cos: tf.Tensor3D; // [T, 1, D]
  sin: tf.Tensor3D; // [T, 1, D]
  mask: tf.Tensor2D | null; // [R·T, Tk] additive, or null when every query may see every key
  cache: LayerCache | null; // earlier positions of a single sequence (batch 1 only)
}

const MASKED = -1e9; // exp(MASKED - max) is exactly 0 in float32

// ---------------------------------------------------------------------------------------------
// Building blocks

/** RMSNorm: x / sqrt(mean(x²) + eps) · gain over the last axis. */
export function rmsNorm(x: tf.Tensor, gain: tf.Tensor, eps: number): tf.Tensor {
  const meanSquare = tf.mean(tf.square(x), -1, true); // [..., 1]
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), gain);
}

/**
 * Rotary position embedding in the rotate-half layout: for each head, (x1, x2) = (x[:D/2], x[D/2:])
 * becomes (x1·cos − x2·sin, x1·sin + x2·cos), i.e. x ⊙ cos + rotateHalf(x) ⊙ sin with
 * rotateHalf(x) = (−x2, x1). rotateHalf is a product with a fixed signed permutation matrix:
 * one kernel instead of two slices, a negation and a concat, and exact (one ±1 term per output).
 * x: [..., T, heads, D]; cos, sin: [T, 1, D] (each half repeated); rotateHalf: [D, D].
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, rotateHalf: tf.Tensor2D): tf.Tensor {
  const D = x.shape[x.rank - 1];
  // [..., T, heads, D]
  const rotated = tf.reshape(tf.matMul(tf.reshape(x, [-1, D]) as tf.Tensor2D, rotateHalf), x.shape);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/** SwiGLU MLP: (silu(x·W1) ⊙ (x·W3)) · W2. x: [N, C] → [N, C]. */
export function swiglu(x: tf.Tensor2D, p: LayerParams): tf.Tensor2D {
  const gate = tf.matMul(x, p.w1); // [N, F]
  const up = tf.matMul(x, p.w3); // [N, F]
  const activated = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up); // silu(gate) ⊙ up
  return tf.matMul(activated, p.w2); // [N, C]
}

/**
 * Scaled dot-product attention over grouped heads: the R query heads that share a key/value head
 * are stacked along the time axis, so no key or value is repeated.
 * q: [G, R·Tq, D] (already scaled by 1/√D), keysT: [G, D, Tk], values: [G, Tk, D],
 * mask: [R·Tq, Tk] additive (0 or MASKED) or null → [G, R·Tq, D].
 */
function groupedAttention(
  q: tf.Tensor3D,
  keysT: tf.Tensor3D,
  values: tf.Tensor3D,
  mask: tf.Tensor2D | null,
): tf.Tensor3D {
  let scores: tf.Tensor3D = tf.matMul(q, keysT); // [G, R·Tq, Tk]
  if (mask) scores = tf.add(scores, mask);
  const probs = tf.softmax(scores); // over keys
  return tf.matMul(probs, values); // [G, R·Tq, D]
}

/**
 * Causal mask for queries at positions start..start+Tq−1 against keys 0..start+Tq−1, repeated
 * for the R stacked query heads: [R·Tq, start+Tq].
 */
function causalMask(queryLength: number, start: number, repeats: number): tf.Tensor2D {
  const keyLength = start + queryLength;
  const values = new Float32Array(repeats * queryLength * keyLength);
  for (let r = 0; r < repeats; r++) {
    for (let i = 0; i < queryLength; i++) {
      const row = (r * queryLength + i) * keyLength;
      for (let j = start + i + 1; j < keyLength; j++) values[row + j] = MASKED;
    }
  }
  return tf.tensor2d(values, [repeats * queryLength, keyLength]);
}

// ---------------------------------------------------------------------------------------------
// The model

export class LlamaModel {
  readonly config: LlamaConfig;
  readonly params: LlamaParams;
  readonly headDim: number;
  private ropeCos: tf.Tensor2D; // [P, D]
  private ropeSin: tf.Tensor2D; // [P, D]
  private readonly rotateHalf: tf.Tensor2D; // [D, D]
  private disposed = false;

  private constructor(config: LlamaConfig, params: LlamaParams) {
    this.config = config;
    this.params = params;
    this.headDim = headDim(config);
    // Model-owned constants are kept: a model built (or a table grown) inside someone's tf.tidy
    // must outlive that scope.
    [this.ropeCos, this.ropeSin] = ropeTables(config, config.maxSeqLen).map((t) => tf.keep(t)) as [
      tf.Tensor2D,
      tf.Tensor2D,
    ];
    this.rotateHalf = tf.keep(rotateHalfMatrix(this.headDim));
  }

  /** Build a model (trainable tf.Variables on the active backend) from format-independent weights. */
  static fromWeights(weights: LlamaWeights, options: { trainable?: boolean } = {}): LlamaModel {
    const config = { ...weights.config };
    const problems = configProblems(config);
    if (problems.length) throw new Error(`invalid model config: ${problems.join('; ')}`);
    const trainable = options.trainable ?? true;
    const D = headDim(config);
    const variable = (t: DenseTensor, rowOrder?: Int32Array, transpose = true): tf.Variable =>
      tf.tidy(() => {
        const values = transpose ? toInOut(t, rowOrder) : reordered(t.data, rowOrder);
        const shape = transpose ? [t.shape[1], t.shape[0]] : t.shape;
        return tf.variable(tf.tensor(values, shape, 'float32'), trainable);
      });
    const qOrder = rotateHalfOrder(config.nHeads, D);
    const kOrder = rotateHalfOrder(config.nKvHeads, D);
    const headOrder = rotateHalfOrder(1, D);
    const params: LlamaParams = {
      tokenEmbedding: variable(weights.tokenEmbedding, undefined, false),
      layers: weights.layers.map((layer) => {
        const params: LayerParams = {
          attnNorm: variable(layer.attnNorm, undefined, false),
          wq: variable(layer.wq, qOrder),
          wk: variable(layer.wk, kOrder),
          wv: variable(layer.wv),
          wo: variable(layer.wo),
          ffnNorm: variable(layer.ffnNorm, undefined, false),
          w1: variable(layer.w1),
          w2: variable(layer.w2),
          w3: variable(layer.w3),
        };
        // Optional per-architecture tensors: present exactly when the config asks for them.
        const optional: Array<[keyof LayerWeights & keyof LayerParams, Int32Array | undefined]> = [
          ['bq', qOrder],
          ['bk', kOrder],
          ['bv', undefined],
          ['qNorm', headOrder],
          ['kNorm', headOrder],
        ];
        for (const [field, order] of optional) {
          const tensor = layer[field];
          if (tensor) params[field] = variable(tensor, order, false);
        }
        return params;
      }),
      finalNorm: variable(weights.finalNorm, undefined, false),
      output: config.tiedEmbeddings ? undefined : weights.output ? variable(weights.output) : undefined,
    };
    if (!config.tiedEmbeddings && !params.output)
      throw new Error('untied model config but the weights have no output head');
    const model = new LlamaModel(config, params);
    const expected = expectedShapes(config);
    const missing = [...expected.keys()].filter((key) => !model.namedVariables().has(key));
    const extra = [...model.namedVariables().keys()].filter((key) => !expected.has(key));
    if (missing.length || extra.length) {
      model.dispose();
      throw new Error(
        `weights do not match the ${config.architecture ?? 'llama'} config: ` +
          [missing.length ? `missing ${missing.join(', ')}` : '', extra.length ? `unexpected ${extra.join(', ')}` : '']
            .filter(Boolean)
            .join('; '),
      );
    }
    return model;
  }

  /** Every trainable variable, in a stable order (embedding, layers, final norm, head). */
  get variables(): tf.Variable[] {
    return [...this.namedVariables().values()];
  }

  /** Variables by the stable names of weights.ts's expectedShapes (tfjs layout, see file header). */
  namedVariables(): Map<string, tf.Variable> {
    const named = new Map<string, tf.Variable>();
    named.set('tokenEmbedding', this.params.tokenEmbedding);
    this.params.layers.forEach((layer, l) => {
      for (const [key, value] of Object.entries(layer)) {
        if (value) named.set(`layers.${l}.${key}`, value as tf.Variable);
      }
    });
    named.set('finalNorm', this.params.finalNorm);
    if (this.params.output) named.set('output', this.params.output);
    return named;
  }

  /** cos and sin for positions start..start+length−1, shaped [length, 1, D] to broadcast over heads. */
  rope(start: number, length: number): [tf.Tensor3D, tf.Tensor3D] {
    if (start + length > this.ropeCos.shape[0]) {
      const [cos, sin] = ropeTables(this.config, Math.max(start + length, 2 * this.ropeCos.shape[0]));
      this.ropeCos.dispose();
      this.ropeSin.dispose();
      [this.ropeCos, this.ropeSin] = [tf.keep(cos), tf.keep(sin)];
    }
    const D = this.headDim;
    const cos = tf.reshape(tf.slice(this.ropeCos, [start, 0], [length, D]), [length, 1, D]) as tf.Tensor3D;
    const sin = tf.reshape(tf.slice(this.ropeSin, [start, 0], [length, D]), [length, 1, D]) as tf.Tensor3D;
    return [cos, sin];
  }

  /**
   * Training / scoring forward pass with a causal mask. tokenIds: [B, T] int32 → logits [B, T, V].
   * Intermediate tensors are freed; the caller owns the result.
   */
  forward(tokenIds: tf.Tensor2D): tf.Tensor3D {
    const [B, T] = tokenIds.shape;
    return tf.tidy(() => tf.reshape(this.head(this.hidden(tokenIds)), [B, T, this.config.vocabSize]) as tf.Tensor3D);
  }

  /**
   * The forward pass up to the output head: tokenIds [B, T] → the final-normed states [B·T, C], which
   * `head` turns into logits. Scoring projects only the positions it reads, a few at a time, so that
   * a long row with a large vocabulary never holds all its logits at once. The caller owns the result.
   */
  hidden(tokenIds: tf.Tensor2D): tf.Tensor2D {
    this.assertAlive();
    const [B, T] = tokenIds.shape;
    const { nHeads: H, nKvHeads: KV, normEps } = this.config;
    return tf.tidy(() => {
      let x = tf.gather(this.params.tokenEmbedding, tf.reshape(tokenIds, [B * T])) as tf.Tensor2D; // [B·T, C]
      const [cos, sin] = this.rope(0, T); // [T, 1, D]
      const mask = causalMask(T, 0, H / KV); // [R·T, T]
      for (const p of this.params.layers) x = this.block(x, p, { batch: B, time: T, cos, sin, mask, cache: null }).x;
      return rmsNorm(x, this.params.finalNorm, normEps) as tf.Tensor2D; // [B·T, C]
    });
  }

  /**
   * One transformer block, as nanoGPT's `Block`: x + attention(RMSNorm(x)), then x + MLP(RMSNorm(x)).
   * Training (`forward`, no cache) and decoding (`step`, batch 1 with this layer's cache) both run it.
   * x: [B·T, C] → x: [B·T, C], and this layer's keys and values, the cached positions first
   * (keysT [B·KV, D, Tk], values [B·KV, Tk, D], Tk = cached + T).
   */
  private block(x: tf.Tensor2D, p: LayerParams, attention: AttentionInputs): { x: tf.Tensor2D; cache: LayerCache } {
    const { nHeads: H, nKvHeads: KV, normEps } = this.config;
    const { batch: B, time: T, cos, sin, mask, cache } = attention;
    const D = this.headDim;
    const R = H / KV;
    // Attention sub-layer.
    const h = rmsNorm(x, p.attnNorm, normEps) as tf.Tensor2D; // [B·T, C]
    const rope = (t: tf.Tensor): tf.Tensor => applyRope(t, cos, sin, this.rotateHalf);
    const project = (w: tf.Variable, bias: tf.Variable | undefined): tf.Tensor2D =>
      bias ? tf.add(tf.matMul(h, w), bias) : tf.matMul(h, w); // [B·T, heads·D]
    // Qwen3 normalises every head of q and k on its own (over D) before RoPE.
    const headNorm = (t: tf.Tensor, gain: tf.Variable | undefined): tf.Tensor => (gain ? rmsNorm(t, gain, normEps) : t);
    const q = rope(headNorm(tf.reshape(project(p.wq, p.bq), [B, T, H, D]), p.qNorm)); // [B, T, H, D]
    const k = rope(headNorm(tf.reshape(project(p.wk, p.bk), [B, T, KV, D]), p.kNorm)); // [B, T, KV, D]
    const v = tf.reshape(project(p.wv, p.bv), [B, T, KV, D]); // [B, T, KV, D]
    // The R query heads of each key/value head stacked along time: [B·KV, R·T, D], scaled by 1/√D.
    const qGrouped = tf.mul(tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [B * KV, R * T, D]), 1 / Math.sqrt(D));
    const newKeysT = tf.reshape(tf.transpose(k, [0, 2, 3, 1]), [B * KV, D, T]) as tf.Tensor3D; // [B·KV, D, T]
    const newValues = tf.reshape(tf.transpose(v, [0, 2, 1, 3]), [B * KV, T, D]) as tf.Tensor3D; // [B·KV, T, D]
    const keysT = cache ? tf.concat([cache.keysT, newKeysT], 2) : newKeysT; // [B·KV, D, Tk]
    const values = cache ? tf.concat([cache.values, newValues], 1) : newValues; // [B·KV, Tk, D]
    const heads = groupedAttention(qGrouped as tf.Tensor3D, keysT, values, mask); // [B·KV, R·T, D]
    // The heads side by side again: [B·T, H·D].
    const merged = tf.reshape(tf.transpose(tf.reshape(heads, [B, H, T, D]), [0, 2, 1, 3]), [B * T, H * D]);
    let out = tf.add(x, tf.matMul(merged as tf.Tensor2D, p.wo)) as tf.Tensor2D; // [B·T, C]
    // MLP sub-layer.
    out = tf.add(out, swiglu(rmsNorm(out, p.ffnNorm, normEps) as tf.Tensor2D, p));
    return { x: out, cache: { keysT, values } };
  }

  /** Output head: [N, C] → logits [N, V]. `headT` ([C, V]) may be passed to avoid re-transposing a tied embedding. */
  head(x: tf.Tensor2D, headT?: tf.Tensor2D): tf.Tensor2D {
    if (headT) return tf.matMul(x, headT);
    if (this.params.output) return tf.matMul(x, this.params.output);
    return tf.matMul(x, this.params.tokenEmbedding, false, true); // tied: x · Eᵀ
  }

  /** The output head as [C, V]: always a new tensor (the transposed embedding when tied), owned by the caller. */
  headMatrix(): tf.Tensor2D {
    return this.params.output
      ? (tf.clone(this.params.output) as tf.Tensor2D)
      : (tf.transpose(this.params.tokenEmbedding) as tf.Tensor2D);
  }

  /**
   * Incremental forward pass for one sequence with a key/value cache: tokens at positions
   * start..start+n−1 attend to the cache (positions 0..start−1) and causally to each other.
   * Returns logits [n, V] and the extended caches (the inputs are not disposed).
   */
  step(
    tokens: number[],
    start: number,
    caches: Array<LayerCache | null>,
    headT?: tf.Tensor2D,
  ): { logits: tf.Tensor2D; caches: LayerCache[] } {
    this.assertAlive();
    const n = tokens.length;
    const { nHeads: H, nKvHeads: KV, normEps } = this.config;
    const L = this.params.layers.length;
    // tidy keeps what it returns: [logits, keysT × L, values × L].
    const kept = tf.tidy(() => {
      let x = tf.gather(this.params.tokenEmbedding, tf.tensor1d(tokens, 'int32')) as tf.Tensor2D; // [n, C]
      const [cos, sin] = this.rope(start, n); // [n, 1, D]
      const mask = n > 1 ? causalMask(n, start, H / KV) : null; // [R·n, start+n]; one new token sees everything
      const newCaches: LayerCache[] = [];
      this.params.layers.forEach((p, l) => {
        const out = this.block(x, p, { batch: 1, time: n, cos, sin, mask, cache: caches[l] });
        x = out.x;
        newCaches.push(out.cache);
      });
      const final = rmsNorm(x, this.params.finalNorm, normEps) as tf.Tensor2D; // [n, C]
      return [this.head(final, headT), ...newCaches.map((c) => c.keysT), ...newCaches.map((c) => c.values)];
    });
    const logits = kept[0] as tf.Tensor2D;
    const newCaches = Array.from({ length: L }, (_, l) => ({
      keysT: kept[1 + l] as tf.Tensor3D,
      values: kept[1 + L + l] as tf.Tensor3D,
    }));
    return { logits, caches: newCaches };
  }

  /**
   * Copy the current values back to format-independent weights (interleaved RoPE rows, [out, in]).
   * Reads synchronously (dataSync): not on the webgpu backend under Node; use toWeightsAsync there.
   */
  toWeights(): LlamaWeights {
    this.assertAlive();
    return this.weightsFrom((v) => v.dataSync() as Float32Array);
  }

  /**
   * toWeights with asynchronous reads (`await t.data()`, every variable requested at once), for
   * backends that cannot read synchronously (webgpu under Node). The same values as toWeights.
   */
  async toWeightsAsync(): Promise<LlamaWeights> {
    this.assertAlive();
    const variables = this.variables;
    const values = await Promise.all(variables.map((v) => v.data() as Promise<Float32Array>));
    const byVariable = new Map(variables.map((v, i) => [v, values[i]]));
    return this.weightsFrom((v) => byVariable.get(v) as Float32Array);
  }

  /** LlamaWeights from each variable's values (tfjs layout), however they were read. */
  private weightsFrom(valuesOf: (v: tf.Variable) => Float32Array): LlamaWeights {
    const { config } = this;
    const qOrder = rotateHalfOrder(config.nHeads, this.headDim);
    const kOrder = rotateHalfOrder(config.nKvHeads, this.headDim);
    const headOrder = rotateHalfOrder(1, this.headDim);
    const read = (v: tf.Variable, rowOrder?: Int32Array, transpose = true): DenseTensor => {
      const data = valuesOf(v);
      if (!transpose) return dense([...v.shape], restored(data, rowOrder));
      const [inDim, outDim] = v.shape as [number, number];
      return fromInOut(data, inDim, outDim, rowOrder);
    };
    const layers: LayerWeights[] = this.params.layers.map((p) => ({
      attnNorm: read(p.attnNorm, undefined, false),
      wq: read(p.wq, qOrder),
      wk: read(p.wk, kOrder),
      wv: read(p.wv),
      wo: read(p.wo),
      ffnNorm: read(p.ffnNorm, undefined, false),
      w1: read(p.w1),
      w2: read(p.w2),
      w3: read(p.w3),
      ...(p.bq && { bq: read(p.bq, qOrder, false) }),
      ...(p.bk && { bk: read(p.bk, kOrder, false) }),
      ...(p.bv && { bv: read(p.bv, undefined, false) }),
      ...(p.qNorm && { qNorm: read(p.qNorm, headOrder, false) }),
      ...(p.kNorm && { kNorm: read(p.kNorm, headOrder, false) }),
    }));
    return {
      config: { ...config },
      tokenEmbedding: read(this.params.tokenEmbedding, undefined, false),
      layers,
      finalNorm: read(this.params.finalNorm, undefined, false),
      output: this.params.output ? read(this.params.output) : undefined,
    };
  }

  /** Free every tensor the model holds. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variables) v.dispose();
    this.ropeCos.dispose();
    this.ropeSin.dispose();
    this.rotateHalf.dispose();
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error('LlamaModel used after dispose()');
  }
}

// ---------------------------------------------------------------------------------------------
// Layout conversions and RoPE tables

/**
 * For each head, the source row (interleaved layout) of each destination row (rotate-half):
 * destination j < D/2 takes row 2j, destination D/2 + j takes row 2j + 1.
 */
export function rotateHalfOrder(nHeads: number, headDim: number): Int32Array {
  const order = new Int32Array(nHeads * headDim);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < half; j++) {
      order[h * headDim + j] = h * headDim + 2 * j;
      order[h * headDim + half + j] = h * headDim + 2 * j + 1;
    }
  }
  return order;
}

/** A vector with element r taken from source element rowOrder[r] (a copy either way). */
function reordered(data: Float32Array, rowOrder?: Int32Array): Float32Array {
  if (!rowOrder) return Float32Array.from(data);
  return Float32Array.from(rowOrder, (source) => data[source]);
}

/** The inverse of reordered: destination element rowOrder[r] ← element r. */
function restored(data: Float32Array, rowOrder?: Int32Array): Float32Array {
  const out = Float32Array.from(data);
  if (rowOrder) rowOrder.forEach((destination, r) => (out[destination] = data[r]));
  return out;
}

/** [out, in] row-major → [in, out], taking source row rowOrder[r] for destination column r. */
function toInOut(t: DenseTensor, rowOrder?: Int32Array): Float32Array {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const source = (rowOrder ? rowOrder[r] : r) * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[source + c];
  }
  return out;
}

/** The inverse of toInOut: [in, out] → [out, in] with destination row rowOrder[r] ← column r. */
function fromInOut(data: Float32Array, inDim: number, outDim: number, rowOrder?: Int32Array): DenseTensor {
  const out = new Float32Array(inDim * outDim);
  for (let r = 0; r < outDim; r++) {
    const destination = (rowOrder ? rowOrder[r] : r) * inDim;
    for (let c = 0; c < inDim; c++) out[destination + c] = data[c * outDim + r];
  }
  return dense([outDim, inDim], out);
}

/**
 * cos/sin of pos · θ^(−2i/D) for positions [0, length), each value rounded to float32 as llama2.c
 * and llama.cpp compute them, laid out [cos_0..cos_{D/2−1}, cos_0..cos_{D/2−1}] per position to
 * match rotate-half. → two [length, D] tensors.
 */
function ropeTables(config: LlamaConfig, length: number): [tf.Tensor2D, tf.Tensor2D] {
  const D = headDim(config);
  const half = D / 2;
  const cos = new Float32Array(length * D);
  const sin = new Float32Array(length * D);
  for (let i = 0; i < half; i++) {
    const frequency = Math.fround(1 / Math.pow(config.ropeTheta, (2 * i) / D));
    for (let pos = 0; pos < length; pos++) {
      const angle = Math.fround(pos * frequency);
      cos[pos * D + i] = cos[pos * D + half + i] = Math.cos(angle);
      sin[pos * D + i] = sin[pos * D + half + i] = Math.sin(angle);
    }
  }
  return [tf.tensor2d(cos, [length, D]), tf.tensor2d(sin, [length, D])];
}

/** R with x·R = rotateHalf(x) = (−x[D/2:], x[:D/2]) for a row vector x of length D. → [D, D]. */
function rotateHalfMatrix(headDim: number): tf.Tensor2D {
  const half = headDim / 2;
  const values = new Float32Array(headDim * headDim);
  for (let j = 0; j < half; j++) {
    values[(j + half) * headDim + j] = -1; // output j ← −x[j + D/2]
    values[j * headDim + j + half] = 1; // output j + D/2 ← x[j]
  }
  return tf.tensor2d(values, [headDim, headDim]);
}
