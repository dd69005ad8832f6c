/**
 * GGUF and llama2.c vocabularies tokenized by llama.cpp itself: node-llama-cpp loads the vocabulary
 * alone (`vocabOnly: true`) and its `llama_tokenize` / `llama_detokenize` do the work, so every
 * vocabulary type and pre-tokenizer llama.cpp supports gives exactly llama.cpp's ids.
 *
 * What stays here by hand, because node-llama-cpp does not expose it: BOS/EOS are added by
 * fireopt from the vocabulary's flags (node-llama-cpp always tokenizes with add_special = false),
 * and a single token's raw bytes (`tokenBytes`) are rendered from its piece, since node-llama-cpp
 * returns detokenized text, in which half a UTF-8 character has already become U+FFFD.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Llama, LlamaModel, Token } from 'node-llama-cpp';
import { InputError, describeError } from '../errors.js';
import { writeVocabOnlyGguf } from '../formats/gguf-llama.js';
import type { DecodeOptions, EncodeOptions, Tokenizer, TokenizerKind } from './tokenizer.js';
import { CHAR_TO_BYTE, utf8Bytes } from './unicode.js';
import type { Vocabulary } from './vocabulary.js';
import { startLlama } from '../util/llama-runtime.js';

export interface LlamaCppTokenizerOptions {
  /** File the vocabulary came from, for error messages. */
  path?: string;
  /** GGUF `general.name`: llama.cpp strips whitespace after Phi-3's special tokens by this name. */
  modelName?: string;
}

// llama_token_attr bits (node-llama-cpp's TokenAttribute is a const enum, which isolated modules cannot import).
const ATTR_UNKNOWN = 1 << 0;
const ATTR_NORMAL = 1 << 2;
const ATTR_CONTROL = 1 << 3;
const ATTR_USER_DEFINED = 1 << 4;
const ATTR_BYTE = 1 << 5;
const ATTR_NOT_LOADED = -1;

let llamaRuntime: Promise<Llama> | undefined;

/** Load a GGUF's vocabulary into llama.cpp (no weights). `vocabulary` is what fireopt read from the same file. */
export async function openLlamaCppTokenizer(
  ggufPath: string,
  vocabulary: Vocabulary,
  options: LlamaCppTokenizerOptions = {},
): Promise<LlamaCppTokenizer> {
  llamaRuntime ??= startLlama();
  const llama = await llamaRuntime;
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: ggufPath, vocabOnly: true });
  } catch (error) {
    // llama.cpp's own reason is in its log, which is off (see util/llama-runtime.ts): name what it read.
    const noMerges = vocabulary.model === 'gpt2' && !vocabulary.merges?.length ? ', no BPE merges' : '';
    const pre = vocabulary.pre ? `, pre-tokenizer '${vocabulary.pre}'` : '';
    const because = `: tokenizer model '${vocabulary.model}'${pre}${noMerges}`;
    throw new InputError(
      `${options.path ?? ggufPath}: llama.cpp cannot load this tokenizer (${describeError(error)}${because})`,
      'llama.cpp (node-llama-cpp 3.21.1) must support the vocabulary type and pre-tokenizer' +
        ' (tokenizer.ggml.model / .pre)',
    );
  }
  return new LlamaCppTokenizer(model, vocabulary, options.path ?? ggufPath);
}

/**
 * A tokenizer for an in-memory vocabulary (a llama2.c tokenizer.bin, a checkpoint's stored vocabulary):
 * written to a temporary vocab-only GGUF that llama.cpp loads, then deleted.
 */
export async function llamaCppTokenizerFromVocabulary(
  vocabulary: Vocabulary,
  options: LlamaCppTokenizerOptions = {},
): Promise<LlamaCppTokenizer> {
  const dir = mkdtempSync(join(tmpdir(), 'fireopt-vocab-'));
  try {
    const ggufPath = join(dir, 'vocab.gguf');
    const vocabSize = vocabulary.tokens.length;
    // The vocabulary needs no model; llama.cpp still reads a consistent set of hyper-parameters.
    const placeholderModel = {
      dim: 64,
      hiddenDim: 64,
      nLayers: 1,
      nHeads: 1,
      nKvHeads: 1,
      vocabSize,
      maxSeqLen: 2048,
      normEps: 1e-5,
      ropeTheta: 10000,
      tiedEmbeddings: true,
    };
    writeVocabOnlyGguf(ggufPath, placeholderModel, vocabulary, { name: options.modelName });
    const path = options.path ?? '<vocabulary>';
    return await openLlamaCppTokenizer(ggufPath, vocabulary, { path, modelName: options.modelName });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A `llama` (SentencePiece), `gpt2` (BPE) or other llama.cpp vocabulary, tokenized by llama.cpp. */
export class LlamaCppTokenizer implements Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;

  private readonly tokens: string[];
  private readonly idOfPiece = new Map<string, number>();
  private readonly attributeCache: Int32Array;
  private readonly addBos: boolean;
  private readonly addEos: boolean;
  private bytesIndex: Map<string, number> | undefined;

  /** Use openLlamaCppTokenizer / llamaCppTokenizerFromVocabulary. */
  constructor(
    private readonly model: LlamaModel,
    vocabulary: Vocabulary,
    private readonly path: string,
  ) {
    const tokenCount = vocabulary.tokens.length;
    if (tokenCount === 0) throw new InputError(`${path}: the vocabulary has no tokens`);
    const isSentencePiece = vocabulary.model === 'llama';
    this.kind = isSentencePiece ? 'sentencepiece' : 'bpe';
    this.vocabSize = tokenCount;
    this.tokens = vocabulary.tokens;
    this.tokens.forEach((token, id) => this.idOfPiece.set(token, id));
    this.attributeCache = new Int32Array(tokenCount).fill(ATTR_NOT_LOADED);
    // llama.cpp's defaults when the GGUF names no special ids: SentencePiece <s>=1, </s>=2.
    const inVocab = (id: number | undefined): number | undefined =>
      id !== undefined && id >= 0 && id < tokenCount ? id : undefined;
    this.bosId = inVocab(vocabulary.bosId ?? (isSentencePiece ? 1 : undefined));
    this.eosId = inVocab(vocabulary.eosId ?? (isSentencePiece ? 2 : undefined));
    this.addBos = vocabulary.addBos;
    this.addEos = vocabulary.addEos;
  }

  /** llama_token_attr of `id`, after llama.cpp's load-time fix-ups (EOG/FIM names, Phi-3 rstrip, …). */
  attributes(id: number): number {
    let attr = this.attributeCache[this.checkId(id)];
    if (attr === ATTR_NOT_LOADED) {
      const flags = this.model.getTokenAttributes(id as Token);
      attr =
        (flags.unknown ? ATTR_UNKNOWN : 0) |
        (flags.normal ? ATTR_NORMAL : 0) |
        (flags.control ? ATTR_CONTROL : 0) |
        (flags.userDefined ? ATTR_USER_DEFINED : 0) |
        (flags.byte ? ATTR_BYTE : 0);
      this.attributeCache[id] = attr;
    }
    return attr;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const output: number[] = [];
    if (options.addBos ?? this.addBos) output.push(this.requireId(this.bosId, 'BOS'));
    const ids = this.model.tokenize(text, options.parseSpecial ?? false);
    for (const id of ids) output.push(id);
    if (options.addEos ?? this.addEos) output.push(this.requireId(this.eosId, 'EOS'));
    return output;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = Array.from(ids, (id) => this.checkId(id));
    let keptBos = false;
    if (options.removeSpecial && this.addBos && list.length > 0 && list[0] === this.bosId) {
      // llama.cpp's remove_special: drop BOS, and with it the leading-space removal of the next token.
      // node-llama-cpp always passes remove_special = false, so BOS stays in and its text is cut off below.
      keptBos = true;
    }
    const endsWithEos = list.length > (keptBos ? 1 : 0) && list[list.length - 1] === this.eosId;
    if (options.removeSpecial && this.addEos && endsWithEos) list.pop();
    if (list.length === 0) return '';
    const renderSpecial = options.renderSpecial ?? false;
    const text = this.model.detokenize(list as Token[], renderSpecial);
    if (keptBos && renderSpecial) {
      const bosText = this.model.detokenize([this.bosId as Token], true);
      return text.startsWith(bosText) ? text.slice(bosText.length) : text;
    }
    return text;
  }

  /** UTF-8 of `decode`: llama.cpp returns text, so a character split between ids is U+FFFD here. */
  decodeBytes(ids: ArrayLike<number>, options: DecodeOptions = {}): Uint8Array {
    return utf8Bytes(this.decode(ids, options));
  }

  tokenPiece(id: number): string {
    return this.tokens[this.checkId(id)];
  }

  pieces(): readonly string[] {
    return this.tokens;
  }

  pieceToId(piece: string): number | undefined {
    return this.idOfPiece.get(piece);
  }

  /** llama.cpp token_to_piece(special = true), as bytes: control tokens give their text. */
  tokenBytes(id: number): Uint8Array {
    const attr = this.attributes(id);
    const text = this.tokens[id];
    if (attr & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) return utf8Bytes(text);
    if (attr & ATTR_NORMAL) {
      return this.kind === 'sentencepiece' ? utf8Bytes(text.replaceAll('\u2581', ' ')) : byteLevelDecode(text);
    }
    if (attr & ATTR_BYTE) return Uint8Array.of(Number.parseInt(text.slice(3, 5), 16) || 0);
    return new Uint8Array(0);
  }

  bytesToId(bytes: Uint8Array): number | undefined {
    if (!this.bytesIndex) {
      // Prefer what the encoder would emit: normal / user-defined pieces, then byte tokens, then control.
      const rank = (id: number): number => {
        const attr = this.attributes(id);
        if (attr & (ATTR_CONTROL | ATTR_UNKNOWN)) return 2;
        if (attr & ATTR_BYTE) return 1;
        return 0;
      };
      const index = new Map<string, number>();
      for (let id = 0; id < this.vocabSize; id++) {
        const piece = this.tokenBytes(id);
        if (piece.length === 0) continue;
        const key = bytesKey(piece);
        const existing = index.get(key);
        if (existing === undefined || rank(id) < rank(existing)) index.set(key, id);
      }
      this.bytesIndex = index;
    }
    return this.bytesIndex.get(bytesKey(bytes));
  }

  isSpecial(id: number): boolean {
    return (this.attributes(id) & (ATTR_CONTROL | ATTR_UNKNOWN)) !== 0;
  }

  /** Release llama.cpp's copy of the vocabulary. */
  async close(): Promise<void> {
    await this.model.dispose();
  }

  private checkId(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new InputError(`${this.path}: token id ${id} is outside the ${this.vocabSize}-token vocabulary`);
    }
    return id;
  }

  private requireId(id: number | undefined, name: string): number {
    if (id === undefined) throw new InputError(`${this.path}: the vocabulary has no ${name} token`);
    return id;
  }
}

function bytesKey(bytes: Uint8Array): string {
  let key = '';
  for (const byte of bytes) key += String.fromCharCode(byte);
  return key;
}

/**
 * llama.cpp llama_decode_text: byte-level alphabet back to bytes; a character outside the
 * alphabet is written as "[UNK_BYTE_0x<utf8 hex><token text>]", as llama.cpp does.
 */
function byteLevelDecode(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const char of text) {
    const byte = CHAR_TO_BYTE.get(char);
    if (byte !== undefined) {
      bytes.push(byte);
      continue;
    }
    const hex = Array.from(utf8Bytes(char), (b) => b.toString(16).padStart(2, '0')).join('');
    bytes.push(...utf8Bytes(`[UNK_BYTE_0x${hex}${text}]`));
  }
  return Uint8Array.from(bytes);
}
