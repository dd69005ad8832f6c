/**
 * Every broken input names the file and the problem, as an InputError (exit code 2 in the CLI).
 * Each case starts from a good file fireopt wrote from the real stories260K model and breaks one thing.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { readGguf } from '../../src/formats/gguf.js';
import { readLlamaGguf, writeLlamaGguf } from '../../src/formats/gguf-llama.js';
import { writeGguf } from '../../src/formats/gguf-write.js';
import { readHfConfig } from '../../src/formats/hf-config.js';
import { ggufTensorName, tensorsByKey } from '../../src/formats/llama-tensors.js';
import { loadModel, readTokenizerFile } from '../../src/formats/load-model.js';
import { readHfLlama, readSafetensors, readSafetensorsHeader, writeHfLlama } from '../../src/formats/safetensors.js';
import { haveShared, sharedPath, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';
import { loadStories260K, tempDir } from './fixtures.js';

const temp = tempDir('corrupt');
afterAll(() => temp.cleanup());
const haveStories = haveShared(STORIES260K, TOK512);
const LLAMA_SPM_VOCAB = 'models/vocab/ggml-vocab-llama-spm.gguf';
const GPT2_VOCAB = 'models/vocab/ggml-vocab-gpt-2.gguf';
const goodGguf = join(temp.dir, 'good.gguf');
const goodHf = join(temp.dir, 'good-hf');
const goodSafetensors = join(goodHf, 'model.safetensors');
let stories: ReturnType<typeof loadStories260K>;
beforeAll(() => {
  stories = loadStories260K();
  writeLlamaGguf(goodGguf, stories.weights, stories.vocabulary);
  writeHfLlama(goodHf, stories.weights);
});

let counter = 0;
/** Write `bytes` to a new file in the temp folder and return its path. */
function broken(bytes: Uint8Array, name = 'broken'): string {
  const path = join(temp.dir, `${name}-${counter++}`);
  writeFileSync(path, bytes);
  return path;
}

/** Expect an InputError whose message starts with the path and matches `problem`. */
function expectInputError(run: () => unknown, path: string, problem: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(InputError);
  const message = (caught as InputError).message;
  expect(message.startsWith(path)).toBe(true);
  expect(message).toMatch(problem);
}

/** Byte offset of a GGUF tensor-info's type field (name, rank, dims, then type). */
function ggufTypeOffset(bytes: Buffer, tensorName: string, rank: number): number {
  const nameBytes = Buffer.from(tensorName);
  const at = bytes.indexOf(nameBytes);
  if (at < 8) throw new Error(`tensor name ${tensorName} not found`);
  return at + nameBytes.length + 4 + 8 * rank;
}

describe.skipIf(!haveStories)('GGUF inputs', () => {
  let good: Buffer;
  beforeAll(() => {
    good = readFileSync(goodGguf);
  });

  it('wrong magic', () => {
    const bytes = Buffer.from(good);
    bytes.write('GGML', 0);
    const path = broken(bytes);
    expectInputError(() => readLlamaGguf(path), path, /not a GGUF file \(magic 0x4c4d4747/);
  });

  it('unsupported version', () => {
    const bytes = Buffer.from(good);
    bytes.writeUInt32LE(4, 4);
    const path = broken(bytes);
    expectInputError(() => readLlamaGguf(path), path, /unsupported GGUF version 4/);
  });

  it('truncated inside the metadata and inside the tensor data', () => {
    const inMetadata = broken(good.subarray(0, 5000));
    expectInputError(
      () => readLlamaGguf(inMetadata),
      inMetadata,
      /truncated GGUF: .* at byte \d+ needs \d+ bytes, the file has 5000/,
    );
    const inData = broken(good.subarray(0, good.length - 100));
    expectInputError(
      () => readLlamaGguf(inData),
      inData,
      /truncated GGUF: tensor 'output_norm\.weight' ends at byte \d+, the file has \d+/,
    );
  });

  it('implausible counts', () => {
    const bytes = Buffer.from(good);
    bytes.writeBigUInt64LE(1n << 40n, 8);
    const path = broken(bytes);
    expectInputError(() => readGguf(path), path, /corrupt GGUF: tensor count is 1099511627776/);
  });

  it('quantized types fireopt does not read (IQ*, TQ*) and unknown tensor types, by name', () => {
    for (const [type, name] of [
      [16, 'IQ2_XXS'],
      [35, 'TQ2_0'],
    ] as const) {
      const quantized = Buffer.from(good);
      quantized.writeUInt32LE(type, ggufTypeOffset(quantized, 'blk.0.attn_q.weight', 2));
      const quantizedPath = broken(quantized);
      expectInputError(
        () => readLlamaGguf(quantizedPath),
        quantizedPath,
        new RegExp(`tensor 'blk\\.0\\.attn_q\\.weight' has type ${name}, which fireopt does not read`),
      );
    }
    const unknown = Buffer.from(good);
    unknown.writeUInt32LE(99, ggufTypeOffset(unknown, 'blk.2.ffn_up.weight', 2));
    const unknownPath = broken(unknown);
    expectInputError(
      () => readLlamaGguf(unknownPath),
      unknownPath,
      /tensor 'blk\.2\.ffn_up\.weight' has unknown tensor type 99/,
    );
  });

  it('a tensor shape that does not match the metadata', () => {
    const bytes = Buffer.from(good);
    const typeAt = ggufTypeOffset(bytes, 'blk.1.attn_k.weight', 2);
    bytes.writeBigUInt64LE(16n, typeAt - 8); // [32, 64] → [16, 64]: same file, wrong shape
    const path = broken(bytes);
    expectInputError(
      () => readLlamaGguf(path),
      path,
      /tensor 'blk\.1\.attn_k\.weight' has shape \[16, 64\], the metadata needs \[32, 64\]/,
    );
  });

  it.skipIf(!haveShared(LLAMA_SPM_VOCAB, GPT2_VOCAB))(
    'a missing tensor, an extra tensor, a vocab-only file and another architecture',
    () => {
      const file = readGguf(goodGguf);
      const entries = [...tensorsByKey(stories.weights)];
      const metadata = () => {
        // Rebuild the metadata entries from the good file's values with their written types.
        const entriesOut = [] as Parameters<typeof writeGguf>[1][number][];
        for (const [key, value] of file.metadata) {
          if (typeof value === 'string') entriesOut.push({ key, type: 'string', value });
          else if (typeof value === 'boolean') entriesOut.push({ key, type: 'bool', value });
          else if (typeof value === 'number')
            entriesOut.push({
              key,
              type: key.endsWith('epsilon') || key.endsWith('freq_base') ? 'float32' : 'uint32',
              value,
            });
          else if (value instanceof Float32Array) entriesOut.push({ key, type: 'float32[]', value });
          else if (value instanceof Int32Array) entriesOut.push({ key, type: 'int32[]', value });
          else if (Array.isArray(value)) entriesOut.push({ key, type: 'string[]', value: value.map(String) });
        }
        return entriesOut;
      };
      const tensors = entries.map(([key, t]) => ({
        name: ggufTensorName(key),
        shape: t.shape,
        type: 'F32' as const,
        data: t.data,
      }));
      const missingPath = join(temp.dir, 'missing.gguf');
      writeGguf(
        missingPath,
        metadata(),
        tensors.filter((t) => t.name !== 'blk.4.ffn_up.weight'),
      );
      expectInputError(
        () => readLlamaGguf(missingPath),
        missingPath,
        /missing tensor 'blk\.4\.ffn_up\.weight' \(expected shape \[172, 64\]\)/,
      );
      const extraPath = join(temp.dir, 'extra.gguf');
      writeGguf(extraPath, metadata(), [
        ...tensors,
        { name: 'rope_freqs.weight', shape: [4], type: 'F32', data: new Float32Array(4) },
      ]);
      expectInputError(
        () => readLlamaGguf(extraPath),
        extraPath,
        /unexpected tensors for a llama model: rope_freqs\.weight/,
      );
      const vocabOnly = sharedPath(LLAMA_SPM_VOCAB);
      expectInputError(() => readLlamaGguf(vocabOnly), vocabOnly, /vocab-only GGUF \(no tensors\)/);
      const gpt2 = sharedPath(GPT2_VOCAB);
      expectInputError(
        () => readLlamaGguf(gpt2),
        gpt2,
        /GGUF architecture is 'gpt2'; fireopt reads 'llama', 'qwen2', 'qwen3' models/,
      );
    },
  );
});

describe.skipIf(!haveStories)('safetensors inputs', () => {
  let good: Buffer;
  let header: Record<string, unknown>;
  let body: Buffer;
  beforeAll(() => {
    good = readFileSync(goodSafetensors);
    const headerLength = Number(good.readBigUInt64LE(0));
    header = JSON.parse(good.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
    body = good.subarray(8 + headerLength);
  });
  /** A file with an edited header (re-padded) and the same data section. */
  function withHeader(
    edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void,
  ): string {
    const copy = structuredClone(header) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
    edit(copy);
    const json = Buffer.from(JSON.stringify(copy));
    const padded = Buffer.alloc(Math.ceil(json.length / 8) * 8, 0x20);
    json.copy(padded);
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(padded.length));
    return broken(Buffer.concat([length, padded, body]), 'edited.safetensors');
  }

  it('truncated: too short for the header length, a header past the end, data cut short', () => {
    const tiny = broken(good.subarray(0, 5));
    expectInputError(() => readSafetensorsHeader(tiny), tiny, /truncated safetensors file: 5 bytes/);
    const headerCut = broken(good.subarray(0, 100));
    expectInputError(
      () => readSafetensorsHeader(headerCut),
      headerCut,
      /truncated safetensors file: the \d+-byte header runs past the end of the 100-byte file/,
    );
    const dataCut = broken(good.subarray(0, good.length - 4));
    expectInputError(
      () => readSafetensors(dataCut),
      dataCut,
      /truncated safetensors file: tensor 'model\.norm\.weight' ends at data byte \d+, the data section has \d+/,
    );
  });

  it('not a safetensors file: huge header length, no JSON object, invalid JSON', () => {
    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(1n << 40n, 0);
    const hugePath = broken(huge);
    expectInputError(
      () => readSafetensorsHeader(hugePath),
      hugePath,
      /not a safetensors file \(header length 1099511627776 is over/,
    );
    const noBrace = Buffer.from(good);
    noBrace[8] = 0x5b; // '['
    const noBracePath = broken(noBrace);
    expectInputError(
      () => readSafetensorsHeader(noBracePath),
      noBracePath,
      /not a safetensors file \(the header does not start with '\{'\)/,
    );
    const badJson = Buffer.from(good);
    badJson[badJson.indexOf(':', 8)] = 0x3b; // the first ':' of the header becomes ';'
    const badJsonPath = broken(badJson);
    expectInputError(() => readSafetensorsHeader(badJsonPath), badJsonPath, /corrupt safetensors header: invalid JSON/);
  });

  it('unknown and unsupported dtypes', () => {
    const unknown = withHeader((h) => void (h['model.norm.weight'].dtype = 'Q32'));
    expectInputError(
      () => readSafetensorsHeader(unknown),
      unknown,
      /tensor 'model\.norm\.weight' has unknown dtype 'Q32'/,
    );
    const integer = withHeader((h) => void (h['model.norm.weight'].dtype = 'I32'));
    expectInputError(
      () => readSafetensors(integer),
      integer,
      /tensor 'model\.norm\.weight' has dtype I32; fireopt reads F32, F16 and BF16/,
    );
  });

  it('offsets that do not match the shape, gaps, and trailing bytes', () => {
    const wrongSpan = withHeader((h) => void (h['model.norm.weight'].shape = [65]));
    expectInputError(
      () => readSafetensorsHeader(wrongSpan),
      wrongSpan,
      /tensor 'model\.norm\.weight' spans 256 bytes, but F32 \[65\] needs 260/,
    );
    const overlap = withHeader((h) => {
      const [begin, end] = h['model.norm.weight'].data_offsets;
      h['model.norm.weight'].data_offsets = [begin - 4, end - 4];
    });
    expectInputError(
      () => readSafetensorsHeader(overlap),
      overlap,
      /starts at data byte \d+, expected \d+ \(gap or overlap\)/,
    );
    const trailing = broken(Buffer.concat([good, Buffer.alloc(16)]));
    expectInputError(() => readSafetensorsHeader(trailing), trailing, /has 16 bytes after the last tensor/);
  });

  it('shapes that do not match config.json, missing tensors, extra tensors', () => {
    const folder = (name: string, file: string) => {
      const dir = join(temp.dir, name);
      mkdirSync(dir, { recursive: true });
      copyFileSync(join(goodHf, 'config.json'), join(dir, 'config.json'));
      copyFileSync(file, join(dir, 'model.safetensors'));
      return dir;
    };
    const reshaped = folder(
      'reshaped',
      withHeader((h) => void (h['model.layers.0.self_attn.q_proj.weight'].shape = [32, 128])),
    );
    expectInputError(
      () => readHfLlama(reshaped),
      join(reshaped, 'model.safetensors'),
      /tensor 'model\.layers\.0\.self_attn\.q_proj\.weight' has shape \[32, 128\], config\.json needs \[64, 64\]/,
    );
    const missing = folder(
      'missing',
      withHeader((h) => {
        const { data_offsets: offsets } = h['model.norm.weight'];
        delete h['model.norm.weight'];
        h['model.norm.bias'] = { dtype: 'F32', shape: [64], data_offsets: offsets };
      }),
    );
    expectInputError(
      () => readHfLlama(missing),
      missing,
      /missing tensor 'model\.norm\.weight' \(expected shape \[64\]\)/,
    );
    // A zero-size bias keeps the data section tiled, so only the Llama mapping can object.
    const extra = folder(
      'extra',
      withHeader(
        (h) => void (h['model.layers.0.self_attn.q_proj.bias'] = { dtype: 'F32', shape: [0], data_offsets: [0, 0] }),
      ),
    );
    expectInputError(
      () => readHfLlama(extra),
      extra,
      /unexpected tensors for a plain Llama model: model\.layers\.0\.self_attn\.q_proj\.bias/,
    );
  });

  it('config.json problems are listed together, each with its key', () => {
    const path = join(temp.dir, 'bad-config.json');
    const config = JSON.parse(readFileSync(join(goodHf, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(
      path,
      JSON.stringify({
        ...config,
        hidden_size: undefined,
        num_attention_heads: 'eight',
        rope_scaling: { type: 'linear' },
      }),
    );
    expectInputError(() => readHfConfig(path), path, /hidden_size: .*\n.*num_attention_heads: /);
    writeFileSync(
      path,
      JSON.stringify({ ...config, model_type: 'mistral', rope_scaling: { type: 'linear' }, num_key_value_heads: 3 }),
    );
    expectInputError(
      () => readHfConfig(path),
      path,
      /model_type is 'mistral'.*\n.*rope_scaling is not supported\n.*nHeads 8 is not divisible by nKvHeads 3/,
    );
    writeFileSync(path, '{"hidden_size": 64,');
    expectInputError(() => readHfConfig(path), path, /config is not valid JSON/);
    const noConfig = join(temp.dir, 'no-config');
    mkdirSync(noConfig);
    expectInputError(() => readHfLlama(noConfig), noConfig, /no config\.json beside the safetensors weights/);
  });
});

describe.skipIf(!haveStories)('checkpoint detection and tokenizer files', () => {
  it.skipIf(!haveShared(GPT2_VOCAB))('llama2.c v1 magic, a tokenizer of the wrong size, and a missing path', () => {
    const v1 = Buffer.from(readFileSync(stories260K()));
    v1.writeUInt32LE(0x616b3432, 0); // llama2.c export.py's v1 magic, "ak42" as a uint32
    const v1Path = broken(v1, 'v1.bin');
    expectInputError(
      () => loadModel(v1Path),
      v1Path,
      /llama2\.c v1\/v2 \("ak42"\) checkpoint; only the v0 format is supported/,
    );
    expectInputError(
      () => readTokenizerFile(tok512(), 600),
      tok512(),
      /truncated llama2\.c tokenizer: token 512 of 600/,
    );
    const vocab = sharedPath(GPT2_VOCAB);
    expectInputError(
      () => loadModel(stories260K(), { tokenizer: vocab }),
      vocab,
      /the tokenizer has 50257 tokens but the checkpoint .* has a vocabulary of 512/,
    );
    expectInputError(
      () => loadModel('/nonexistent/model.bin'),
      '/nonexistent/model.bin',
      /no such checkpoint file or folder/,
    );
  });
});
