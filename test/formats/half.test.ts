import { describe, expect, it } from 'vitest';
import {
  decodeHalves,
  encodeHalves,
  floatToBfloat16Bits,
  floatToHalfBits,
  halfBitsToFloat,
} from '../../src/formats/half.js';

describe('F16 / BF16 conversion', () => {
  it('rounds float32 to F16 to nearest, ties to even, through subnormals, overflow and NaN', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest finite half
      [65520, 0x7c00], // halfway to the next binade rounds up to Inf
      [1e6, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 and 2^-24 goes to even (0)
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 1 and 2 ulps goes to even (2)
      [1 + 2 ** -11, 0x3c00], // tie → even mantissa
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even mantissa (up)
      [2047 * 2 ** -25, 0x0400], // top subnormal rounds up into the first normal
      [-0, 0x8000],
    ];
    for (const [value, bits] of cases) expect([value, floatToHalfBits(value)]).toEqual([value, bits]);
    expect(floatToHalfBits(NaN) & 0x7c00).toBe(0x7c00);
    expect(floatToHalfBits(NaN) & 0x3ff).not.toBe(0);
  });

  it('decodes every one of the 65,536 F16 values and re-encodes the non-NaN ones to the same bits', () => {
    for (let bits = 0; bits < 65536; bits++) {
      const value = halfBitsToFloat(bits);
      if (Number.isNaN(value)) expect((bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0).toBe(true);
      else if (floatToHalfBits(value) !== bits)
        throw new Error(`F16 bits 0x${bits.toString(16)} → ${value} → 0x${floatToHalfBits(value).toString(16)}`);
    }
    const values = Float32Array.from([0.1, -3.25, 1e-6, 7e4]);
    expect(Array.from(decodeHalves(encodeHalves(values, 'F16'), 'F16'))).toEqual(
      Array.from(values, (v) => halfBitsToFloat(floatToHalfBits(v))),
    );
  });

  it('rounds float32 to BF16 to nearest, ties to even, and decodes exactly', () => {
    expect(floatToBfloat16Bits(1)).toBe(0x3f80);
    expect(floatToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(floatToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even (up)
    expect(floatToBfloat16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81); // above the tie
    expect(floatToBfloat16Bits(-Infinity)).toBe(0xff80);
    expect(floatToBfloat16Bits(3.4e38)).toBe(0x7f80); // rounds past the largest BF16 to Inf
    expect(floatToBfloat16Bits(NaN) & 0x7f80).toBe(0x7f80);
    expect(floatToBfloat16Bits(NaN) & 0x7f).not.toBe(0);
    const values = Float32Array.from([1, -2.5, 3.140625, 2 ** -130]);
    expect(Array.from(decodeHalves(encodeHalves(values, 'BF16'), 'BF16'))).toEqual(Array.from(values));
  });
});
