/**
 * SentencePiece BPE as llama.cpp runs it (llm_tokenizer_spm_session in src/llama-vocab.cpp):
 * start from single characters, repeatedly merge the adjacent pair whose joined text is a vocabulary
 * piece with the highest score (ties: leftmost), and spell characters that never became a piece as
 * `<0xXX>` byte tokens. Written by hand because no maintained JavaScript library tokenizes a GGUF
 * SentencePiece vocabulary (pieces + scores, no merges list) the way llama.cpp does.
 */
import { Heap } from './heap.js';

export interface SentencePieceVocab {
  /** Id of an exact piece ('▁the'), or undefined. */
  pieceId(piece: string): number | undefined;
  score(id: number): number;
  /** Id for one raw byte: `<0xXX>`, else the one-byte piece; throws when neither exists. */
  byteId(byte: number): number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  /** Joined length in UTF-16 units, to recognise pairs made stale by an earlier merge. */
  length: number;
}

/** llama.cpp's comparator: higher score first, then the leftmost pair. */
const bigramBefore = (a: Bigram, b: Bigram): boolean => a.score > b.score || (a.score === b.score && a.left < b.left);

const utf8Encoder = new TextEncoder();

/** Append the ids of `text` (already space-escaped with '▁') to `output`. */
export function sentencePieceTokenize(vocab: SentencePieceVocab, text: string, output: number[]): void {
  // One symbol per character: [start, length] in UTF-16 units, linked by prev/next.
  const start: number[] = [];
  const length: number[] = [];
  for (let offset = 0; offset < text.length; ) {
    const width = text.codePointAt(offset)! > 0xffff ? 2 : 1;
    start.push(offset);
    length.push(width);
    offset += width;
  }
  const count = start.length;
  if (count === 0) return;
  const prev = Array.from({ length: count }, (_, i) => i - 1);
  const next = Array.from({ length: count }, (_, i) => (i + 1 < count ? i + 1 : -1));

  const queue = new Heap<Bigram>(bigramBefore);
  const tryAddBigram = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const joined = length[left] + length[right];
    const id = vocab.pieceId(text.substr(start[left], joined));
    if (id === undefined) return;
    queue.push({ left, right, score: vocab.score(id), length: joined });
  };
  for (let i = 1; i < count; i++) tryAddBigram(i - 1, i);

  for (let bigram = queue.pop(); bigram; bigram = queue.pop()) {
    const { left, right } = bigram;
    if (length[left] === 0 || length[right] === 0 || length[left] + length[right] !== bigram.length) continue;
    length[left] += length[right];
    length[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    tryAddBigram(prev[left], left);
    tryAddBigram(left, next[left]);
  }

  // Every merged symbol is a piece (a pair is queued only when it is); a single character that is
  // not a piece falls back to its UTF-8 bytes.
  for (let i = 0; i !== -1; i = next[i]) {
    const symbol = text.substr(start[i], length[i]);
    const id = vocab.pieceId(symbol);
    if (id !== undefined) {
      output.push(id);
    } else {
      for (const byte of utf8Encoder.encode(symbol)) output.push(vocab.byteId(byte));
    }
  }
}
