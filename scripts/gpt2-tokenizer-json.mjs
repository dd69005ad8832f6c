// GPT-2's tokenizer.json layout (as Hugging Face's `gpt2` repository has it) for a byte-level BPE
// vocabulary read from a vocab-only GGUF (no tokenizer.json ships in ../shared): one builder for the
// tokenizer tests and bench/tokenize.mjs, which compare @huggingface/tokenizers with llama.cpp on it.

/**
 * @param {{ tokens: readonly string[], merges?: readonly string[] }} vocabulary
 * @returns {object}
 */
export function gpt2TokenizerJson(vocabulary) {
  /** @type {Record<string, number>} */
  const vocab = {};
  vocabulary.tokens.forEach((token, id) => {
    vocab[token] = id;
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const endOfText = vocabulary.tokens.indexOf('<|endoftext|>');
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: endOfText,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: vocabulary.merges,
    },
  };
}
