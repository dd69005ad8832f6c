/**
 * Byte-level BPE as llama.cpp runs it for `gpt2`-model GGUF vocabularies (llm_tokenizer_bpe_session
 * and unicode_regex_split_custom_* in llama.cpp's src/llama-vocab.cpp and src/unicode.cpp): split
 * the text into words with the pre-tokenizer named by `tokenizer.ggml.pre`, write each word's UTF-8
 * bytes in GPT-2's byte alphabet, then merge adjacent symbols by merge rank (lowest first, ties
 * leftmost). Written by hand because no maintained JavaScript library tokenizes a GGUF BPE vocabulary
 * with llama.cpp's pre-tokenizers (its splitters are hand-written code, not the HF regexes).
 */
import { InputError } from '../errors.js';
import { Heap } from './heap.js';
import { byteLevelEncode, codepointFlags, codepointsOf, CodepointFlag, utf8Bytes } from './unicode.js';

/** The word splitters fireopt implements (llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT2 and _LLAMA3 regexes). */
export type BpeSplitter = 'gpt2' | 'llama3';

export interface BpePreTokenizer {
  splitter: BpeSplitter;
  /** llama.cpp `ignore_merges`: a word that is already a vocabulary token is emitted whole. */
  ignoreMerges: boolean;
}

// `tokenizer.ggml.pre` names llama.cpp maps to these two splitters, with its ignore_merges flag.
// All of them keep llama.cpp's default clean_spaces = true for detokenization.
const GPT2: BpePreTokenizer = { splitter: 'gpt2', ignoreMerges: false };
const LLAMA3: BpePreTokenizer = { splitter: 'llama3', ignoreMerges: true };
const LLAMA3_REGEX_ONLY: BpePreTokenizer = { splitter: 'llama3', ignoreMerges: false };
const PRE_TOKENIZERS = new Map<string, BpePreTokenizer>([
  ...['gpt-2', 'phi-2', 'jina-es', 'jina-de', 'gigachat', 'jina-v2-es', 'jina-v2-de', 'a.x-4.0', 'mellum', 'modern-bert', 'mpt', 'olmo', 'jais', 'exaone4']
    .map((name) => [name, GPT2] as const),
  ...['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2'].map((name) => [name, LLAMA3] as const),
  ...['dbrx', 'smaug-bpe'].map((name) => [name, LLAMA3_REGEX_ONLY] as const),
]);

/** The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value; InputError for ones fireopt lacks. */
export function bpePreTokenizerFor(pre: string | undefined, path: string): BpePreTokenizer {
  const name = pre ?? 'default';
  const preTokenizer = PRE_TOKENIZERS.get(name);
  if (!preTokenizer) {
    throw new InputError(
      `${path}: BPE pre-tokenizer '${name}' is not supported; fireopt implements llama.cpp's gpt-2 and llama3 families (${[...PRE_TOKENIZERS.keys()].join(', ')})`,
    );
  }
  return preTokenizer;
}

const OUT_OF_RANGE = -1;
const isLetter = (flags: number): boolean => (flags & CodepointFlag.Letter) !== 0;
const isNumber = (flags: number): boolean => (flags & CodepointFlag.Number) !== 0;
const isWhitespace = (flags: number): boolean => (flags & CodepointFlag.Whitespace) !== 0;
const LF = 0x0a;
const CR = 0x0d;
const APOSTROPHE = 0x27;
const SPACE = 0x20;

/** Split codepoints into words; returns the word lengths (in codepoints). */
function splitWords(codepoints: number[], splitter: BpeSplitter): number[] {
  const end = codepoints.length;
  const cpt = (pos: number): number => (pos < end ? codepoints[pos] : OUT_OF_RANGE);
  // Out of range has no flags at all; any real codepoint has at least "undefined" in llama.cpp,
  // which matters for `[^\s\p{L}\p{N}]`: it must match every in-range codepoint that is not L/N/space.
  const inRange = (pos: number): boolean => pos < end;
  const flagsAt = (pos: number): number => (pos < end ? codepointFlags(codepoints[pos]) : 0);
  const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 32 : c);
  const words: number[] = [];
  let previousEnd = 0;
  const addToken = (tokenEnd: number): number => {
    const length = tokenEnd - previousEnd;
    if (length > 0) words.push(length);
    previousEnd = tokenEnd;
    return length;
  };
  const caseFold = splitter === 'llama3' ? lower : (c: number): number => c;

  for (let pos = 0; pos < end; ) {
    const c = cpt(pos);
    const flags = flagsAt(pos);

    // 's|'t|'re|'ve|'m|'ll|'d  (case-insensitive for llama3)
    if (c === APOSTROPHE && pos + 1 < end) {
      const c1 = caseFold(cpt(pos + 1));
      if (c1 === 0x73 || c1 === 0x74 || c1 === 0x6d || c1 === 0x64) {
        pos += addToken(pos + 2);
        continue;
      }
      if (pos + 2 < end) {
        const c2 = caseFold(cpt(pos + 2));
        if ((c1 === 0x72 && c2 === 0x65) || (c1 === 0x76 && c2 === 0x65) || (c1 === 0x6c && c2 === 0x6c)) {
          pos += addToken(pos + 3);
          continue;
        }
      }
    }

    if (splitter === 'gpt2') {
      const flags2 = c === SPACE ? flagsAt(pos + 1) : flags;
      const inRange2 = c === SPACE ? inRange(pos + 1) : inRange(pos);
      //  ?\p{L}+
      if (isLetter(flags2)) {
        pos += c === SPACE ? 1 : 0;
        while (isLetter(flagsAt(pos))) pos++;
        addToken(pos);
        continue;
      }
      //  ?\p{N}+
      if (isNumber(flags2)) {
        pos += c === SPACE ? 1 : 0;
        while (isNumber(flagsAt(pos))) pos++;
        addToken(pos);
        continue;
      }
      //  ?[^\s\p{L}\p{N}]+
      if (!isWhitespace(flags2) && !isLetter(flags2) && !isNumber(flags2) && inRange2) {
        pos += c === SPACE ? 1 : 0;
        while (inRange(pos) && !(flagsAt(pos) & (CodepointFlag.Whitespace | CodepointFlag.Letter | CodepointFlag.Number))) pos++;
        addToken(pos);
        continue;
      }
    } else {
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (!(c === CR || c === LF || isNumber(flags))) {
        if (isLetter(flags) || isLetter(flagsAt(pos + 1))) {
          pos++;
          while (isLetter(flagsAt(pos))) pos++;
          addToken(pos);
          continue;
        }
      }
      // \p{N}{1,3}
      if (isNumber(flags)) {
        let first = pos;
        while (isNumber(flagsAt(pos))) {
          if (++pos - first >= 3) {
            addToken(pos);
            first = pos;
          }
        }
        addToken(pos);
        continue;
      }
      //  ?[^\s\p{L}\p{N}]+[\r\n]*
      let flags2 = c === SPACE ? flagsAt(pos + 1) : flags;
      if (!isWhitespace(flags2) && !isLetter(flags2) && !isNumber(flags2) && inRange(pos)) {
        pos += c === SPACE ? 1 : 0;
        // llama.cpp tests the flags of each following codepoint; out of range (flags 0) stops.
        let inside = inRange(pos);
        while (!isWhitespace(flags2) && !isLetter(flags2) && !isNumber(flags2) && inside) {
          pos++;
          flags2 = flagsAt(pos);
          inside = inRange(pos);
        }
        let c2 = cpt(pos);
        while (c2 === CR || c2 === LF) c2 = cpt(++pos);
        addToken(pos);
        continue;
      }
    }

    let whitespaceCount = 0;
    let lastCrOrLfEnd = 0;
    while (isWhitespace(flagsAt(pos + whitespaceCount))) {
      const c2 = cpt(pos + whitespaceCount);
      if (c2 === CR || c2 === LF) lastCrOrLfEnd = pos + whitespaceCount + 1;
      whitespaceCount++;
    }
    // \s*[\r\n]+  (llama3 only)
    if (splitter === 'llama3' && lastCrOrLfEnd > 0) {
      pos = lastCrOrLfEnd;
      addToken(pos);
      continue;
    }
    // \s+(?!\S)
    if (whitespaceCount > 1 && cpt(pos + whitespaceCount) !== OUT_OF_RANGE) {
      pos += whitespaceCount - 1;
      addToken(pos);
      continue;
    }
    // \s+
    if (whitespaceCount > 0) {
      pos += whitespaceCount;
      addToken(pos);
      continue;
    }
    // no match
    addToken(++pos);
  }
  return words;
}

/** Pre-tokenize well-formed `text` into byte-level-encoded words (llama.cpp unicode_regex_split, byte_encode on). */
export function bpePreTokenize(text: string, splitter: BpeSplitter): string[] {
  const codepoints = codepointsOf(text);
  const words: string[] = [];
  let offset = 0; // UTF-16 offset into text
  let index = 0; // codepoint index
  for (const length of splitWords(codepoints, splitter)) {
    let width = 0;
    for (let i = index; i < index + length; i++) width += codepoints[i] > 0xffff ? 2 : 1;
    words.push(byteLevelEncode(text.substr(offset, width)));
    offset += width;
    index += length;
  }
  return words;
}

export interface BpeVocab {
  pieceId(piece: string): number | undefined;
  /** Rank of merging `left` + `right` (its index in the merges list), or undefined. */
  mergeRank(left: string, right: string): number | undefined;
}

interface Bigram {
  left: number;
  right: number;
  rank: number;
  length: number;
}

const bigramBefore = (a: Bigram, b: Bigram): boolean => a.rank < b.rank || (a.rank === b.rank && a.left < b.left);

/** Append the ids of one byte-level-encoded word to `output`. */
export function bpeTokenizeWord(vocab: BpeVocab, word: string, ignoreMerges: boolean, output: number[]): void {
  if (ignoreMerges) {
    const whole = vocab.pieceId(word);
    if (whole !== undefined) {
      output.push(whole);
      return;
    }
  }
  const start: number[] = [];
  const length: number[] = [];
  for (let offset = 0; offset < word.length; ) {
    const width = word.codePointAt(offset)! > 0xffff ? 2 : 1;
    start.push(offset);
    length.push(width);
    offset += width;
  }
  const count = start.length;
  const prev = Array.from({ length: count }, (_, i) => i - 1);
  const next = Array.from({ length: count }, (_, i) => (i + 1 < count ? i + 1 : -1));
  const queue = new Heap<Bigram>(bigramBefore);
  const addBigram = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const rank = vocab.mergeRank(word.substr(start[left], length[left]), word.substr(start[right], length[right]));
    if (rank === undefined) return;
    queue.push({ left, right, rank, length: length[left] + length[right] });
  };
  for (let i = 1; i < count; i++) addBigram(i - 1, i);
  for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
    const { left, right } = bigram;
    if (length[left] === 0 || length[right] === 0 || length[left] + length[right] !== bigram.length) continue;
    length[left] += length[right];
    length[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    addBigram(prev[left], left);
    addBigram(left, next[left]);
  }
  for (let i = 0; i < count; i++) {
    if (length[i] === 0) continue;
    const symbol = word.substr(start[i], length[i]);
    const id = vocab.pieceId(symbol);
    if (id !== undefined) {
      output.push(id);
      continue;
    }
    // llama.cpp then looks up each UTF-8 byte of the symbol as a one-byte piece, skipping misses.
    for (const byte of utf8Bytes(symbol)) {
      const byteId = vocab.pieceId(String.fromCharCode(byte));
      if (byteId !== undefined && byte < 0x80) output.push(byteId);
    }
  }
}
