/**
 * A GGUF-style vocabulary tokenized exactly as llama.cpp does (src/llama-vocab.cpp): token
 * attributes derived from the token types plus llama.cpp's by-name fix-ups, special-token
 * partitioning of the input, the SentencePiece (`llama`) or byte-level BPE (`gpt2`) session on each
 * text fragment, and detokenization with llama.cpp's leading-space and clean-up rules.
 * Hand-written because no maintained JavaScript library reproduces llama.cpp's tokenizer for GGUF
 * vocabularies; every rule here names the llama.cpp behaviour it copies.
 */
import { InputError } from '../errors.js';
import { bpePreTokenize, bpePreTokenizerFor, bpeTokenizeWord, type BpePreTokenizer, type BpeVocab } from './bpe.js';
import { sentencePieceTokenize, type SentencePieceVocab } from './spm.js';
import type { DecodeOptions, EncodeOptions, Tokenizer, TokenizerKind } from './tokenizer.js';
import { CHAR_TO_BYTE, utf8Bytes } from './unicode.js';
import { TokenType, type Vocabulary } from './vocabulary.js';

/** llama.cpp's llama_token_attr bits. */
export const TokenAttr = {
  Undefined: 0,
  Unknown: 1 << 0,
  Unused: 1 << 1,
  Normal: 1 << 2,
  Control: 1 << 3,
  UserDefined: 1 << 4,
  Byte: 1 << 5,
  Normalized: 1 << 6,
  Lstrip: 1 << 7,
  Rstrip: 1 << 8,
  SingleWord: 1 << 9,
} as const;

const ATTR_OF_TYPE: Record<number, number> = {
  [TokenType.Undefined]: TokenAttr.Undefined,
  [TokenType.Normal]: TokenAttr.Normal,
  [TokenType.Unknown]: TokenAttr.Unknown,
  [TokenType.Control]: TokenAttr.Control,
  [TokenType.UserDefined]: TokenAttr.UserDefined,
  [TokenType.Unused]: TokenAttr.Unused,
  [TokenType.Byte]: TokenAttr.Byte,
};

// Token texts llama.cpp turns into control tokens whatever their stored type (EOG / EOT / FIM detection).
const END_OF_GENERATION_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>',
  '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
];
const FILL_IN_MIDDLE_TEXTS = [
  '<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>',
  '<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>',
  '<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>',
];
// FIM pad, repo and file-separator tokens: llama.cpp also ends generation at these.
const FILL_IN_MIDDLE_END_TEXTS = [
  '<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]',
  '<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>', '<|file_sep|>',
];
// gpt-oss: llama.cpp always renders and matches these.
const ALWAYS_USER_DEFINED_TEXTS = ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>'];

/** o200k_harmony / solar-open: '<|end|>' ends a message there, not the generation, and is rendered. */
function harmonyEndIsText(has: (text: string) => boolean): boolean {
  return has('<|end|>') && ((has('<|return|>') && has('<|call|>')) || (has('<|calls|>') && has('<|flush|>')));
}

/** gemma4 / paddleocr: '</s>' is ordinary text there. */
function closingTagIsText(has: (text: string) => boolean): boolean {
  return has('<|tool_response>') && has('</s>');
}

/**
 * llama.cpp's end-of-generation set (`llama_vocab_is_eog`): the vocabulary's EOS plus the
 * end-of-turn and FIM pad/repo/separator tokens it recognises by their text, with its exceptions.
 */
export function endOfGenerationIds(vocabulary: Pick<Vocabulary, 'tokens' | 'eosId'>): Set<number> {
  const idOf = new Map(vocabulary.tokens.map((text, id) => [text, id]));
  const has = (text: string): boolean => idOf.has(text);
  const texts = [...END_OF_GENERATION_TEXTS, ...FILL_IN_MIDDLE_END_TEXTS].filter(
    (text) => !(text === '<|end|>' && harmonyEndIsText(has)) && !(text === '</s>' && closingTagIsText(has)),
  );
  const ids = new Set<number>();
  for (const text of texts) {
    const id = idOf.get(text);
    if (id !== undefined) ids.add(id);
  }
  const eos = vocabulary.eosId;
  if (eos !== undefined && eos >= 0 && eos < vocabulary.tokens.length) ids.add(eos);
  return ids;
}

export interface LlamaCppTokenizerOptions {
  /** File the vocabulary came from, for error messages. */
  path?: string;
  /** GGUF `general.name`: llama.cpp strips whitespace after Phi-3's special tokens by this name. */
  modelName?: string;
}

type Fragment = string | number; // raw text, or a special token id

const C_ISSPACE = /[ \t\n\v\f\r]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Tokenizer for a `llama` (SentencePiece) or `gpt2` (byte-level BPE) vocabulary, matching llama.cpp. */
export class LlamaCppTokenizer implements Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** llama_token_attr per token, after llama.cpp's load-time adjustments. */
  readonly attributes: Uint32Array;

  private readonly tokens: string[];
  private readonly idOfPiece = new Map<string, number>();
  private readonly specialTokens: number[];
  private readonly pieceBytes: Uint8Array[];
  private bytesIndex: Map<string, number> | undefined;
  private readonly addBos: boolean;
  private readonly addEos: boolean;
  private readonly addSpacePrefix: boolean;
  private readonly cleanSpaces: boolean;
  private readonly scores: Float32Array | undefined;
  private readonly mergeRanks = new Map<string, number>();
  private readonly preTokenizer: BpePreTokenizer | undefined;

  constructor(vocabulary: Vocabulary, options: LlamaCppTokenizerOptions = {}) {
    const path = options.path ?? '<vocabulary>';
    const tokenCount = vocabulary.tokens.length;
    if (tokenCount === 0) throw new InputError(`${path}: the vocabulary has no tokens`);
    if (vocabulary.tokenTypes.length !== tokenCount) {
      throw new InputError(`${path}: ${vocabulary.tokenTypes.length} token types for ${tokenCount} tokens`);
    }
    const isSentencePiece = vocabulary.model === 'llama';
    this.kind = isSentencePiece ? 'sentencepiece' : 'bpe';
    this.vocabSize = tokenCount;
    // llama.cpp renames empty tokens so that they cannot match text.
    this.tokens = vocabulary.tokens.map((token, id) => (token === '' ? `[EMPTY_${id}]` : token));
    this.tokens.forEach((token, id) => this.idOfPiece.set(token, id));

    if (isSentencePiece) {
      if (!vocabulary.scores || vocabulary.scores.length !== tokenCount) {
        throw new InputError(`${path}: a SentencePiece ('llama') vocabulary needs one score per token`);
      }
      this.scores = vocabulary.scores;
    } else {
      if (!vocabulary.merges) throw new InputError(`${path}: a BPE ('gpt2') vocabulary needs its merges`);
      this.preTokenizer = bpePreTokenizerFor(vocabulary.pre, path);
      vocabulary.merges.forEach((merge, rank) => {
        // llama.cpp splits at the first space after the first character; the first rank wins.
        const space = merge.indexOf(' ', 1);
        const key = space < 0 ? mergeKey('', '') : mergeKey(merge.slice(0, space), merge.slice(space + 1));
        if (!this.mergeRanks.has(key)) this.mergeRanks.set(key, rank);
      });
    }

    // llama.cpp's defaults when the GGUF names no special ids: SentencePiece <unk>=0, <s>=1, </s>=2.
    const inVocab = (id: number | undefined): number | undefined => (id !== undefined && id >= 0 && id < tokenCount ? id : undefined);
    this.bosId = inVocab(vocabulary.bosId ?? (isSentencePiece ? 1 : undefined));
    this.eosId = inVocab(vocabulary.eosId ?? (isSentencePiece ? 2 : undefined));
    this.addBos = vocabulary.addBos;
    this.addEos = vocabulary.addEos;
    this.addSpacePrefix = vocabulary.addSpacePrefix ?? isSentencePiece;
    // Every BPE pre-tokenizer fireopt supports keeps llama.cpp's clean_spaces = true.
    this.cleanSpaces = !isSentencePiece;

    this.attributes = this.loadAttributes(vocabulary);
    // Special-token partition order: longest text first (llama.cpp sorts by byte length).
    this.specialTokens = [];
    for (let id = 0; id < tokenCount; id++) {
      if (this.attributes[id] & (TokenAttr.Control | TokenAttr.UserDefined | TokenAttr.Unknown)) this.specialTokens.push(id);
    }
    const byteLength = this.tokens.map((token) => Buffer.byteLength(token, 'utf8'));
    this.specialTokens.sort((a, b) => byteLength[b] - byteLength[a]);
    this.pieceBytes = this.tokens.map((_, id) => this.renderPiece(id));
    this.applyNamedStripRules(vocabulary, options.modelName ?? '');
  }

  private loadAttributes(vocabulary: Vocabulary): Uint32Array {
    const attributes = new Uint32Array(this.vocabSize);
    vocabulary.tokenTypes.forEach((type, id) => {
      attributes[id] = ATTR_OF_TYPE[type] ?? TokenAttr.Undefined;
    });
    const setControl = (text: string): void => {
      const id = this.idOfPiece.get(text);
      if (id !== undefined) attributes[id] |= TokenAttr.Control;
    };
    END_OF_GENERATION_TEXTS.forEach(setControl);
    FILL_IN_MIDDLE_TEXTS.forEach(setControl);
    FILL_IN_MIDDLE_END_TEXTS.forEach(setControl);
    for (const text of ALWAYS_USER_DEFINED_TEXTS) {
      const id = this.idOfPiece.get(text);
      if (id !== undefined) attributes[id] = TokenAttr.UserDefined;
    }
    const has = (text: string): boolean => this.idOfPiece.has(text);
    if (harmonyEndIsText(has)) attributes[this.idOfPiece.get('<|end|>')!] = TokenAttr.UserDefined;
    if (closingTagIsText(has)) attributes[this.idOfPiece.get('</s>')!] = TokenAttr.Normal;
    return attributes;
  }

  private applyNamedStripRules(vocabulary: Vocabulary, modelName: string): void {
    const name = modelName.toLowerCase();
    const set = (text: string, attr: number, on: boolean): void => {
      const id = this.idOfPiece.get(text);
      if (id === undefined) return;
      this.attributes[id] = on ? this.attributes[id] | attr : this.attributes[id] & ~attr;
    };
    const pre = vocabulary.pre ?? '';
    if (['jina-v2-de', 'jina-v2-es', 'jina-v2-code'].some((p) => pre.includes(p))) {
      set('<mask>', TokenAttr.Lstrip, true);
    } else if (name.includes('phi-3') || name.includes('phi3')) {
      for (const id of this.specialTokens) this.attributes[id] |= TokenAttr.Rstrip;
      set('</s>', TokenAttr.Rstrip, true);
      for (const text of ['<unk>', '<s>', '<|endoftext|>']) set(text, TokenAttr.Rstrip, false);
    } else if (name.includes('modern-bert')) {
      set('[MASK]', TokenAttr.Lstrip, true);
    }
  }

  /** llama.cpp token_to_piece(special = true): the bytes a token decodes to. */
  private renderPiece(id: number): Uint8Array {
    const attr = this.attributes[id];
    const text = this.tokens[id];
    if (attr & (TokenAttr.Unknown | TokenAttr.Control | TokenAttr.UserDefined)) return utf8Bytes(text);
    if (attr & TokenAttr.Normal) {
      if (this.kind === 'sentencepiece') return utf8Bytes(text.replaceAll('\u2581', ' '));
      return byteLevelDecode(text);
    }
    if (attr & TokenAttr.Byte) return Uint8Array.of(Number.parseInt(text.slice(3, 5), 16) || 0);
    return new Uint8Array(0);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const addBos = options.addBos ?? this.addBos;
    const addEos = options.addEos ?? this.addEos;
    const wellFormed = text.replace(LONE_SURROGATE, '\uFFFD');
    const fragments = wellFormed === '' ? [] : this.partition(wellFormed, options.parseSpecial ?? false);
    const output: number[] = [];
    if (addBos) output.push(this.requireId(this.bosId, 'BOS'));
    if (this.kind === 'sentencepiece') {
      let previousIsSpecial = true; // the first fragment gets the space prefix too
      for (const fragment of fragments) {
        if (typeof fragment === 'number') {
          output.push(fragment);
          previousIsSpecial = true;
          continue;
        }
        const prefixed = this.addSpacePrefix && previousIsSpecial ? ` ${fragment}` : fragment;
        sentencePieceTokenize(this.sentencePieceVocab, prefixed.replaceAll(' ', '\u2581'), output);
        previousIsSpecial = false;
      }
    } else {
      const preTokenizer = this.preTokenizer!;
      for (const fragment of fragments) {
        if (typeof fragment === 'number') {
          output.push(fragment);
          continue;
        }
        for (const word of bpePreTokenize(fragment, preTokenizer.splitter)) {
          bpeTokenizeWord(this.bpeVocab, word, preTokenizer.ignoreMerges, output);
        }
      }
    }
    if (addEos) output.push(this.requireId(this.eosId, 'EOS'));
    return output;
  }

  /**
   * llama.cpp tokenizer_st_partition: cut the text at each special token's text, longest tokens
   * first; control and unknown tokens only when `parseSpecial`. Lstrip/rstrip tokens swallow the
   * ASCII whitespace beside them.
   */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    let fragments: Fragment[] = [text];
    for (const id of this.specialTokens) {
      const attr = this.attributes[id];
      if (!parseSpecial && attr & (TokenAttr.Control | TokenAttr.Unknown)) continue;
      const tokenText = this.tokens[id];
      if (!fragments.some((fragment) => typeof fragment === 'string' && fragment.includes(tokenText))) continue;
      const next: Fragment[] = [];
      for (const fragment of fragments) {
        if (typeof fragment === 'number') {
          next.push(fragment);
          continue;
        }
        let rest = fragment;
        for (;;) {
          const match = rest.indexOf(tokenText);
          if (match < 0) {
            if (rest) next.push(rest);
            break;
          }
          let left = rest.slice(0, match);
          if (attr & TokenAttr.Lstrip) while (left && C_ISSPACE.test(left[left.length - 1])) left = left.slice(0, -1);
          if (left) next.push(left);
          next.push(id);
          rest = rest.slice(match + tokenText.length);
          if (attr & TokenAttr.Rstrip) {
            let skip = 0;
            while (skip < rest.length && C_ISSPACE.test(rest[skip])) skip++;
            rest = rest.slice(skip);
          }
          if (!rest) break;
        }
      }
      fragments = next;
    }
    return fragments;
  }

  private readonly sentencePieceVocab: SentencePieceVocab = {
    pieceId: (piece) => this.idOfPiece.get(piece),
    score: (id) => this.scores![id],
    byteId: (byte) => {
      const hex = byte.toString(16).toUpperCase().padStart(2, '0');
      const id = this.idOfPiece.get(`<0x${hex}>`) ?? (byte < 0x80 ? this.idOfPiece.get(String.fromCharCode(byte)) : undefined);
      if (id === undefined) throw new InputError(`the vocabulary has no byte-fallback token <0x${hex}> for a character it cannot spell`);
      return id;
    },
  };

  private readonly bpeVocab: BpeVocab = {
    pieceId: (piece) => this.idOfPiece.get(piece),
    mergeRank: (left, right) => this.mergeRanks.get(mergeKey(left, right)),
  };

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return utf8Decoder.decode(this.decodeBytes(ids, options));
  }

  /** llama.cpp llama_detokenize, byte for byte. */
  decodeBytes(ids: ArrayLike<number>, options: DecodeOptions = {}): Uint8Array {
    let first = 0;
    let end = ids.length;
    let removeSpace = this.addSpacePrefix;
    if (options.removeSpecial && this.addBos && end > 0 && ids[0] === this.bosId) {
      removeSpace = false;
      first = 1;
    }
    if (options.removeSpecial && this.addEos && end > first && ids[end - 1] === this.eosId) end--;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = first; i < end; i++) {
      const id = this.checkId(ids[i]);
      const skip = !options.renderSpecial && (this.attributes[id] & (TokenAttr.Unknown | TokenAttr.Control)) !== 0;
      if (!skip) {
        let piece = this.pieceBytes[id];
        if (removeSpace && piece.length > 0 && piece[0] === 0x20) piece = piece.subarray(1);
        parts.push(piece);
        total += piece.length;
      }
      removeSpace = false;
    }
    const text = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      text.set(part, offset);
      offset += part.length;
    }
    return this.cleanSpaces ? cleanUpSpaces(text) : text;
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
    return this.pieceBytes[this.checkId(id)].slice();
  }

  bytesToId(bytes: Uint8Array): number | undefined {
    if (!this.bytesIndex) {
      // Prefer what the encoder would emit: normal / user-defined pieces, then byte tokens, then control.
      const rank = (id: number): number => {
        const attr = this.attributes[id];
        if (attr & (TokenAttr.Control | TokenAttr.Unknown)) return 2;
        if (attr & TokenAttr.Byte) return 1;
        return 0;
      };
      const index = new Map<string, number>();
      this.pieceBytes.forEach((piece, id) => {
        if (piece.length === 0) return;
        const key = bytesKey(piece);
        const existing = index.get(key);
        if (existing === undefined || rank(id) < rank(existing)) index.set(key, id);
      });
      this.bytesIndex = index;
    }
    return this.bytesIndex.get(bytesKey(bytes));
  }

  isSpecial(id: number): boolean {
    return (this.attributes[this.checkId(id)] & (TokenAttr.Control | TokenAttr.Unknown)) !== 0;
  }

  private checkId(id: number): number {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new InputError(`token id ${id} is outside the ${this.vocabSize}-token vocabulary`);
    }
    return id;
  }

  private requireId(id: number | undefined, name: string): number {
    if (id === undefined) throw new InputError(`the vocabulary has no ${name} token`);
    return id;
  }
}

function mergeKey(left: string, right: string): string {
  return `${left.length}:${left}${right}`;
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

/**
 * llama.cpp's clean_spaces passes over the detokenized bytes (a port of its in-place loops):
 * drop the space before ? ! . , ; turn " ' " into "'"; drop the space before 's 'm 're 've.
 */
function cleanUpSpaces(input: Uint8Array): Uint8Array {
  const text = Uint8Array.from(input);
  const SPACE = 0x20;
  const QUOTE = 0x27;
  const ch = (c: string): number => c.charCodeAt(0);
  // first pass: " ?", " !", " .", " ,"
  const total1 = text.length;
  let total = total1 ? 1 : 0;
  for (let i = 1; i < total1; i++) {
    const x = text[i];
    if (text[i - 1] === SPACE && (x === ch('?') || x === ch('!') || x === ch('.') || x === ch(','))) total--;
    text[total++] = x;
  }
  // second pass: " ' " → "'"
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; i++) {
    const x = text[i];
    if (x === QUOTE && i + 1 < total2 && text[i - 1] === SPACE && text[i + 1] === SPACE) {
      total--;
      text[++i] = 0;
    }
    text[total++] = x;
  }
  // third pass: " 's", " 'm", " 're", " 've"
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; i++) {
    const x = text[i];
    if (text[i - 1] === SPACE && x === QUOTE && i + 1 < total3) {
      const x1 = text[i + 1];
      if (x1 === ch('s') || x1 === ch('m')) {
        total--;
      } else if (x1 !== ch('t') && x1 !== ch('d') && i + 2 < total3) {
        const x2 = text[i + 2];
        if ((x1 === ch('r') && x2 === ch('e')) || (x1 === ch('v') && x2 === ch('e'))) total--;
      }
    }
    text[total++] = x;
  }
  return text.slice(0, total);
}
