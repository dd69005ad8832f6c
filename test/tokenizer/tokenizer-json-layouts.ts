/**
 * tokenizer.json files in the layouts Hugging Face's own repositories use, written from a vocab-only
 * GGUF's vocabulary (no tokenizer.json ships in ../shared): for tests that compare the library, llama.cpp
 * and fireopt's tokenizer.json → GGUF conversion on the same vocabulary.
 */
import { TokenType, type Vocabulary } from '../../src/tokenizer/index.js';

export { gpt2TokenizerJson } from '../../scripts/gpt2-tokenizer-json.mjs';

/**
 * Llama-2's tokenizer.json layout. Merges come from the SentencePiece pieces as in transformers'
 * SentencePieceExtractor: every split of a normal piece into two pieces, ordered by the merged
 * piece's score (highest first), then by the two halves' ids.
 */
export function llamaTokenizerJson(vocabulary: Vocabulary): object {
  const vocab: Record<string, number> = {};
  vocabulary.tokens.forEach((token, id) => {
    vocab[token] = id;
  });
  const scores = vocabulary.scores!;
  const merges: Array<{ left: string; right: string; score: number }> = [];
  vocabulary.tokens.forEach((piece, id) => {
    if (vocabulary.tokenTypes[id] !== TokenType.Normal) return;
    const chars = Array.from(piece);
    const splits: Array<{ left: string; right: string; score: number }> = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      if (left in vocab && right in vocab) splits.push({ left, right, score: scores[id] });
    }
    splits.sort((a, b) => vocab[a.left] - vocab[b.left] || vocab[a.right] - vocab[b.right]);
    merges.push(...splits);
  });
  merges.sort((a, b) => b.score - a.score);
  const specials = [vocabulary.unkId ?? 0, vocabulary.bosId ?? 1, vocabulary.eosId ?? 2];
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((id) => ({
      id,
      content: vocabulary.tokens[id],
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '\u2581' },
        { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: merges.map(({ left, right }) => `${left} ${right}`),
    },
  };
}
