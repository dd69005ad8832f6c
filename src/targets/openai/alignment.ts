/**
 * Exact token ids from a server's returned tokens. A `token_id:123` token is exact; a token
 * returned as text or bytes is mapped to the id whose bytes it is, with the target tokenizer, and
 * the whole completion is then checked: the mapped ids must decode to exactly the text the server
 * returned, and there must be as many of them as the server says it generated. (Re-encoding the
 * text and comparing ids would reject legitimate output: a sampled completion need not be the
 * tokenizer's canonical segmentation of its own text.)
 */
import { InputError, RunError } from '../../errors.js';
import type { ReturnedChoice, ReturnedToken } from './responses.js';

/** The part of fireopt's Tokenizer (src/tokenizer/tokenizer.ts) that alignment needs. */
export interface TokenAligner {
  readonly vocabSize: number;
  /** The id whose bytes are `bytes` (a normal token preferred over a byte-fallback one). */
  bytesToId(bytes: Uint8Array): number | undefined;
  /** Raw bytes of `ids` as decoded text (control tokens contribute nothing). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array;
}

export type TokenIdMode = 'auto' | 'server' | 'tokenizer';

/** Thrown when returned tokens cannot be turned into exact ids; retrying would not help. */
export class AlignmentError extends RunError {
  constructor(message: string, hint?: string) {
    super(message, hint, 'E_TARGET_ALIGNMENT');
  }
}

/** Resolve one returned token (or top alternative) to an id. */
export function tokenId(
  token: ReturnedToken,
  mode: TokenIdMode,
  tokenizer: TokenAligner | undefined,
  where: string,
): number {
  if (token.id !== undefined) {
    if (tokenizer && token.id >= tokenizer.vocabSize) {
      throw new AlignmentError(
        `${where}: the server returned token id ${token.id}, outside the target ` +
          `tokenizer's ${tokenizer.vocabSize} tokens`,
        'the server runs a different model from target tokenizer',
      );
    }
    return token.id;
  }
  if (mode === 'server') {
    throw new AlignmentError(
      `${where}: the server returned token text ${JSON.stringify(token.text)} ` +
        `instead of an id: it ignores return_tokens_as_token_ids`,
      "set target.token_ids: tokenizer (or auto) to map token text with the target's tokenizer",
    );
  }
  if (!tokenizer) {
    throw new InputError(
      `${where}: the server returns token text, and mapping it to ids needs the target tokenizer, which was not given`,
      'pass the target tokenizer to the engine, or use a server that supports ' +
        'return_tokens_as_token_ids (vLLM, fireopt serve)',
    );
  }
  const id = token.bytes ? tokenizer.bytesToId(token.bytes) : undefined;
  if (id === undefined) {
    throw new AlignmentError(
      `${where}: the returned token ${JSON.stringify(token.text)} is not a token of the target tokenizer`,
      'the server and the configured tokenizer belong to different models, or the server does not return whole tokens',
    );
  }
  return id;
}

/** Ids of a choice's completion tokens, checked against its text when any were mapped from text. */
export function choiceTokenIds(
  choice: ReturnedChoice,
  mode: TokenIdMode,
  tokenizer: TokenAligner | undefined,
): number[] {
  const positions = choice.positions ?? [];
  const ids = positions.map((position, i) => tokenId(position, mode, tokenizer, `choice ${choice.index}, token ${i}`));
  const mapped = positions.some((position) => position.id === undefined);
  if (mapped && tokenizer) {
    const decoded = new TextDecoder().decode(tokenizer.decodeBytes(ids));
    if (!sameText(decoded, choice.text)) {
      throw new AlignmentError(
        `choice ${choice.index}: the ${ids.length} tokens mapped to ids decode ` +
          `to ${JSON.stringify(decoded.slice(0, 120))}, but the server's text is ` +
          `${JSON.stringify(choice.text.slice(0, 120))}`,
        'the server does not return whole, lossless tokens; use a server with ' +
          'return_tokens_as_token_ids (vLLM) or the completions API',
      );
    }
  }
  return ids;
}

/** Equal, or equal but for the leading space SentencePiece decoders drop from a first token. */
function sameText(decoded: string, text: string): boolean {
  return decoded === text || ` ${decoded}` === text || decoded === ` ${text}`;
}
