import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLlamaGguf, writeLlamaGguf } from '../../src/formats/gguf-llama.js';
import { hfConfigJson, parseHfConfig } from '../../src/formats/hf-config.js';
import { interleavedToRotateHalf, rotateHalfToInterleaved, tensorsByKey } from '../../src/formats/llama-tensors.js';
import {
  readHfLlama,
  readSafetensors,
  readSafetensorsHeader,
  writeHfLlama,
  writeSafetensors,
} from '../../src/formats/safetensors.js';
import { haveShared, STORIES260K, stories260K, TOK512 } from '../helpers/shared.js';
import { bitDifferences, loadStories260K, roundingError, tempDir } from './fixtures.js';

const temp = tempDir('safetensors');
afterAll(() => temp.cleanup());

/** Deterministic pseudo-random floats (a small LCG), spread over several binades and signs. */
function randomFloats(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const unit = state / 2 ** 32;
    out[i] = (unit - 0.5) * 2 ** ((i % 9) - 4);
  }
  return out;
}

describe('safetensors, generic', () => {
  it('round-trips F32 exactly, F16 / BF16 within rounding, keeping order, shapes and metadata', () => {
    const values = randomFloats(6 * 7, 1);
    const path = join(temp.dir, 'generic.safetensors');
    writeSafetensors(
      path,
      [
        { name: 'b.f32', shape: [6, 7], dtype: 'F32', data: values },
        { name: 'a.f16', shape: [42], dtype: 'F16', data: values },
        { name: 'c.bf16', shape: [2, 3, 7], dtype: 'BF16', data: values },
      ],
      { format: 'pt', note: 'fireopt test' },
    );
    const header = readSafetensorsHeader(path);
    expect(header.dataOffset % 8).toBe(0);
    expect(header.tensors.map((t) => [t.name, t.dtype])).toEqual([
      ['b.f32', 'F32'],
      ['a.f16', 'F16'],
      ['c.bf16', 'BF16'],
    ]);
    const { metadata, tensors } = readSafetensors(path);
    expect(metadata).toEqual({ format: 'pt', note: 'fireopt test' });
    expect(tensors.get('b.f32')?.data).toEqual(values);
    expect(tensors.get('c.bf16')?.shape).toEqual([2, 3, 7]);
    const maxRelative = (name: string) =>
      Math.max(...values.map((v, i) => Math.abs((tensors.get(name)?.data[i] ?? NaN) - v) / Math.abs(v)));
    expect(maxRelative('a.f16')).toBeLessThanOrEqual(2 ** -11);
    expect(maxRelative('a.f16')).toBeGreaterThan(0);
    expect(maxRelative('c.bf16')).toBeLessThanOrEqual(2 ** -8);
  });
});

describe('RoPE layouts', () => {
  // transformers' convert_llama_weights_to_hf.py, written out index by index:
  //   permute(w) = w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)
  function hfPermuteReference(w: Float32Array, nHeads: number, dim1: number, dim2: number): Float32Array {
    const half = dim1 / nHeads / 2;
    const out = new Float32Array(w.length);
    // out[h][r][i][c] = w[h][i][r][c]  (the transposed view, then flattened)
    for (let h = 0; h < nHeads; h++)
      for (let r = 0; r < 2; r++)
        for (let i = 0; i < half; i++)
          for (let c = 0; c < dim2; c++)
            out[((h * 2 + r) * half + i) * dim2 + c] = w[((h * half + i) * 2 + r) * dim2 + c];
    return out;
  }

  it('matches the permute formula of convert_llama_weights_to_hf and inverts exactly', () => {
    for (const [nHeads, headSize, inDim] of [
      [8, 8, 64],
      [4, 8, 64],
      [2, 16, 5],
      [1, 4, 3],
    ]) {
      const w = randomFloats(nHeads * headSize * inDim, nHeads * 31 + inDim);
      const hf = interleavedToRotateHalf(w, nHeads, inDim);
      expect(hf).toEqual(hfPermuteReference(w, nHeads, nHeads * headSize, inDim));
      expect(hf).not.toEqual(w);
      expect(rotateHalfToInterleaved(hf, nHeads, inDim)).toEqual(w);
    }
  });
});

describe.skipIf(!haveShared(STORIES260K, TOK512))('Hugging Face Llama folders with the real stories260K model', () => {
  const f32Dir = join(temp.dir, 'hf-f32');
  const f16Dir = join(temp.dir, 'hf-f16');
  let stories: ReturnType<typeof loadStories260K>;
  beforeAll(() => {
    stories = loadStories260K();
    writeHfLlama(f32Dir, stories.weights, { vocabulary: stories.vocabulary });
    writeHfLlama(f16Dir, stories.weights, { dtype: 'F16' });
  });

  it('llama2.c → safetensors → read → GGUF → read keeps every F32 tensor bit-identical', () => {
    const hf = readHfLlama(f32Dir);
    expect(hf.weights.config).toEqual(stories.weights.config);
    expect(bitDifferences(stories.weights, hf.weights)).toEqual([]);
    expect(hf.vocabulary).toEqual({ ...stories.vocabulary, pre: 'default' });
    const ggufPath = join(temp.dir, 'from-hf.gguf');
    writeLlamaGguf(ggufPath, hf.weights, stories.vocabulary);
    const gguf = readLlamaGguf(ggufPath);
    expect(gguf.weights.config).toEqual(stories.weights.config);
    expect(bitDifferences(stories.weights, gguf.weights)).toEqual([]);
  });

  it('keeps F16 safetensors within F16 rounding', () => {
    const hf = readHfLlama(f16Dir);
    expect(hf.vocabulary).toBeUndefined();
    const error = roundingError(stories.weights, hf.weights, 2 ** -14);
    expect(error.compared).toBe(260_032);
    expect(error.maxRelative).toBeLessThanOrEqual(2 ** -11);
    expect(error.maxAbsoluteBelowNormal).toBeLessThanOrEqual(2 ** -25);
  });

  it('writes a config.json that reads back to the same config, with transformers-style keys', () => {
    const json: unknown = JSON.parse(readFileSync(join(f32Dir, 'config.json'), 'utf8'));
    expect(json).toMatchObject({
      model_type: 'llama',
      hidden_size: 64,
      intermediate_size: 172,
      num_key_value_heads: 4,
      tie_word_embeddings: true,
      bos_token_id: 1,
      eos_token_id: 2,
    });
    expect(parseHfConfig(json, 'config.json')).toEqual(stories.weights.config);
    expect(
      parseHfConfig(hfConfigJson({ ...stories.weights.config, tiedEmbeddings: false, nKvHeads: 8 }), 'x'),
    ).toMatchObject({ tiedEmbeddings: false, nKvHeads: 8 });
  });

  it('reads a sharded checkpoint through model.safetensors.index.json, ignoring a tied lm_head', () => {
    const dir = join(temp.dir, 'hf-sharded');
    const single = readSafetensors(join(f32Dir, 'model.safetensors')).tensors;
    const names = [...single.keys()];
    const shards = [names.slice(0, 20), names.slice(20)];
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, s) => {
      const file = `model-0000${s + 1}-of-00002.safetensors`;
      const tensors = shard.map((name) => ({
        name,
        shape: single.get(name)?.shape ?? [],
        dtype: 'F32' as const,
        data: single.get(name)?.data ?? new Float32Array(),
      }));
      if (s === 1)
        tensors.push({
          name: 'lm_head.weight',
          shape: [512, 64],
          dtype: 'F32',
          data: stories.weights.tokenEmbedding.data,
        });
      writeSafetensors(join(dir, file), tensors);
      for (const name of shard) weightMap[name] = file;
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    writeFileSync(join(dir, 'config.json'), readFileSync(join(f32Dir, 'config.json')));
    expect(bitDifferences(stories.weights, readHfLlama(dir).weights)).toEqual([]);
  });

  it('is read tensor for tensor by an independent reader (numpy) that applies the HF permutation itself', () => {
    // The reference parses the llama2.c file and both safetensors files on its own, applies
    // transformers' permute() to q/k, and compares exactly (F16: numpy's own float16 rounding).
    const script = String.raw`
import json, struct, sys
import numpy as np
ckpt, f32_path, f16_path = sys.argv[1:4]
raw = open(ckpt, 'rb').read()
dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack('<7i', raw[:28])
tied = vocab > 0; vocab = abs(vocab); hd = dim // heads; kv = kv_heads * hd
floats = np.frombuffer(raw, dtype='<f4', offset=28)
pos = 0
def take(*shape):
    global pos
    n = int(np.prod(shape)); out = floats[pos:pos + n].reshape(shape); pos += n; return out
emb = take(vocab, dim); att = take(layers, dim); wq = take(layers, dim, dim); wk = take(layers, kv, dim)
wv = take(layers, kv, dim); wo = take(layers, dim, dim); ffn = take(layers, dim); w1 = take(layers, hidden, dim)
w2 = take(layers, dim, hidden); w3 = take(layers, hidden, dim); final = take(dim)
def permute(w, n_heads, dim1, dim2):
    return w.reshape(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(0, 2, 1, 3).reshape(dim1, dim2)
expected = {'model.embed_tokens.weight': emb, 'model.norm.weight': final}
for l in range(layers):
    p = 'model.layers.%d.' % l
    expected[p + 'input_layernorm.weight'] = att[l]
    expected[p + 'self_attn.q_proj.weight'] = permute(wq[l], heads, dim, dim)
    expected[p + 'self_attn.k_proj.weight'] = permute(wk[l], kv_heads, kv, dim)
    expected[p + 'self_attn.v_proj.weight'] = wv[l]
    expected[p + 'self_attn.o_proj.weight'] = wo[l]
    expected[p + 'post_attention_layernorm.weight'] = ffn[l]
    expected[p + 'mlp.gate_proj.weight'] = w1[l]
    expected[p + 'mlp.down_proj.weight'] = w2[l]
    expected[p + 'mlp.up_proj.weight'] = w3[l]
report = {}
for label, path, np_dtype in (('f32', f32_path, '<f4'), ('f16', f16_path, '<f2')):
    data = open(path, 'rb').read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop('__metadata__', None)
    body = data[8 + n:]
    mismatched = []
    for name, want in expected.items():
        entry = header.get(name)
        if entry is None or entry['shape'] != list(want.shape):
            mismatched.append(name); continue
        begin, end = entry['data_offsets']
        got = np.frombuffer(body[begin:end], dtype=np_dtype).reshape(want.shape)
        want_cast = want.astype(np_dtype)
        if not np.array_equal(got.view('<u%d' % got.itemsize), want_cast.view('<u%d' % want_cast.itemsize)):
            mismatched.append(name)
    report[label] = {'tensors': len(header), 'compared': len(expected), 'mismatched': mismatched,
                     'dtypes': sorted(set(e['dtype'] for e in header.values())),
                     'data_bytes_used': max(e['data_offsets'][1] for e in header.values()),
                     'data_bytes': len(body), 'header_bytes': n}
print(json.dumps(report))
`;
    const result = spawnSync(
      'python3',
      ['-c', script, stories260K(), join(f32Dir, 'model.safetensors'), join(f16Dir, 'model.safetensors')],
      { encoding: 'utf8' },
    );
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as Record<
      'f32' | 'f16',
      {
        tensors: number;
        compared: number;
        mismatched: string[];
        dtypes: string[];
        data_bytes_used: number;
        data_bytes: number;
        header_bytes: number;
      }
    >;
    for (const [label, dtype] of [
      ['f32', 'F32'],
      ['f16', 'F16'],
    ] as const) {
      expect(report[label]).toMatchObject({ tensors: 47, compared: 47, mismatched: [], dtypes: [dtype] });
      expect(report[label].data_bytes_used).toBe(report[label].data_bytes);
      expect(report[label].header_bytes % 8).toBe(0);
    }
    expect(tensorsByKey(stories.weights).size).toBe(47);
  });
});
