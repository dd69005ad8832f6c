/**
 * safetensors files (https://huggingface.co/docs/safetensors): uint64 little-endian header length N,
 * N bytes of JSON header `{"__metadata__": {str: str}, name: {dtype, shape, data_offsets: [begin, end]}}`
 * (padded with spaces to a multiple of 8), then the tensor bytes, little-endian, offsets relative
 * to the end of the header. Written by hand: the maintained safetensors packages are Python/Rust,
 * and the format is small. The reader checks what the reference implementation checks: header
 * size and JSON, dtypes, that each tensor's byte span matches its shape, and that the spans tile
 * the data section exactly.
 *
 * Hugging Face Llama checkpoints (config.json + model.safetensors, or sharded with
 * model.safetensors.index.json) map to LlamaWeights via `readHfLlama` / `writeHfLlama`, with the
 * RoPE permutation of q_proj / k_proj between HF's rotate-half layout and the interleaved layout
 * fireopt keeps in memory (see model/weights.ts).
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import type { DenseTensor, LlamaWeights } from '../model/weights.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import { writeAtomically } from '../util/atomic.js';
import { decodeFloat32, decodeHalves, encodeHalves, littleEndianBytes } from './half.js';
import { writeVocabOnlyGguf } from './gguf-llama.js';
import { vocabularyFromGguf } from './gguf-vocabulary.js';
import { readHfConfig, writeHfConfig } from './hf-config.js';
import {
  assembleWeights,
  fromRotateHalfLayout,
  hfTensorName,
  sameShape,
  shapeText,
  tensorsByKey,
  toRotateHalfLayout,
} from './llama-tensors.js';

/** Bytes per element of every dtype in the safetensors spec (fireopt reads and writes the float ones). */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** Dtypes fireopt reads into float32 and writes from it. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';
const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/** The reference implementation's limit on the header size. */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte offset of the data in the file. */
  fileOffset: number;
  byteLength: number;
}

export interface SafetensorsFile {
  path: string;
  /** `__metadata__` (string → string), empty when absent. */
  metadata: Record<string, string>;
  /** Tensors in header order. */
  tensors: SafetensorsTensorInfo[];
  dataOffset: number;
}

/** Read and validate a safetensors header (not the tensor data). */
export function readSafetensorsHeader(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new InputError(
      `${path}: cannot open safetensors file (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  try {
    const size = fstatSync(fd).size;
    if (size < 8)
      throw new InputError(`${path}: truncated safetensors file: ${size} bytes, the header length alone is 8`);
    const lengthBytes = Buffer.alloc(8);
    readFully(fd, lengthBytes, 0, path);
    const headerLength = lengthBytes.readBigUInt64LE(0);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new InputError(
        `${path}: not a safetensors file (header length ${headerLength} is over the ${MAX_HEADER_BYTES}-byte limit)`,
      );
    }
    const n = Number(headerLength);
    if (8 + n > size)
      throw new InputError(
        `${path}: truncated safetensors file: the ${n}-byte header runs past the end of the ${size}-byte file`,
      );
    const headerBytes = Buffer.alloc(n);
    readFully(fd, headerBytes, 8, path);
    return parseHeader(headerBytes, path, 8 + n, size);
  } finally {
    closeSync(fd);
  }
}

function parseHeader(headerBytes: Buffer, path: string, dataOffset: number, fileSize: number): SafetensorsFile {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new InputError(`${path}: corrupt safetensors header: not valid UTF-8`);
  }
  if (!text.startsWith('{'))
    throw new InputError(`${path}: not a safetensors file (the header does not start with '{')`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InputError(
      `${path}: corrupt safetensors header: invalid JSON (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (!isRecord(json)) throw new InputError(`${path}: corrupt safetensors header: not a JSON object`);
  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  const dataBytes = fileSize - dataOffset;
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(entry) || !Object.values(entry).every((v) => typeof v === 'string')) {
        throw new InputError(`${path}: corrupt safetensors header: __metadata__ must map strings to strings`);
      }
      Object.assign(metadata, entry);
      continue;
    }
    const bad = (problem: string) => new InputError(`${path}: corrupt safetensors header: tensor '${name}' ${problem}`);
    if (!isRecord(entry)) throw bad('is not an object');
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string') throw bad('has no dtype');
    const elementBytes = DTYPE_BYTES[dtype];
    if (elementBytes === undefined) throw new InputError(`${path}: tensor '${name}' has unknown dtype '${dtype}'`);
    if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isSafeInteger(d) && d >= 0))
      throw bad('has an invalid shape');
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o): o is number => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw bad('has invalid data_offsets');
    }
    const [begin, end] = offsets;
    const elements = shape.reduce((a, b) => a * b, 1);
    if (end < begin) throw bad(`has data_offsets [${begin}, ${end}] that end before they begin`);
    if (end - begin !== elements * elementBytes) {
      throw bad(`spans ${end - begin} bytes, but ${dtype} ${shapeText(shape)} needs ${elements * elementBytes}`);
    }
    if (end > dataBytes) {
      throw new InputError(
        `${path}: truncated safetensors file: tensor '${name}' ends at data ` +
          `byte ${end}, the data section has ${dataBytes}`,
      );
    }
    tensors.push({ name, dtype, shape, fileOffset: dataOffset + begin, byteLength: end - begin });
  }
  // The spans must tile the data section: no gaps, no overlaps, nothing after the last tensor.
  const sorted = [...tensors].sort((a, b) => a.fileOffset - b.fileOffset || a.byteLength - b.byteLength);
  let expected = dataOffset;
  for (const info of sorted) {
    if (info.fileOffset !== expected) {
      throw new InputError(
        `${path}: corrupt safetensors header: tensor '${info.name}' starts at ` +
          `data byte ${info.fileOffset - dataOffset}, expected ${expected - dataOffset} (gap or overlap)`,
      );
    }
    expected += info.byteLength;
  }
  if (expected !== fileSize) {
    throw new InputError(
      `${path}: safetensors file has ${fileSize - expected} bytes after the ` +
        `last tensor (corrupt or not a safetensors file)`,
    );
  }
  return { path, metadata, tensors, dataOffset };
}

/** Read one tensor's data as float32 (F32, F16 and BF16). */
export function readSafetensorsTensor(file: SafetensorsFile, info: SafetensorsTensorInfo): Float32Array {
  if (!FLOAT_DTYPES.includes(info.dtype)) {
    throw new InputError(
      `${file.path}: tensor '${info.name}' has dtype ${info.dtype}; fireopt reads F32, F16 and BF16`,
    );
  }
  const bytes = Buffer.alloc(info.byteLength);
  const fd = openSync(file.path, 'r');
  try {
    readFully(fd, bytes, info.fileOffset, file.path);
  } finally {
    closeSync(fd);
  }
  return info.dtype === 'F32' ? decodeFloat32(bytes) : decodeHalves(bytes, info.dtype as 'F16' | 'BF16');
}

/** Read every tensor of a safetensors file as float32. */
export function readSafetensors(path: string): { metadata: Record<string, string>; tensors: Map<string, DenseTensor> } {
  const file = readSafetensorsHeader(path);
  const tensors = new Map<string, DenseTensor>();
  for (const info of file.tensors)
    tensors.set(info.name, { shape: info.shape, data: readSafetensorsTensor(file, info) });
  return { metadata: file.metadata, tensors };
}

export interface SafetensorsTensorToWrite {
  name: string;
  shape: number[];
  dtype: SafetensorsDtype;
  data: Float32Array;
}

/** Write a safetensors file atomically; tensors are stored in the order given. */
export function writeSafetensors(
  path: string,
  tensors: readonly SafetensorsTensorToWrite[],
  metadata: Record<string, string> = {},
): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const tensor of tensors) {
    if (tensor.name === '__metadata__' || tensor.name in header)
      throw new InputError(`${path}: duplicate or reserved tensor name '${tensor.name}'`);
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (elements !== tensor.data.length)
      throw new InputError(
        `${path}: tensor '${tensor.name}' has ${tensor.data.length} values, ` +
          `shape ${shapeText(tensor.shape)} needs ${elements}`,
      );
    const byteLength = elements * DTYPE_BYTES[tensor.dtype];
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const headerBytes = Buffer.alloc(8 + padded, 0x20);
  headerBytes.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(headerBytes, 8);
  writeAtomically(path, (out) => {
    out.write(headerBytes);
    for (const tensor of tensors)
      out.write(tensor.dtype === 'F32' ? littleEndianBytes(tensor.data) : encodeHalves(tensor.data, tensor.dtype));
  });
}

// ---------------------------------------------------------------------------------------------
// Hugging Face Llama checkpoints.

/** File names inside a Hugging Face model folder. */
export const HF_FILES = {
  config: 'config.json',
  weights: 'model.safetensors',
  index: 'model.safetensors.index.json',
  /**
   * fireopt's own addition: the tokenizer as a vocab-only GGUF (what llama.cpp ships its test
   * vocabularies as), so a folder fireopt writes converts back to GGUF with its tokenizer.
   */
  vocabulary: 'tokenizer.gguf',
} as const;

export interface HfWriteOptions {
  dtype?: SafetensorsDtype;
  /** Written as tokenizer.gguf (and its BOS/EOS ids into config.json) when given. */
  vocabulary?: Vocabulary;
}

/**
 * Write a Hugging Face Llama folder: config.json and model.safetensors (plus tokenizer.gguf when a
 * vocabulary is given). Each file is written atomically; other files in the folder are left alone.
 */
export function writeHfLlama(dir: string, weights: LlamaWeights, options: HfWriteOptions = {}): void {
  const dtype = options.dtype ?? 'F32';
  const { config } = weights;
  const tensors: SafetensorsTensorToWrite[] = [];
  for (const [key, tensor] of tensorsByKey(weights)) {
    tensors.push({
      name: hfTensorName(key),
      shape: tensor.shape,
      dtype,
      data: toRotateHalfLayout(key, tensor.data, config),
    });
  }
  writeSafetensors(join(dir, HF_FILES.weights), tensors, { format: 'pt' });
  const torchDtype = dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16';
  writeHfConfig(join(dir, HF_FILES.config), config, {
    torchDtype,
    bosTokenId: options.vocabulary?.bosId,
    eosTokenId: options.vocabulary?.eosId,
  });
  if (options.vocabulary) writeVocabOnlyGguf(join(dir, HF_FILES.vocabulary), config, options.vocabulary);
}

/** The safetensors files of a HF folder: model.safetensors, or the shards its index names. */
function hfWeightFiles(dir: string): Map<string, SafetensorsFile> {
  const indexPath = join(dir, HF_FILES.index);
  const singlePath = join(dir, HF_FILES.weights);
  const files = new Map<string, SafetensorsFile>();
  if (existsSync(singlePath)) {
    files.set(singlePath, readSafetensorsHeader(singlePath));
    return files;
  }
  if (!existsSync(indexPath)) {
    throw new InputError(
      `${dir}: no ${HF_FILES.weights} or ${HF_FILES.index} in this folder`,
      'HINT: fireopt reads Hugging Face checkpoints saved as safetensors (not pytorch_model.bin)',
    );
  }
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (error) {
    throw new InputError(
      `${indexPath}: cannot read the shard index (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const weightMap = isRecord(index) ? index.weight_map : undefined;
  if (!isRecord(weightMap) || !Object.values(weightMap).every((v) => typeof v === 'string')) {
    throw new InputError(`${indexPath}: shard index has no valid weight_map`);
  }
  for (const shard of new Set(Object.values(weightMap) as string[])) {
    const shardPath = join(dir, shard);
    files.set(shardPath, readSafetensorsHeader(shardPath));
  }
  return files;
}

/**
 * Read a Hugging Face Llama checkpoint: a folder with config.json and model.safetensors (or a shard
 * index), or a .safetensors file with config.json beside it. Shapes are checked against the config.
 */
export function readHfLlama(path: string): { weights: LlamaWeights; vocabulary?: Vocabulary; vocabularyPath?: string } {
  const dir = statSync(path, { throwIfNoEntry: false })?.isDirectory() ? path : dirname(path);
  const configPath = join(dir, HF_FILES.config);
  if (!existsSync(configPath))
    throw new InputError(
      `${path}: no ${HF_FILES.config} beside the safetensors weights`,
      'HINT: a Hugging Face checkpoint folder holds config.json and model.safetensors',
    );
  const config = readHfConfig(configPath);
  const files = dir === path ? hfWeightFiles(dir) : new Map([[path, readSafetensorsHeader(path)]]);
  const located = new Map<string, { file: SafetensorsFile; info: SafetensorsTensorInfo }>();
  for (const file of files.values()) for (const info of file.tensors) located.set(info.name, { file, info });
  const used = new Set<string>();
  const weights = assembleWeights(config, dir, (key, shape) => {
    const name = hfTensorName(key);
    const found = located.get(name);
    if (!found) throw new InputError(`${dir}: missing tensor '${name}' (expected shape ${shapeText(shape)})`);
    used.add(name);
    if (!sameShape(found.info.shape, shape)) {
      throw new InputError(
        `${found.file.path}: tensor '${name}' has shape ` +
          `${shapeText(found.info.shape)}, ${HF_FILES.config} needs ${shapeText(shape)}`,
      );
    }
    return fromRotateHalfLayout(key, readSafetensorsTensor(found.file, found.info), config);
  });
  // A tied model may still store lm_head, and old checkpoints store RoPE inverse frequencies; both
  // are derived data. Anything else (biases, extra heads) is a model fireopt would run wrongly.
  const ignorable = (name: string) => name === 'lm_head.weight' || name.endsWith('.rotary_emb.inv_freq');
  const unexpected = [...located.keys()].filter((name) => !used.has(name) && !ignorable(name));
  if (unexpected.length) {
    throw new InputError(
      `${dir}: unexpected tensors for a plain Llama model: ` +
        `${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ''}`,
    );
  }
  const vocabularyPath = join(dir, HF_FILES.vocabulary);
  return existsSync(vocabularyPath)
    ? { weights, vocabulary: vocabularyFromGguf(vocabularyPath), vocabularyPath }
    : { weights };
}

function readFully(fd: number, into: Buffer, position: number, path: string): void {
  let done = 0;
  while (done < into.length) {
    const read = readSync(fd, into, done, into.length - done, position + done);
    if (read === 0) throw new InputError(`${path}: truncated file: expected ${into.length} bytes at byte ${position}`);
    done += read;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
