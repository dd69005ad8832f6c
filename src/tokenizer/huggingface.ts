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

  constructor(tokenizerJson: JsonObject, config: JsonObject, path = '<tokenizer.json>') {
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
