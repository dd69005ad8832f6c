/**
 * GGUF v3 writer (the layout is described in gguf.ts): header, typed metadata, tensor table, then
 * each tensor's data at a 32-byte aligned offset. Written by hand because no maintained JavaScript
 * library writes GGUF. Metadata values carry their GGUF type explicitly, since a JavaScript number
 * could be any of GGUF's eight numeric types and llama.cpp checks them (e.g. uint32 for counts,
 * float32 for epsilons). The llama-architecture mapping lives in gguf-llama.ts.
 */
import { InputError } from '../errors.js';
import { writeAtomically } from '../util/atomic.js';
import { GGUF_MAGIC, GgmlType, GgufValueType } from './gguf.js';
import { quantizedByteLength } from './gguf-quants.js';
import { encodeHalves, littleEndianBytes } from './half.js';

export const GGUF_WRITE_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** One metadata key/value with its GGUF type. */
export type GgufMetadataEntry =
  | { key: string; type: 'string'; value: string }
  | { key: string; type: 'uint32' | 'int32' | 'float32' | 'uint64'; value: number }
  | { key: string; type: 'bool'; value: boolean }
  | { key: string; type: 'string[]'; value: readonly string[] }
  | { key: string; type: 'float32[]' | 'int32[]'; value: ArrayLike<number> };

/** Tensor data types fireopt writes. */
export type GgufWriteType = 'F32' | 'F16' | 'BF16';

export type GgufTensorToWrite = GgufFloatTensor | GgufEncodedTensor;

interface GgufFloatTensor {
  name: string;
  /** PyTorch order, outermost first (e.g. [out, in]); written reversed, as GGUF wants. */
  shape: number[];
  type: GgufWriteType;
  data: Float32Array;
}

/** A tensor already encoded in a ggml block-quantized type (gguf-quants.ts), written byte for byte. */
interface GgufEncodedTensor {
  name: string;
  shape: number[];
  ggmlType: number;
  encoded: Uint8Array;
}

/** The tensor's data as it goes into the file. */
function tensorBytes(tensor: GgufTensorToWrite): Uint8Array {
  if ('encoded' in tensor) return tensor.encoded;
  return tensor.type === 'F32' ? littleEndianBytes(tensor.data) : encodeHalves(tensor.data, tensor.type);
}

/** Write a GGUF v3 file atomically. */
export function writeGguf(
  path: string,
  metadata: readonly GgufMetadataEntry[],
  tensors: readonly GgufTensorToWrite[],
): void {
  const names = new Set<string>();
  for (const tensor of tensors) {
    if (names.has(tensor.name)) throw new InputError(`${path}: duplicate GGUF tensor name '${tensor.name}'`);
    names.add(tensor.name);
    const size = tensor.shape.reduce((a, b) => a * b, 1);
    if ('encoded' in tensor) {
      const needed = quantizedByteLength(tensor.ggmlType, size);
      if (tensor.encoded.length !== needed) {
        throw new InputError(
          `${path}: tensor '${tensor.name}' has ${tensor.encoded.length} bytes,` +
            ` shape [${tensor.shape}] of ggml type ${tensor.ggmlType} needs ${needed}`,
        );
      }
    } else if (size !== tensor.data.length) {
      throw new InputError(
        `${path}: tensor '${tensor.name}' has ${tensor.data.length} values, shape [${tensor.shape}] needs ${size}`,
      );
    }
    if (tensor.shape.length < 1 || tensor.shape.length > 4)
      throw new InputError(`${path}: tensor '${tensor.name}' has rank ${tensor.shape.length}; GGUF allows 1 to 4`);
  }
  const keys = new Set<string>();
  for (const entry of metadata) {
    if (keys.has(entry.key)) throw new InputError(`${path}: duplicate GGUF metadata key '${entry.key}'`);
    keys.add(entry.key);
  }
  const alignmentEntry = metadata.find((entry) => entry.key === 'general.alignment');
  const alignment =
    alignmentEntry && typeof alignmentEntry.value === 'number' ? alignmentEntry.value : GGUF_DEFAULT_ALIGNMENT;

  const header = new ByteBuilder();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_WRITE_VERSION);
  header.u64(tensors.length);
  header.u64(metadata.length);
  for (const entry of metadata) {
    header.string(entry.key);
    writeMetadataValue(header, entry);
  }
  let relativeOffset = 0;
  for (const tensor of tensors) {
    header.string(tensor.name);
    header.u32(tensor.shape.length);
    for (const dim of [...tensor.shape].reverse()) header.u64(dim);
    header.u32('encoded' in tensor ? tensor.ggmlType : GgmlType[tensor.type]);
    header.u64(relativeOffset);
    relativeOffset = alignUp(relativeOffset + tensorBytes(tensor).length, alignment);
  }

  writeAtomically(path, (out) => {
    out.write(header.bytes());
    out.pad(alignment);
    for (const tensor of tensors) {
      out.write(tensorBytes(tensor));
      out.pad(alignment);
    }
  });
}

function writeMetadataValue(out: ByteBuilder, entry: GgufMetadataEntry): void {
  switch (entry.type) {
    case 'string':
      out.u32(GgufValueType.STRING);
      out.string(entry.value);
      return;
    case 'uint32':
      checkInteger(entry.key, entry.value, 0, 0xffffffff);
      out.u32(GgufValueType.UINT32);
      out.u32(entry.value);
      return;
    case 'int32':
      checkInteger(entry.key, entry.value, -0x80000000, 0x7fffffff);
      out.u32(GgufValueType.INT32);
      out.i32(entry.value);
      return;
    case 'uint64':
      checkInteger(entry.key, entry.value, 0, Number.MAX_SAFE_INTEGER);
      out.u32(GgufValueType.UINT64);
      out.u64(entry.value);
      return;
    case 'float32':
      out.u32(GgufValueType.FLOAT32);
      out.f32(entry.value);
      return;
    case 'bool':
      out.u32(GgufValueType.BOOL);
      out.u8(entry.value ? 1 : 0);
      return;
    case 'string[]':
      out.u32(GgufValueType.ARRAY);
      out.u32(GgufValueType.STRING);
      out.u64(entry.value.length);
      for (const item of entry.value) out.string(item);
      return;
    case 'float32[]':
      out.u32(GgufValueType.ARRAY);
      out.u32(GgufValueType.FLOAT32);
      out.u64(entry.value.length);
      for (let i = 0; i < entry.value.length; i++) out.f32(entry.value[i]);
      return;
    case 'int32[]':
      out.u32(GgufValueType.ARRAY);
      out.u32(GgufValueType.INT32);
      out.u64(entry.value.length);
      for (let i = 0; i < entry.value.length; i++) {
        checkInteger(entry.key, entry.value[i], -0x80000000, 0x7fffffff);
        out.i32(entry.value[i]);
      }
      return;
  }
}

function checkInteger(key: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new RangeError(`GGUF metadata '${key}': ${value} is not an integer in [${min}, ${max}]`);
}

export function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}

/** A growable little-endian byte buffer for the GGUF header. */
class ByteBuilder {
  private buffer = Buffer.alloc(1 << 16);
  private length = 0;

  private reserve(bytes: number): number {
    if (this.length + bytes > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + bytes));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    const at = this.length;
    this.length += bytes;
    return at;
  }

  // reserve() may replace this.buffer, so it runs before this.buffer is read.
  u8(value: number): void {
    const at = this.reserve(1);
    this.buffer.writeUInt8(value, at);
  }
  u32(value: number): void {
    const at = this.reserve(4);
    this.buffer.writeUInt32LE(value, at);
  }
  i32(value: number): void {
    const at = this.reserve(4);
    this.buffer.writeInt32LE(value, at);
  }
  f32(value: number): void {
    const at = this.reserve(4);
    this.buffer.writeFloatLE(value, at);
  }
  u64(value: number): void {
    const at = this.reserve(8);
    this.buffer.writeBigUInt64LE(BigInt(value), at);
  }

  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    const at = this.reserve(bytes.length);
    bytes.copy(this.buffer, at);
  }

  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}
