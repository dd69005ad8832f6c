/**
 * A Hugging Face `tokenizer.json` (plus `tokenizer_config.json` beside it, when present) behind
 * fireopt's Tokenizer interface, using the maintained @huggingface/tokenizers library.
 *
 * Library behaviour that differs from llama.cpp's `parse_special = false`: added tokens (`<s>`,
 * `<|endoftext|>`) are always matched in the input text.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer as HfLibraryTokenizer } from '@huggingface/tokenizers';
import { InputError, describeError } from '../errors.js';
import type { DecodeOptions, EncodeOptions, Tokenizer, TokenizerKind } from './tokenizer.js';
import { CHAR_TO_BYTE, utf8Bytes } from './unicode.js';
import { TokenType, type Vocabulary } from './vocabulary.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Read a tokenizer.json (and its tokenizer_config.json neighbour) into a Tokenizer. */
export function readHuggingFaceTokenizer(path: string): HuggingFaceTokenizer {
  const tokenizerJson = readJson(path, 'tokenizer.json');
  const configPath = join(dirname(path), 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath, 'tokenizer_config.json') : {};
  return new HuggingFaceTokenizer(tokenizerJson, config, path);
}

function readJson(path: string, what: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError(
      `${path}: cannot read ${what} (${(error as NodeJS.ErrnoException).code ?? describeError(error)})`,
    );
  }
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch (error) {
    throw new InputError(`${path}: ${what} is not valid JSON (${describeError(error)})`);
  }
  if (!isObject(value)) throw new InputError(`${path}: ${what} is not a JSON object`);
  return value;
}

export class HuggingFaceTokenizer implements Tokenizer {
  readonly kind: TokenizerKind = 'huggingface';
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;

  private readonly library: HfLibraryTokenizer;
  private readonly tokens: string[];
  private readonly idOfPiece: Map<string, number>;
  private readonly specialIds: Set<number>;
  private readonly byteLevel: boolean;
  private readonly addBos: boolean;
  private readonly addEos: boolean;
  private bytesIndex: Map<string, number> | undefined;
  private readonly tokenizerJson: JsonObject;
  private readonly config: JsonObject;
  private readonly path: string;

  constructor(tokenizerJson: JsonObject, config: JsonObject, path = '<tokenizer.json>') {
    this.tokenizerJson = tokenizerJson;
    this.config = config;
    this.path = path;
    const model = tokenizerJson.model;
    if (!isObject(model) || typeof model.type !== 'string') {
      throw new InputError(`${path}: not a Hugging Face tokenizer.json (no "model" with a "type")`);
    }
    // The library requires these keys to exist, even when null.
    const complete: JsonObject = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      added_tokens: [],
      ...tokenizerJson,
    };
    try {
      this.library = new HfLibraryTokenizer(complete, config);
    } catch (error) {
      throw new InputError(`${path}: cannot load tokenizer.json (${describeError(error)})`);
    }
    this.idOfPiece = this.library.get_vocab(true);
    let size = 0;
    for (const id of this.idOfPiece.values()) size = Math.max(size, id + 1);
    this.vocabSize = size;
    this.tokens = new Array<string>(size).fill('');
    for (const [piece, id] of this.idOfPiece) this.tokens[id] = piece;
    this.specialIds = new Set<number>();
    this.library.get_added_tokens_decoder().forEach((token: { special: boolean }, id: number) => {
      if (token.special) this.specialIds.add(id);
    });
    this.byteLevel = JSON.stringify(tokenizerJson.decoder ?? null).includes('"ByteLevel"');

    const specialId = (value: Json | undefined): number | undefined => {
      const content = isObject(value) ? value.content : value;
      return typeof content === 'string' ? this.idOfPiece.get(content) : undefined;
    };
    // Which specials the post-processor adds: encode one character with and without them.
    const plain = this.library.encode('a', { add_special_tokens: false }).ids;
    const withSpecial = this.library.encode('a', { add_special_tokens: true }).ids;
    const prefix = withSpecial.slice(0, withSpecial.length - plain.length);
    const suffix = withSpecial.slice(prefix.length + plain.length);
    this.bosId = specialId(config.bos_token) ?? (prefix.length === 1 ? prefix[0] : undefined);
    this.eosId = specialId(config.eos_token) ?? (suffix.length === 1 ? suffix[0] : undefined);
    this.addBos =
      typeof config.add_bos_token === 'boolean' ? config.add_bos_token : prefix.length > 0 && prefix[0] === this.bosId;
    this.addEos =
      typeof config.add_eos_token === 'boolean'
        ? config.add_eos_token
        : suffix.length > 0 && suffix[suffix.length - 1] === this.eosId;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.library.encode(text, { add_special_tokens: false }).ids;
    const output: number[] = [];
    if ((options.addBos ?? this.addBos) && this.bosId !== undefined) output.push(this.bosId);
    output.push(...ids);
    if ((options.addEos ?? this.addEos) && this.eosId !== undefined) output.push(this.eosId);
    return output;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    let list = Array.from(ids, (id) => this.checkId(id));
    if (options.removeSpecial) {
      if (this.addBos && list[0] === this.bosId) list = list.slice(1);
      if (this.addEos && list.length > 0 && list[list.length - 1] === this.eosId) list = list.slice(0, -1);
    }
    // The library rejects an empty list.
    return list.length === 0 ? '' : this.library.decode(list, { skip_special_tokens: !options.renderSpecial });
  }

  /** UTF-8 of `decode` (the library decodes to text, so a split character is already U+FFFD here). */
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

  tokenBytes(id: number): Uint8Array {
    const piece = this.tokens[this.checkId(id)];
    if (this.specialIds.has(id)) return utf8Bytes(piece);
    const byteFallback = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
    if (byteFallback) return Uint8Array.of(Number.parseInt(byteFallback[1], 16));
    if (this.byteLevel) {
      const bytes: number[] = [];
      for (const char of piece) {
        const byte = CHAR_TO_BYTE.get(char);
        if (byte === undefined) return utf8Bytes(piece);
        bytes.push(byte);
      }
      return Uint8Array.from(bytes);
    }
    return utf8Bytes(piece.replaceAll('\u2581', ' '));
  }

  bytesToId(bytes: Uint8Array): number | undefined {
    if (!this.bytesIndex) {
      const index = new Map<string, number>();
      for (let id = 0; id < this.vocabSize; id++) {
        if (this.tokens[id] === '') continue;
        const key = String.fromCharCode(...this.tokenBytes(id));
        const existing = index.get(key);
        const rank = (candidate: number): number =>
          this.specialIds.has(candidate) ? 2 : /^<0x[0-9A-Fa-f]{2}>$/.test(this.tokens[candidate]) ? 1 : 0;
        if (existing === undefined || rank(id) < rank(existing)) index.set(key, id);
      }
      this.bytesIndex = index;
    }
    return this.bytesIndex.get(String.fromCharCode(...bytes));
  }

  /**
   * The vocabulary as GGUF `tokenizer.ggml.*` metadata describes it, the way llama.cpp's
   * convert_hf_to_gguf.py writes it for a byte-level BPE tokenizer: every id up to `vocabSize`
   * (ids the tokenizer lacks become unused `[PAD<id>]`), added tokens as control (special) or
   * user-defined, the merges, llama.cpp's name for the pre-tokenizer, BOS/EOS/PAD, add_bos/add_eos
   * and the chat template. A tokenizer llama.cpp cannot reproduce is refused by name.
   */
  ggufVocabulary(vocabSize = this.vocabSize): Vocabulary {
    const model = this.tokenizerJson.model as JsonObject;
    const refuse = (why: string): never => {
      throw new InputError(
        `${this.path}: cannot write this tokenizer as GGUF metadata: ${why}`,
        'llama.cpp reproduces byte-level BPE tokenizers with a known pre-tokenizer (GPT-2, Llama-3, Qwen2); ' +
          "export the draft as 'hf' instead",
        'E_EXPORT_TOKENIZER',
      );
    };
    if (model.type !== 'BPE') refuse(`model type '${String(model.type)}' (only byte-level BPE is converted)`);
    if (!this.byteLevel) refuse('the BPE is not byte-level (no ByteLevel decoder)');
    const normalizer = this.tokenizerJson.normalizer;
    // NFC leaves the text of every test string unchanged; llama.cpp does not normalise.
    if (normalizer != null && !(isObject(normalizer) && normalizer.type === 'NFC'))
      refuse(`normalizer ${JSON.stringify(normalizer).slice(0, 80)}`);
    const pre = llamaCppPreTokenizer(this.tokenizerJson.pre_tokenizer);
    if (!pre)
      refuse(
        `pre-tokenizer ${JSON.stringify(this.tokenizerJson.pre_tokenizer).slice(0, 160)} has no llama.cpp equivalent`,
      );
    if (vocabSize < this.vocabSize) refuse(`vocab_size ${vocabSize} is below the tokenizer's ${this.vocabSize} ids`);

    const tokens: string[] = [];
    const tokenTypes = new Int32Array(vocabSize);
    const added = this.library.get_added_tokens_decoder() as Map<number, { special: boolean }>;
    for (let id = 0; id < vocabSize; id++) {
      const piece = id < this.vocabSize ? this.tokens[id] : '';
      if (piece === '') {
        tokens.push(`[PAD${id}]`);
        tokenTypes[id] = TokenType.Unused;
        continue;
      }
      tokens.push(piece);
      const addedToken = added.get(id);
      tokenTypes[id] = !addedToken ? TokenType.Normal : addedToken.special ? TokenType.Control : TokenType.UserDefined;
    }
    const merges = Array.isArray(model.merges)
      ? model.merges.map((merge) => (Array.isArray(merge) ? merge.join(' ') : String(merge)))
      : refuse('the BPE model has no merges');
    const specialId = (value: Json | undefined): number | undefined => {
      const content = isObject(value) ? value.content : value;
      return typeof content === 'string' ? this.idOfPiece.get(content) : undefined;
    };
    const template = this.config.chat_template;
    // tokenizer_config.json may hold several named templates; llama.cpp's converter keeps 'default'.
    const chatTemplate =
      typeof template === 'string'
        ? template
        : Array.isArray(template)
          ? template.flatMap((t) =>
              isObject(t) && t.name === 'default' && typeof t.template === 'string' ? [t.template] : [],
            )[0]
          : undefined;
    return {
      model: 'gpt2',
      pre,
      tokens,
      tokenTypes,
      merges,
      bosId: this.bosId,
      eosId: this.eosId,
      padId: specialId(this.config.pad_token),
      addBos: this.addBos,
      addEos: this.addEos,
      ...(chatTemplate !== undefined && { chatTemplate }),
    };
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(this.checkId(id));
  }

  private checkId(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new InputError(`token id ${id} is outside the ${this.vocabSize}-token vocabulary`);
    }
    return id;
  }
}

/**
 * The Split regexes of byte-level BPE tokenizer.json files, by llama.cpp's pre-tokenizer name
 * (GGUF `tokenizer.ggml.pre`; llama.cpp's convert_hf_to_gguf.py recognises the same tokenizers by
 * a hash of their output instead).
 */
const PRE_TOKENIZER_BY_REGEX = new Map<string, string>([
  [
    String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}` +
      String.raw`| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
    'llama-bpe',
  ],
  [
    String.raw`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}` +
      String.raw`| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
    'qwen2',
  ],
]);

/**
 * llama.cpp's name for a tokenizer.json pre-tokenizer: GPT-2's (ByteLevel with its own regex), or a
 * known Split regex followed by a ByteLevel that does not split again; undefined for anything else.
 */
function llamaCppPreTokenizer(preTokenizer: Json | undefined): string | undefined {
  if (!isObject(preTokenizer)) return undefined;
  if (preTokenizer.type === 'ByteLevel') return preTokenizer.use_regex !== false ? 'gpt-2' : undefined;
  const steps = preTokenizer.type === 'Sequence' ? preTokenizer.pretokenizers : undefined;
  if (!Array.isArray(steps) || steps.length !== 2) return undefined;
  const [split, byteLevel] = steps;
  if (!isObject(split) || split.type !== 'Split' || split.behavior !== 'Isolated' || split.invert === true)
    return undefined;
  if (!isObject(byteLevel) || byteLevel.type !== 'ByteLevel' || byteLevel.use_regex !== false) return undefined;
  const regex = isObject(split.pattern) ? split.pattern.Regex : undefined;
  return typeof regex === 'string' ? PRE_TOKENIZER_BY_REGEX.get(regex) : undefined;
}
