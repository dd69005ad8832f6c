/**
 * Dequantization of ggml's block-quantized tensor types to float32, for reading published GGUF
 * models (Q8_0, Q4_K_M, …) as a draft's initialisation, a `tfjs` target, or export's checks.
 * Block layouts are ggml's (ggml-common.h: block_q4_0 … block_q6_K) and each loop follows the
 * arithmetic of ggml-quants.c's dequantize_row_*; written by hand because no maintained JavaScript
 * library reads ggml quants. llama.cpp's own dequantization is the reference the tests compare with.
 */
import { InputError } from '../errors.js';
import { halfBitsToFloat } from './half.js';

/** Values per block and bytes per block of each quantized type fireopt reads, by ggml type id. */
export const QUANT_BLOCKS: Readonly<Record<number, { name: string; values: number; bytes: number }>> = {
  2: { name: 'Q4_0', values: 32, bytes: 18 },
  3: { name: 'Q4_1', values: 32, bytes: 20 },
  6: { name: 'Q5_0', values: 32, bytes: 22 },
  7: { name: 'Q5_1', values: 32, bytes: 24 },
  8: { name: 'Q8_0', values: 32, bytes: 34 },
  10: { name: 'Q2_K', values: 256, bytes: 84 },
  11: { name: 'Q3_K', values: 256, bytes: 110 },
  12: { name: 'Q4_K', values: 256, bytes: 144 },
  13: { name: 'Q5_K', values: 256, bytes: 176 },
  14: { name: 'Q6_K', values: 256, bytes: 210 },
};

/** Whether fireopt can dequantize this ggml type. */
export function isQuantizedType(type: number): boolean {
  return type in QUANT_BLOCKS;
}

/** Bytes a tensor of `elements` values of quantized `type` occupies (NaN when not a whole number of blocks). */
export function quantizedByteLength(type: number, elements: number): number {
  const block = QUANT_BLOCKS[type];
  if (!block || elements % block.values !== 0) return Number.NaN;
  return (elements / block.values) * block.bytes;
}

/** Dequantize `bytes` (whole blocks of `type`) into float32 values. `where` names the tensor in errors. */
export function dequantize(type: number, bytes: Uint8Array, where: string): Float32Array {
  const block = QUANT_BLOCKS[type];
  if (!block) throw new InputError(`${where}: ggml type ${type} is not a quantized type fireopt reads`);
  if (bytes.length % block.bytes !== 0) {
    throw new InputError(`${where}: ${bytes.length} bytes is not a whole number of ${block.name} blocks`);
  }
  const blocks = bytes.length / block.bytes;
  const out = new Float32Array(blocks * block.values);
  const dequantizeBlock = BLOCK_DECODERS[block.name];
  for (let b = 0; b < blocks; b++) dequantizeBlock(bytes, b * block.bytes, out, b * block.values);
  return out;
}

type BlockDecoder = (src: Uint8Array, at: number, out: Float32Array, to: number) => void;

const half = (src: Uint8Array, at: number): number => halfBitsToFloat(src[at] | (src[at + 1] << 8));
const int8 = (byte: number): number => (byte << 24) >> 24;

/** Q4_K / Q5_K: the 6-bit scale and min of sub-block `j` packed in 12 bytes (ggml get_scale_min_k4). */
function scaleMinK4(j: number, src: Uint8Array, at: number): [number, number] {
  if (j < 4) return [src[at + j] & 63, src[at + j + 4] & 63];
  return [(src[at + j + 4] & 0xf) | ((src[at + j - 4] >> 6) << 4), (src[at + j + 4] >> 4) | ((src[at + j] >> 6) << 4)];
}

const BLOCK_DECODERS: Record<string, BlockDecoder> = {
  // { f16 d; u8 qs[16] }: value = (nibble - 8) · d; low nibbles are values 0–15, high 16–31.
  Q4_0: (src, at, out, to) => {
    const d = half(src, at);
    for (let j = 0; j < 16; j++) {
      const q = src[at + 2 + j];
      out[to + j] = ((q & 0xf) - 8) * d;
      out[to + j + 16] = ((q >> 4) - 8) * d;
    }
  },
  // { f16 d; f16 m; u8 qs[16] }: value = nibble · d + m.
  Q4_1: (src, at, out, to) => {
    const d = half(src, at);
    const m = half(src, at + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[at + 4 + j];
      out[to + j] = (q & 0xf) * d + m;
      out[to + j + 16] = (q >> 4) * d + m;
    }
  },
  // { f16 d; u8 qh[4]; u8 qs[16] }: 5-bit values (fifth bit from qh), minus 16, times d.
  Q5_0: (src, at, out, to) => {
    const d = half(src, at);
    const qh = (src[at + 2] | (src[at + 3] << 8) | (src[at + 4] << 16) | (src[at + 5] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = src[at + 6 + j];
      const high0 = ((qh >>> j) << 4) & 0x10;
      const high1 = (qh >>> (j + 12)) & 0x10;
      out[to + j] = (((q & 0xf) | high0) - 16) * d;
      out[to + j + 16] = (((q >> 4) | high1) - 16) * d;
    }
  },
  // { f16 d; f16 m; u8 qh[4]; u8 qs[16] }: 5-bit values times d, plus m.
  Q5_1: (src, at, out, to) => {
    const d = half(src, at);
    const m = half(src, at + 2);
    const qh = (src[at + 4] | (src[at + 5] << 8) | (src[at + 6] << 16) | (src[at + 7] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const q = src[at + 8 + j];
      const high0 = ((qh >>> j) << 4) & 0x10;
      const high1 = (qh >>> (j + 12)) & 0x10;
      out[to + j] = ((q & 0xf) | high0) * d + m;
      out[to + j + 16] = ((q >> 4) | high1) * d + m;
    }
  },
  // { f16 d; i8 qs[32] }.
  Q8_0: (src, at, out, to) => {
    const d = half(src, at);
    for (let j = 0; j < 32; j++) out[to + j] = int8(src[at + 2 + j]) * d;
  },
  // { u8 scales[16]; u8 qs[64]; f16 d; f16 dmin }: 2-bit values, 16 sub-blocks of 16 with 4-bit scale and min.
  Q2_K: (src, at, out, to) => {
    const d = half(src, at + 80);
    const min = half(src, at + 82);
    let y = to;
    let scaleIndex = 0;
    for (let n = 0, q = at + 16; n < 256; n += 128, q += 32) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (const offset of [0, 16]) {
          const sc = src[at + scaleIndex++];
          const dl = d * (sc & 0xf);
          const ml = min * (sc >> 4);
          for (let l = 0; l < 16; l++) out[y++] = dl * ((src[q + offset + l] >> shift) & 3) - ml;
        }
      }
    }
  },
  // { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d }: 3-bit values (third bit in hmask), 6-bit signed scales.
  Q3_K: (src, at, out, to) => {
    const d = half(src, at + 108);
    const scales = q3kScales(src, at + 96);
    let y = to;
    let scaleIndex = 0;
    let mask = 1;
    for (let n = 0, q = at + 32; n < 256; n += 128, q += 32) {
      for (let shift = 0; shift < 8; shift += 2, mask <<= 1) {
        for (const offset of [0, 16]) {
          const dl = d * (scales[scaleIndex++] - 32);
          for (let l = 0; l < 16; l++) {
            const low = (src[q + offset + l] >> shift) & 3;
            out[y++] = dl * (low - (src[at + offset + l] & mask ? 0 : 4));
          }
        }
      }
    }
  },
  // { f16 d; f16 dmin; u8 scales[12]; u8 qs[128] }: 4-bit values, 8 sub-blocks of 32 with 6-bit scale and min.
  Q4_K: (src, at, out, to) => {
    const d = half(src, at);
    const min = half(src, at + 2);
    let y = to;
    for (let j = 0, q = at + 16, is = 0; j < 256; j += 64, q += 32, is += 2) {
      const [sc1, m1] = scaleMinK4(is, src, at + 4);
      const [sc2, m2] = scaleMinK4(is + 1, src, at + 4);
      for (let l = 0; l < 32; l++) out[y++] = d * sc1 * (src[q + l] & 0xf) - min * m1;
      for (let l = 0; l < 32; l++) out[y++] = d * sc2 * (src[q + l] >> 4) - min * m2;
    }
  },
  // { f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }: Q4_K with a fifth bit from qh.
  Q5_K: (src, at, out, to) => {
    const d = half(src, at);
    const min = half(src, at + 2);
    const qh = at + 16;
    let y = to;
    let u1 = 1;
    let u2 = 2;
    for (let j = 0, q = at + 48, is = 0; j < 256; j += 64, q += 32, is += 2, u1 <<= 2, u2 <<= 2) {
      const [sc1, m1] = scaleMinK4(is, src, at + 4);
      const [sc2, m2] = scaleMinK4(is + 1, src, at + 4);
      for (let l = 0; l < 32; l++) out[y++] = d * sc1 * ((src[q + l] & 0xf) + (src[qh + l] & u1 ? 16 : 0)) - min * m1;
      for (let l = 0; l < 32; l++) out[y++] = d * sc2 * ((src[q + l] >> 4) + (src[qh + l] & u2 ? 16 : 0)) - min * m2;
    }
  },
  // { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }: 6-bit values minus 32, 16 sub-blocks of 16 with 8-bit scales.
  Q6_K: (src, at, out, to) => {
    const d = half(src, at + 208);
    for (let n = 0; n < 2; n++) {
      const ql = at + n * 64;
      const qh = at + 128 + n * 32;
      const sc = at + 192 + n * 8;
      const y = to + n * 128;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l];
        const q1 = ((src[ql + l] & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        out[y + l] = d * int8(src[sc + is]) * q1;
        out[y + l + 32] = d * int8(src[sc + is + 2]) * q2;
        out[y + l + 64] = d * int8(src[sc + is + 4]) * q3;
        out[y + l + 96] = d * int8(src[sc + is + 6]) * q4;
      }
    }
  },
};

/** Q3_K's sixteen 6-bit scales, unpacked from 12 bytes (ggml's kmask1/kmask2 shuffle), as unsigned 0–63. */
function q3kScales(src: Uint8Array, at: number): Int32Array {
  const word = (i: number): number => {
    const p = at + i * 4;
    return (src[p] | (src[p + 1] << 8) | (src[p + 2] << 16) | (src[p + 3] << 24)) >>> 0;
  };
  const kmask1 = 0x03030303;
  const kmask2 = 0x0f0f0f0f;
  const a0 = word(0);
  const a1 = word(1);
  const tmp = word(2);
  const words = [
    (a0 & kmask2) | (((tmp >>> 0) & kmask1) << 4),
    (a1 & kmask2) | (((tmp >>> 2) & kmask1) << 4),
    ((a0 >>> 4) & kmask2) | (((tmp >>> 4) & kmask1) << 4),
    ((a1 >>> 4) & kmask2) | (((tmp >>> 6) & kmask1) << 4),
  ];
  const scales = new Int32Array(16);
  for (let i = 0; i < 16; i++) scales[i] = int8((words[i >> 2] >>> ((i & 3) * 8)) & 0xff);
  return scales;
}
