/**
 * GPT-2's byte ↔ printable-character mapping (llama.cpp src/unicode.cpp), for turning a byte-level
 * BPE piece back into the bytes it stands for.
 */

/**
 * GPT-2's byte-level alphabet: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100 upwards, so every byte string becomes printable text (openai/gpt-2 encoder.py bytes_to_unicode).
 */
function buildByteToChar(): string[] {
  const byteToChar: string[] = new Array<string>(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    byteToChar[byte] = String.fromCodePoint(printable ? byte : next++);
  }
  return byteToChar;
}

const BYTE_TO_CHAR: readonly string[] = buildByteToChar();
/** Character of GPT-2's byte-level alphabet → the byte it stands for. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

const utf8Encoder = new TextEncoder();

/** UTF-8 bytes of `text`. */
export function utf8Bytes(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}
