/**
 * GGUF (llama.cpp's model file), version 2 and 3, little-endian:
 *   magic "GGUF", uint32 version, uint64 tensor count, uint64 metadata count,
 *   metadata key/value pairs, tensor infos {name, n_dims, dims (innermost first), type, offset},
 *   padding to `general.alignment` (32), then tensor data (each tensor at its aligned offset).
 * The reader here is complete for metadata and F32/F16/BF16 tensors; the writer lives in gguf-write.ts.
 */
import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { InputError } from '../errors.js';
import { decodeFloat32, decodeHalves } from './half.js';
import { dequantize, isQuantizedType, QUANT_BLOCKS, quantizedByteLength } from './gguf-quants.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian uint32

/** GGUF metadata value types. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** ggml tensor types fireopt reads and writes (others are reported by name). */
export const GgmlType = { F32: 0, F16: 1, BF16: 30 } as const;
const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  6: 'Q5_0',
  7: 'Q5_1',
  8: 'Q8_0',
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  30: 'BF16',
  34: 'TQ1_0',
  35: 'TQ2_0',
  39: 'MXFP4',
};
/** A tensor type llama.cpp defines (whether or not fireopt reads it). */
export function isKnownGgmlType(type: number): boolean {
  return type in GGML_TYPE_NAMES;
}
export function ggmlTypeName(type: number): string {
  return GGML_TYPE_NAMES[type] ?? `type ${type}`;
}

export type GgufValue = number | bigint | boolean | string | GgufValue[] | GgufTypedArray;
/** Large numeric arrays (token scores, token types) stay typed. */
export type GgufTypedArray =
  | Float32Array
  | Int32Array
  | Uint32Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Float64Array;

export interface GgufTensorInfo {
  name: string;
  /** Dimensions in GGUF order: innermost (contiguous) first, i.e. reversed from PyTorch's shape. */
  dims: number[];
  type: number;
  /** Absolute byte offset of the data in the file. */
  fileOffset: number;
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataOffset: number;
}

const MAX_STRING_BYTES = 1 << 28;
const MAX_ARRAY_LENGTH = 1 << 28;

/** Sequential little-endian reader over a file, with bounds checks that name the file. */
class FileCursor {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0; // file offset of buffer[0]
  offset = 0;
  readonly size: number;

  constructor(
    private readonly fd: number,
    readonly path: string,
  ) {
    this.size = fstatSync(fd).size;
  }

  private ensure(bytes: number, what: string): void {
    if (this.offset + bytes > this.size) {
      throw new InputError(
        `${this.path}: truncated GGUF: ${what} at byte ${this.offset} needs ${bytes} bytes, the file has ${this.size}`,
      );
    }
    const rel = this.offset - this.bufferStart;
    if (rel >= 0 && rel + bytes <= this.buffer.length) return;
    const length = Math.min(Math.max(bytes, 1 << 20), this.size - this.offset);
    this.buffer = Buffer.alloc(length);
    readSync(this.fd, this.buffer, 0, length, this.offset);
    this.bufferStart = this.offset;
  }

  private at(bytes: number, what: string): number {
    this.ensure(bytes, what);
    const rel = this.offset - this.bufferStart;
    this.offset += bytes;
    return rel;
  }

  u8(what: string): number {
    const rel = this.at(1, what);
    return this.buffer.readUInt8(rel);
  }
  i8(what: string): number {
    const rel = this.at(1, what);
    return this.buffer.readInt8(rel);
  }
  u16(what: string): number {
    const rel = this.at(2, what);
    return this.buffer.readUInt16LE(rel);
  }
  i16(what: string): number {
    const rel = this.at(2, what);
    return this.buffer.readInt16LE(rel);
  }
  u32(what: string): number {
    const rel = this.at(4, what);
    return this.buffer.readUInt32LE(rel);
  }
  i32(what: string): number {
    const rel = this.at(4, what);
    return this.buffer.readInt32LE(rel);
  }
  f32(what: string): number {
    const rel = this.at(4, what);
    return this.buffer.readFloatLE(rel);
  }
  f64(what: string): number {
    const rel = this.at(8, what);
    return this.buffer.readDoubleLE(rel);
  }
  u64(what: string): bigint {
    const rel = this.at(8, what);
    return this.buffer.readBigUInt64LE(rel);
  }
  i64(what: string): bigint {
    const rel = this.at(8, what);
    return this.buffer.readBigInt64LE(rel);
  }

  /** A uint64 count that must fit comfortably in a JS number. */
  count(what: string, max: number): number {
    const value = this.u64(what);
    if (value > BigInt(max)) throw new InputError(`${this.path}: corrupt GGUF: ${what} is ${value} (more than ${max})`);
    return Number(value);
  }

  string(what: string): string {
    const length = this.count(`${what} length`, MAX_STRING_BYTES);
    const rel = this.at(length, what);
    return this.buffer.toString('utf8', rel, rel + length);
  }

  bytes(length: number, what: string): Uint8Array {
    const rel = this.at(length, what);
    return this.buffer.subarray(rel, rel + length);
  }
}

/** Read a GGUF file's header, metadata and tensor table (not the tensor data). */
export function readGguf(path: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new InputError(`${path}: cannot open GGUF file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  try {
    const cursor = new FileCursor(fd, path);
    const magic = cursor.u32('magic');
    if (magic !== GGUF_MAGIC) {
      throw new InputError(
        `${path}: not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF")`,
      );
    }
    const version = cursor.u32('version');
    if (version !== 2 && version !== 3) {
      throw new InputError(`${path}: unsupported GGUF version ${version} (fireopt reads versions 2 and 3)`);
    }
    const tensorCount = cursor.count('tensor count', 1 << 20);
    const metadataCount = cursor.count('metadata count', 1 << 20);
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < metadataCount; i++) {
      const key = cursor.string(`metadata key ${i}`);
      const type = cursor.u32(`type of metadata '${key}'`);
      metadata.set(key, readValue(cursor, type, key));
    }
    const alignmentValue = metadata.get('general.alignment');
    const alignment = typeof alignmentValue === 'number' && alignmentValue > 0 ? alignmentValue : 32;
    const infos: Array<Omit<GgufTensorInfo, 'fileOffset' | 'byteLength'> & { relOffset: bigint }> = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = cursor.string(`tensor ${i} name`);
      const nDims = cursor.u32(`tensor '${name}' rank`);
      if (nDims < 1 || nDims > 4) throw new InputError(`${path}: corrupt GGUF: tensor '${name}' has rank ${nDims}`);
      const dims = Array.from({ length: nDims }, () => cursor.count(`tensor '${name}' dimension`, 2 ** 31));
      const type = cursor.u32(`tensor '${name}' type`);
      const relOffset = cursor.u64(`tensor '${name}' offset`);
      infos.push({ name, dims, type, relOffset });
    }
    const dataOffset = Math.ceil(cursor.offset / alignment) * alignment;
    const tensors: GgufTensorInfo[] = infos.map(({ relOffset, ...info }) => {
      const elements = info.dims.reduce((a, b) => a * b, 1);
      const elementBytes =
        info.type === GgmlType.F32 ? 4 : info.type === GgmlType.F16 || info.type === GgmlType.BF16 ? 2 : NaN;
      const fileOffset = dataOffset + Number(relOffset);
      const byteLength = isQuantizedType(info.type)
        ? quantizedByteLength(info.type, elements)
        : elements * elementBytes;
      if (Number.isFinite(byteLength) && fileOffset + byteLength > cursor.size) {
        throw new InputError(
          `${path}: truncated GGUF: tensor '${info.name}' ends at byte ` +
            `${fileOffset + byteLength}, the file has ${cursor.size}`,
        );
      }
      return { ...info, fileOffset, byteLength };
    });
    return { path, version, metadata, tensors, alignment, dataOffset };
  } finally {
    closeSync(fd);
  }
}

function readValue(cursor: FileCursor, type: number, key: string): GgufValue {
  switch (type) {
    case GgufValueType.UINT8:
      return cursor.u8(key);
    case GgufValueType.INT8:
      return cursor.i8(key);
    case GgufValueType.UINT16:
      return cursor.u16(key);
    case GgufValueType.INT16:
      return cursor.i16(key);
    case GgufValueType.UINT32:
      return cursor.u32(key);
    case GgufValueType.INT32:
      return cursor.i32(key);
    case GgufValueType.FLOAT32:
      return cursor.f32(key);
    case GgufValueType.FLOAT64:
      return cursor.f64(key);
    case GgufValueType.BOOL:
      return cursor.u8(key) !== 0;
    case GgufValueType.STRING:
      return cursor.string(key);
    case GgufValueType.UINT64: {
      const value = cursor.u64(key);
      return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
    }
    case GgufValueType.INT64: {
      const value = cursor.i64(key);
      return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
        ? Number(value)
        : value;
    }
    case GgufValueType.ARRAY: {
      const itemType = cursor.u32(`${key} item type`);
      const length = cursor.count(`${key} array length`, MAX_ARRAY_LENGTH);
      const typed = typedArrayFor(itemType, length);
      if (typed) {
        const bytes = cursor.bytes(length * typed.BYTES_PER_ELEMENT, key);
        new Uint8Array(typed.buffer).set(bytes);
        return typed;
      }
      const items: GgufValue[] = [];
      for (let i = 0; i < length; i++) items.push(readValue(cursor, itemType, key));
      return items;
    }
    default:
      throw new InputError(`${cursor.path}: corrupt GGUF: metadata '${key}' has unknown value type ${type}`);
  }
}

function typedArrayFor(type: number, length: number): GgufTypedArray | undefined {
  switch (type) {
    case GgufValueType.UINT8:
      return new Uint8Array(length);
    case GgufValueType.INT8:
      return new Int8Array(length);
    case GgufValueType.UINT16:
      return new Uint16Array(length);
    case GgufValueType.INT16:
      return new Int16Array(length);
    case GgufValueType.UINT32:
      return new Uint32Array(length);
    case GgufValueType.INT32:
      return new Int32Array(length);
    case GgufValueType.FLOAT32:
      return new Float32Array(length);
    case GgufValueType.FLOAT64:
      return new Float64Array(length);
    default:
      return undefined;
  }
}

/** Throw a named error unless readGgufTensor can read this tensor (IQ*, TQ*, integer types are refused by name). */
export function assertReadableTensor(path: string, info: GgufTensorInfo): void {
  const plain = info.type === GgmlType.F32 || info.type === GgmlType.F16 || info.type === GgmlType.BF16;
  if (!plain && !isQuantizedType(info.type)) {
    const typeText = isKnownGgmlType(info.type)
      ? `type ${ggmlTypeName(info.type)}`
      : `unknown tensor type ${info.type} (corrupt file?)`;
    throw new InputError(
      `${path}: tensor '${info.name}' has ${typeText}, which fireopt does not read`,
      `fireopt reads F32, F16, BF16, ${Object.values(QUANT_BLOCKS)
        .map((b) => b.name)
        .join(', ')}:` + ' requantize the model to one of them (llama-quantize)',
    );
  }
  if (!Number.isFinite(info.byteLength)) {
    throw new InputError(`${path}: tensor '${info.name}' (${ggmlTypeName(info.type)}) is not a whole number of blocks`);
  }
}

/** Read one tensor's data as float32: F32, F16, BF16, and the quantized types of gguf-quants.ts, dequantized. */
export function readGgufTensor(file: GgufFile, info: GgufTensorInfo): Float32Array {
  assertReadableTensor(file.path, info);
  const fd = openSync(file.path, 'r');
  try {
    const bytes = Buffer.alloc(info.byteLength);
    let done = 0;
    while (done < info.byteLength) {
      const read = readSync(fd, bytes, done, info.byteLength - done, info.fileOffset + done);
      if (read === 0) throw new InputError(`${file.path}: truncated GGUF: tensor '${info.name}' data ends early`);
      done += read;
    }
    if (info.type === GgmlType.F32) return decodeFloat32(bytes);
    if (isQuantizedType(info.type)) return dequantize(info.type, bytes, `${file.path}: tensor '${info.name}'`);
    return decodeHalves(bytes, info.type === GgmlType.F16 ? 'F16' : 'BF16');
  } finally {
    closeSync(fd);
  }
}
