/**
 * A tokenizer's vocabulary as data, independent of file format: what GGUF stores under
 * `tokenizer.ggml.*`, what llama2.c's tokenizer.bin holds, and what fireopt writes back into GGUF.
 */

/** GGUF `tokenizer.ggml.model`: SentencePiece (`llama`) or byte-level BPE (`gpt2`). */
export type TokenizerModel = 'llama' | 'gpt2';

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type). */
export const TokenType = {
  Undefined: 0,
  Normal: 1,
  Unknown: 2,
  Control: 3,
  UserDefined: 4,
  Unused: 5,
  Byte: 6,
} as const;

export interface Vocabulary {
  model: TokenizerModel;
  /**
   * Token text as GGUF stores it: SentencePiece pieces use '▁' (U+2581) for a space and
   * `<0xAB>` for byte-fallback tokens; GPT-2 BPE uses the byte-to-unicode mapped alphabet.
   */
  tokens: string[];
  /** SentencePiece piece scores (merge priority). */
  scores?: Float32Array;
  /** One TokenType value per token. */
  tokenTypes: Int32Array;
  /** BPE merges, each "left right" in token text. */
  merges?: string[];
  /** GGUF `tokenizer.ggml.pre`: the BPE pre-tokenizer name (e.g. `gpt-2`, `llama-bpe`). */
  pre?: string;
  bosId?: number;
  eosId?: number;
  unkId?: number;
  padId?: number;
  addBos: boolean;
  addEos: boolean;
  /** SentencePiece: prepend a space to the text before encoding (llama's default). */
  addSpacePrefix?: boolean;
  /** Jinja chat template, when the model ships one. */
  chatTemplate?: string;
}
