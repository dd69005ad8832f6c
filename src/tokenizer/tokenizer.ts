/**
 * The one tokenizer interface fireopt uses. A draft model shares its target's tokenizer, so ids
 * must equal llama.cpp's: the GGUF and llama2.c implementations reproduce llama.cpp's
 * `llama_tokenize` / `llama_detokenize` exactly; the tokenizer.json one wraps Hugging Face's library.
 */

export interface EncodeOptions {
  /** Prepend BOS. Default: the vocabulary's own flag (GGUF `tokenizer.ggml.add_bos_token`). */
  addBos?: boolean;
  /** Append EOS. Default: the vocabulary's own flag (usually off). */
  addEos?: boolean;
  /**
   * Turn control-token text in the input (`<s>`, `<|endoftext|>`) into those tokens, as llama.cpp's
   * `parse_special`. Default false: such text is tokenized as ordinary characters. User-defined
   * tokens are matched either way, as in llama.cpp and Hugging Face tokenizers.
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Write control tokens' text (llama.cpp `unparse_special`). Default false: they decode to nothing. */
  renderSpecial?: boolean;
  /** Drop a leading BOS and trailing EOS when the vocabulary adds them (llama.cpp `remove_special`). Default false. */
  removeSpecial?: boolean;
}

export type TokenizerKind = 'sentencepiece' | 'bpe' | 'huggingface';

export interface Tokenizer {
  readonly kind: TokenizerKind;
  /** Number of token ids (embedding rows), including special tokens. */
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;

  /** Token ids of `text` (as llama.cpp's `llama_tokenize(text, add_special, parse_special)`). */
  encode(text: string, options?: EncodeOptions): number[];
  /** Text of `ids` (as llama.cpp's `llama_detokenize`); invalid UTF-8 becomes U+FFFD. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** Raw bytes of `ids`, before UTF-8 decoding (a byte-fallback token may hold half a character). */
  decodeBytes(ids: ArrayLike<number>, options?: DecodeOptions): Uint8Array;

  /** The token as the vocabulary stores it ('▁the', 'Ġthe', '<0x0A>', '<s>'). */
  tokenPiece(id: number): string;
  /** All pieces, indexed by id. */
  pieces(): readonly string[];
  /** Id of a vocabulary piece (the inverse of tokenPiece). */
  pieceToId(piece: string): number | undefined;
  /** Bytes the token contributes to decoded text (control tokens: their text). */
  tokenBytes(id: number): Uint8Array;
  /**
   * The id whose `tokenBytes` are `bytes`, preferring a normal token over a byte-fallback one —
   * for mapping a target engine's returned token text/bytes back to ids.
   */
  bytesToId(bytes: Uint8Array): number | undefined;
  /** True for control and unknown tokens (BOS, EOS, `<unk>`, chat markers): not ordinary text. */
  isSpecial(id: number): boolean;
}
