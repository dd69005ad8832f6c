/**
 * Token text as OpenAI-compatible servers show it in `logprobs`: the token's own bytes as UTF-8
 * text, or `bytes:\xe2\x80` (OpenAI's convention) when the bytes are not whole UTF-8 characters
 * (a byte-fallback token or half of a multi-byte character). Control tokens show their piece.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The `logprobs` text of a token's bytes. */
export function tokenText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return `bytes:${[...bytes].map((byte) => `\\x${byte.toString(16).padStart(2, '0')}`).join('')}`;
  }
}
