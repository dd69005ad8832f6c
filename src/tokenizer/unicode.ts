/**
 * The Unicode pieces llama.cpp's tokenizers rely on (its src/unicode.cpp): per-codepoint category
 * flags for the BPE pre-tokenizers, and GPT-2's byte ↔ printable-character mapping.
 *
 * Categories come from the JavaScript engine's Unicode tables (`\p{L}`, `\p{N}`, `\p{White_Space}`);
 * llama.cpp generates its own tables from the Unicode database, so the two agree except on
 * characters added in a Unicode version only one of them knows.
 */

export const CodepointFlag = {
  Letter: 1,
  Number: 2,
  /** Unicode White_Space, as llama.cpp's `is_whitespace` (unlike JS `\s`: includes U+0085, excludes U+FEFF). */
  Whitespace: 4,
} as const;

const LETTER = /^\p{L}$/u;
const NUMBER = /^\p{N}$/u;
const WHITE_SPACE = /^\p{White_Space}$/u;

// Flags are cached per codepoint: 0xFF marks "not computed yet". [0x110000] bytes, filled lazily.
const flagCache = new Uint8Array(0x110000).fill(0xff);

/** Category flags of one codepoint (a bit set of CodepointFlag values). */
export function codepointFlags(codepoint: number): number {
  let flags = flagCache[codepoint];
  if (flags === 0xff) {
    const char = String.fromCodePoint(codepoint);
    flags =
      (LETTER.test(char) ? CodepointFlag.Letter : 0) |
      (NUMBER.test(char) ? CodepointFlag.Number : 0) |
      (WHITE_SPACE.test(char) ? CodepointFlag.Whitespace : 0);
    flagCache[codepoint] = flags;
  }
  return flags;
}

/** Codepoints of a string; lone surrogates become U+FFFD, as they do on the way to UTF-8. */
export function codepointsOf(text: string): number[] {
  const codepoints: number[] = [];
  for (const char of text) {
    const codepoint = char.codePointAt(0) ?? 0xfffd;
    codepoints.push(codepoint >= 0xd800 && codepoint <= 0xdfff ? 0xfffd : codepoint);
  }
  return codepoints;
}

/**
 * GPT-2's byte-level alphabet: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100 upwards, so every byte string becomes printable text (openai/gpt-2 encoder.py bytes_to_unicode).
 */
function buildByteToChar(): string[] {
  const byteToChar: string[] = new Array<string>(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    byteToChar[byte] = String.fromCodePoint(printable ? byte : next++);
  }
  return byteToChar;
}

export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

const utf8Encoder = new TextEncoder();

/** UTF-8 bytes of `text` written in GPT-2's byte-level alphabet. */
export function byteLevelEncode(text: string): string {
  let out = '';
  for (const byte of utf8Encoder.encode(text)) out += BYTE_TO_CHAR[byte];
  return out;
}

export function utf8Bytes(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}
