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
   * convert_hf_to_gguf.py writes it: every id up to `vocabSize` (ids the tokenizer lacks become unused
   * `[PAD<id>]`), added tokens as control (special) or user-defined, BOS/EOS/PAD, add_bos/add_eos and
   * the chat template. Byte-level BPE becomes model `gpt2` with its merges and llama.cpp's name for the
   * pre-tokenizer; SentencePiece-style BPE becomes model `llama` with scores that order llama.cpp's
   * merges as the tokenizer.json ranks them. A tokenizer llama.cpp cannot reproduce is refused by name.
   */
  ggufVocabulary(vocabSize = this.vocabSize): Vocabulary {
    const model = this.tokenizerJson.model as JsonObject;
    const refuse = (why: string): never => {
      throw new InputError(
        `${this.path}: cannot write this tokenizer as GGUF metadata: ${why}`,
        'llama.cpp reproduces byte-level BPE tokenizers with a known pre-tokenizer (GPT-2, Llama-3, Qwen2) and ' +
          "SentencePiece-style BPE (byte fallback, '▁' for spaces: Llama-2, Gemma); export the draft as 'hf' instead",
        'E_EXPORT_TOKENIZER',
      );
    };
    if (model.type === 'Unigram') refuse(UNIGRAM_REFUSAL);
    if (model.type !== 'BPE') refuse(`model type '${String(model.type)}' (only BPE models are converted)`);
    const kind = this.byteLevel
      ? byteLevelBpe(this.tokenizerJson, refuse)
      : model.byte_fallback === true
        ? sentencePieceBpe(this.tokenizerJson, refuse)
        : refuse('the BPE is neither byte-level (no ByteLevel decoder) nor SentencePiece-style (no byte_fallback)');
    if (vocabSize < this.vocabSize) refuse(`vocab_size ${vocabSize} is below the tokenizer's ${this.vocabSize} ids`);
    const merges = Array.isArray(model.merges)
      ? model.merges.map((merge) => mergePair(merge, refuse))
      : refuse('the BPE model has no merges');

    const unkId =
      kind.model === 'llama' && typeof model.unk_token === 'string' ? this.idOfPiece.get(model.unk_token) : undefined;
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
      const addedToken = added.get(id);
      tokenTypes[id] =
        id === unkId
          ? TokenType.Unknown
          : addedToken?.special
            ? TokenType.Control
            : addedToken
              ? TokenType.UserDefined
              : kind.model === 'llama' && BYTE_PIECE.test(piece)
                ? TokenType.Byte
                : TokenType.Normal;
      // SentencePiece matches user-defined pieces in the text after spaces became '▁'; llama.cpp matches
      // them in the raw text, so the converter writes their '▁' as spaces (Gemma's whitespace runs).
      tokens.push(
        kind.model === 'llama' && tokenTypes[id] === TokenType.UserDefined ? piece.replaceAll('▁', ' ') : piece,
      );
    }
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
    const common = {
      tokens,
      tokenTypes,
      bosId: this.bosId,
      eosId: this.eosId,
      padId: specialId(this.config.pad_token),
      addBos: this.addBos,
      addEos: this.addEos,
      ...(chatTemplate !== undefined && { chatTemplate }),
    };
    if (kind.model === 'gpt2')
      return { model: 'gpt2', pre: kind.pre, merges: merges.map(([left, right]) => `${left} ${right}`), ...common };
    return {
      model: 'llama',
      scores: mergeRankScores(merges, (piece) => this.idOfPiece.get(piece), tokens, tokenTypes, refuse),
      unkId,
      addSpacePrefix: kind.addSpacePrefix,
      ...common,
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

type Refuse = (why: string) => never;

/** A byte-fallback piece (`<0x41>`): GGUF token type Byte in a SentencePiece vocabulary. */
const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;
/** The byte-fallback piece of a byte, as SentencePiece, @huggingface/tokenizers and llama.cpp spell it. */
const bytePiece = (byte: number): string => `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;

/**
 * Why a Unigram tokenizer.json is refused. Unigram picks the most likely segmentation (Viterbi over the
 * piece scores); llama.cpp's `llama` vocabulary merges adjacent pieces greedily, highest score first,
 * which segments differently (vocabulary a, b, c, ab, bc: "abc" is a|bc for Unigram, ab|c for llama.cpp
 * when ab scores higher; test/tokenizer/hf-to-gguf.test.ts shows it). llama.cpp's own Viterbi vocabulary
 * (`t5`, UGM) also needs SentencePiece's precompiled normalizer, which a tokenizer.json does not hold.
 */
const UNIGRAM_REFUSAL =
  "model type 'Unigram': llama.cpp's SentencePiece vocabulary ('llama') merges pieces greedily by score, " +
  'which is not the most likely segmentation a Unigram model picks, and its Viterbi vocabulary (t5) needs ' +
  "SentencePiece's precompiled normalizer, which tokenizer.json does not hold";

/** A byte-level BPE tokenizer.json as llama.cpp's `gpt2` vocabulary: its pre-tokenizer's llama.cpp name. */
function byteLevelBpe(json: JsonObject, refuse: Refuse): { model: 'gpt2'; pre: string } {
  const normalizer = json.normalizer;
  // NFC leaves the text of every test string unchanged; llama.cpp does not normalise.
  if (normalizer != null && !(isObject(normalizer) && normalizer.type === 'NFC'))
    refuse(`normalizer ${JSON.stringify(normalizer).slice(0, 80)}`);
  const pre = llamaCppPreTokenizer(json.pre_tokenizer);
  return {
    model: 'gpt2',
    pre: pre ?? refuse(`pre-tokenizer ${JSON.stringify(json.pre_tokenizer).slice(0, 160)} has no llama.cpp equivalent`),
  };
}

/**
 * A SentencePiece-style BPE tokenizer.json (byte fallback; spaces written as '▁' by a Replace normalizer
 * or a non-splitting Metaspace pre-tokenizer, optionally with one '▁' prepended) as llama.cpp's `llama`
 * vocabulary, which does exactly that to each stretch of text between special tokens and then merges
 * adjacent pieces by score. Whether the '▁' is prepended becomes `add_space_prefix`.
 */
function sentencePieceBpe(json: JsonObject, refuse: Refuse): { model: 'llama'; addSpacePrefix: boolean } {
  const model = json.model as JsonObject;
  if (model.ignore_merges === true) refuse('ignore_merges is set (llama.cpp merges every text piece by piece)');
  if (model.dropout != null) refuse('BPE dropout is set (llama.cpp always merges)');
  if (model.continuing_subword_prefix || model.end_of_word_suffix)
    refuse('the BPE marks continuing subwords or word ends, which llama.cpp does not');
  const vocab = isObject(model.vocab) ? model.vocab : {};
  const missingByte = Array.from({ length: 256 }, (_, byte) => bytePiece(byte)).find((piece) => !(piece in vocab));
  // llama.cpp aborts the process when a byte it falls back to has no piece.
  if (missingByte) refuse(`byte_fallback is set but the vocabulary has no ${missingByte} piece`);
  const normalizer = json.normalizer;
  const steps =
    normalizer == null
      ? []
      : isObject(normalizer) && normalizer.type === 'Sequence' && Array.isArray(normalizer.normalizers)
        ? normalizer.normalizers
        : [normalizer];
  let spacesAsMeta = false;
  let addSpacePrefix = false;
  for (const step of steps) {
    if (isObject(step) && step.type === 'Replace' && isObject(step.pattern) && step.pattern.String === ' ')
      spacesAsMeta = step.content === '▁' || refuse(`normalizer step ${JSON.stringify(step)} (spaces must become '▁')`);
    else if (isObject(step) && step.type === 'Prepend' && step.prepend === '▁') addSpacePrefix = true;
    else
      refuse(
        `normalizer step ${JSON.stringify(step).slice(0, 80)} has no llama.cpp equivalent ` +
          "(its SentencePiece tokenizer only writes spaces as '▁' and may prepend one)",
      );
  }
  const pre = json.pre_tokenizer;
  if (isObject(pre) && pre.type === 'Metaspace' && pre.replacement === '▁' && pre.split === false) {
    spacesAsMeta = true;
    // Metaspace prepends no '▁' to text that already starts with one, and with prepend_scheme 'first' none
    // after a special token; llama.cpp, like the official GGUFs of such models, always prepends
    // (docs/formats.md, tokenizer.json → GGUF metadata). Older files say add_prefix_space instead.
    addSpacePrefix =
      typeof pre.prepend_scheme === 'string' ? pre.prepend_scheme !== 'never' : pre.add_prefix_space !== false;
  } else if (
    pre != null &&
    // Splitting at ' ' after the normalizer turned every space into '▁' splits nothing (Gemma's).
    !(
      spacesAsMeta &&
      isObject(pre) &&
      pre.type === 'Split' &&
      isObject(pre.pattern) &&
      pre.pattern.String === ' ' &&
      pre.invert !== true
    )
  ) {
    refuse(`pre-tokenizer ${JSON.stringify(pre).slice(0, 160)} has no llama.cpp equivalent`);
  }
  if (!spacesAsMeta)
    refuse("spaces are not written as '▁' (no Replace normalizer or Metaspace pre-tokenizer), as llama.cpp does");
  return { model: 'llama', addSpacePrefix };
}

/** One tokenizer.json merge, `["a", "b"]` or the older `"a b"`, as its two pieces. */
function mergePair(merge: Json, refuse: Refuse): [string, string] {
  if (Array.isArray(merge) && merge.length === 2 && typeof merge[0] === 'string' && typeof merge[1] === 'string')
    return [merge[0], merge[1]];
  const parts = typeof merge === 'string' ? merge.split(' ') : [];
  return parts.length === 2 ? [parts[0], parts[1]] : refuse(`merge ${JSON.stringify(merge)} is not two pieces`);
}

/**
 * SentencePiece scores that make llama.cpp's merger follow the tokenizer.json merge ranks: llama.cpp
 * merges the adjacent pair whose joined piece scores highest (leftmost first), so a normal piece scores
 * -(rank of the first merge that makes it). Pieces no merge makes score below every merge; special,
 * user-defined and byte pieces score 0, as SentencePiece gives them. Only a complete merge list gives the
 * same order: llama.cpp may join any two pieces whose text is a piece, so a normal piece that splits into
 * two normal pieces without that merge being listed is refused (a converted SentencePiece model lists all).
 */
function mergeRankScores(
  merges: ReadonlyArray<[string, string]>,
  idOf: (piece: string) => number | undefined,
  tokens: readonly string[],
  tokenTypes: Int32Array,
  refuse: Refuse,
): Float32Array {
  const count = tokens.length;
  const scores = new Float32Array(count);
  const made = new Uint8Array(count);
  // Listed merges by piece ids, left * count + right (exact in a double for any vocabulary size).
  const listed = new Set<number>();
  merges.forEach(([left, right], rank) => {
    const leftId = idOf(left);
    const rightId = idOf(right);
    const id = idOf(left + right);
    if (leftId === undefined || rightId === undefined || id === undefined)
      return refuse(`merge ${JSON.stringify([left, right])} joins pieces that are not in the vocabulary`);
    listed.add(leftId * count + rightId);
    if (tokenTypes[id] !== TokenType.Normal || made[id]) return;
    made[id] = 1;
    scores[id] = 0 - rank; // not -0 for the first merge
  });
  const normalId = (piece: string): number | undefined => {
    const id = idOf(piece);
    return id !== undefined && tokenTypes[id] === TokenType.Normal ? id : undefined;
  };
  for (let id = 0; id < count; id++) {
    if (tokenTypes[id] !== TokenType.Normal) continue;
    if (!made[id]) scores[id] = -merges.length;
    const piece = tokens[id];
    for (let at = 1; at < piece.length; at++) {
      const code = piece.charCodeAt(at);
      if (code >= 0xdc00 && code <= 0xdfff) continue; // the second half of a surrogate pair: not a boundary
      const leftId = normalId(piece.slice(0, at));
      const rightId = leftId === undefined ? undefined : normalId(piece.slice(at));
      if (leftId === undefined || rightId === undefined || listed.has(leftId * count + rightId)) continue;
      refuse(
        `piece ${JSON.stringify(piece)} splits into ${JSON.stringify(piece.slice(0, at))} + ` +
          `${JSON.stringify(piece.slice(at))}, which is not a listed merge; llama.cpp's SentencePiece merger ` +
          'would join them (it joins any two pieces that make a piece)',
      );
    }
  }
  return scores;
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
