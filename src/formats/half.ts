/**
 * IEEE 754 half (F16) and bfloat16 (BF16) conversions to and from float32, bit-exact:
 * float32 → F16 / BF16 rounds to nearest, ties to even (what numpy's astype and PyTorch's .half()
 * / .bfloat16() do); F16 / BF16 → float32 is exact.
 */

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/** float32 → F16 bits (round to nearest even; overflow → ±Inf; NaN stays NaN). */
export function floatToHalfBits(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half: value = m * 2^-24 with m < 1024; below 2^-25 it rounds to ±0.
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and reaches Inf at the top).
  if (remainder > 0x1000 || (remainder === 0x1000 && half & 1)) half++;
  return sign | half;
}

let halfTable: Float32Array | undefined;

/** All 65,536 F16 values as float32, built once (a lookup is ~10x faster than decoding bits). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    halfTable[h] =
      exponent === 0
        ? sign * mantissa * 2 ** -24
        : exponent === 31
          ? mantissa
            ? NaN
            : sign * Infinity
          : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return halfTable;
}

/** F16 bits → float32 value. */
export function halfBitsToFloat(bits: number): number {
  return halfToFloatTable()[bits & 0xffff];
}

/** float32 → BF16 bits (round to nearest even; NaN stays a quiet NaN). */
export function floatToBfloat16Bits(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0];
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Encode float32 values as little-endian F16 or BF16 bytes. */
export function encodeHalves(values: Float32Array, kind: 'F16' | 'BF16'): Uint8Array {
  const out = new Uint16Array(values.length);
  const encode = kind === 'F16' ? floatToHalfBits : floatToBfloat16Bits;
  for (let i = 0; i < values.length; i++) out[i] = encode(values[i]);
  return littleEndianBytes(out);
}

/** Decode little-endian F16 or BF16 bytes into float32 values. */
export function decodeHalves(bytes: Uint8Array, kind: 'F16' | 'BF16'): Float32Array {
  const count = bytes.byteLength >>> 1;
  const out = new Float32Array(count);
  if (kind === 'F16') {
    const table = halfToFloatTable();
    for (let i = 0; i < count; i++) out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  } else {
    const outBits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) outBits[i] = ((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16) >>> 0;
  }
  return out;
}

/** Decode little-endian float32 bytes (copied, so the result is aligned and owned). */
export function decodeFloat32(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength >>> 2);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 4));
  if (!LITTLE_ENDIAN) swapBytes(new Uint8Array(out.buffer), 4);
  return out;
}

/** A typed array's bytes in little-endian order (a view on little-endian hosts, a swapped copy otherwise). */
export function littleEndianBytes(values: Float32Array | Uint16Array): Uint8Array {
  const view = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (LITTLE_ENDIAN) return view;
  const copy = Uint8Array.from(view);
  swapBytes(copy, values.BYTES_PER_ELEMENT);
  return copy;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i + width <= bytes.length; i += width) bytes.subarray(i, i + width).reverse();
}
