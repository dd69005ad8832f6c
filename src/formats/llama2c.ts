/**
 * llama2.c checkpoints, format v0 ("legacy"): 7 little-endian int32 header values
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
 * means the classifier is NOT tied to the embedding), then float32 weights in this order:
 * tok_emb[V,dim], rms_att[L,dim], wq[L,dim,dim], wk[L,kv,dim], wv[L,kv,dim], wo[L,dim,dim],
 * rms_ffn[L,dim], w1[L,hid,dim], w2[L,dim,hid], w3[L,hid,dim], rms_final[dim],
 * freq_cis_real[seq,hs/2], freq_cis_imag[seq,hs/2], then wcls[V,dim] when untied.
 * RoPE rotates adjacent pairs (the interleaved layout fireopt keeps in memory), RMSNorm eps 1e-5.
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../errors.js';
import { configProblems, type LlamaConfig } from '../model/config.js';
import { dense, type DenseTensor, type LayerWeights, type LlamaWeights } from '../model/weights.js';

const HEADER_BYTES = 7 * 4;

/** Read a llama2.c v0 checkpoint; errors name the file and what is wrong. */
export function readLlama2cCheckpoint(path: string): LlamaWeights {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new InputError(`${path}: cannot read checkpoint (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return parseLlama2cCheckpoint(bytes, path);
}

export function parseLlama2cCheckpoint(bytes: Uint8Array, path = '<buffer>'): LlamaWeights {
  if (bytes.byteLength < HEADER_BYTES) {
    throw new InputError(
      `${path}: truncated llama2.c checkpoint: ${bytes.byteLength} bytes, the header alone is ${HEADER_BYTES}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = Array.from({ length: 7 }, (_, i) => view.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = header;
  if (header[0] === 0x616b3432 || header[0] === 0x616b3433) {
    throw new InputError(
      `${path}: this is a llama2.c v1/v2 ("ak42") checkpoint; only the v0 format is supported`,
      'HINT: export with llama2.c `export.py --version 0`',
    );
  }
  const config: LlamaConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(signedVocab),
    maxSeqLen: seqLen,
    normEps: 1e-5,
    ropeTheta: 10000,
    tiedEmbeddings: signedVocab > 0,
  };
  const problems = configProblems(config);
  if (problems.length || dim > 1 << 16 || nLayers > 1024 || config.vocabSize > 1 << 22 || seqLen > 1 << 22) {
    throw new InputError(
      `${path}: not a llama2.c v0 checkpoint (implausible header ` +
        `[${header.join(', ')}]${problems.length ? `: ${problems.join('; ')}` : ''})`,
    );
  }
  const hd = dim / nHeads;
  const kvDim = nKvHeads * hd;
  const V = config.vocabSize;
  const L = nLayers;
  const floatsBeforeCls =
    V * dim +
    L * dim +
    L * dim * dim +
    2 * L * kvDim * dim +
    L * dim * dim +
    L * dim +
    3 * L * hiddenDim * dim +
    dim +
    seqLen * hd;
  const expectedFloats = floatsBeforeCls + (config.tiedEmbeddings ? 0 : V * dim);
  const payloadBytes = bytes.byteLength - HEADER_BYTES;
  if (payloadBytes !== expectedFloats * 4) {
    const verdict = payloadBytes < expectedFloats * 4 ? 'truncated' : 'has trailing bytes';
    throw new InputError(
      `${path}: checkpoint ${verdict}: header [${header.join(', ')}] needs ` +
        `${expectedFloats * 4 + HEADER_BYTES} bytes, file has ${bytes.byteLength}`,
    );
  }
  // Copy the payload once into an aligned Float32Array (the file offset 28 is aligned, but the
  // Buffer's own byteOffset may not be).
  const floats = new Float32Array(expectedFloats);
  new Uint8Array(floats.buffer).set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + expectedFloats * 4));
  let offset = 0;
  const take = (shape: number[]): DenseTensor => {
    const size = shape.reduce((a, b) => a * b, 1);
    const tensor = dense(shape, floats.subarray(offset, offset + size));
    offset += size;
    return tensor;
  };
  const stacked = (shape: number[]): DenseTensor[] => Array.from({ length: L }, () => take(shape));
  const tokenEmbedding = take([V, dim]);
  const attnNorm = stacked([dim]);
  const wq = stacked([dim, dim]);
  const wk = stacked([kvDim, dim]);
  const wv = stacked([kvDim, dim]);
  const wo = stacked([dim, dim]);
  const ffnNorm = stacked([dim]);
  const w1 = stacked([hiddenDim, dim]);
  const w2 = stacked([dim, hiddenDim]);
  const w3 = stacked([hiddenDim, dim]);
  const finalNorm = take([dim]);
  offset += seqLen * hd; // freq_cis_real and freq_cis_imag: recomputed from ropeTheta instead
  const output = config.tiedEmbeddings ? undefined : take([V, dim]);
  const layers: LayerWeights[] = Array.from({ length: L }, (_, l) => ({
    attnNorm: attnNorm[l],
    wq: wq[l],
    wk: wk[l],
    wv: wv[l],
    wo: wo[l],
    ffnNorm: ffnNorm[l],
    w1: w1[l],
    w2: w2[l],
    w3: w3[l],
  }));
  return { config, tokenEmbedding, layers, finalNorm, output };
}
