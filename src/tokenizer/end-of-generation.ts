/**
 * llama.cpp's end-of-generation set (`llama_vocab_is_eog`) computed from a vocabulary's texts, for
 * engines that decode without llama.cpp (the tfjs target): the EOS id plus the end-of-turn and FIM
 * pad/repo/separator tokens llama.cpp recognises by their text at load time, with its exceptions.
 * Checked against llama.cpp's own `isEogToken` on real vocabularies (test/targets/end-of-generation.test.ts).
 */

// Token texts llama.cpp treats as end of generation whatever their stored type.
const END_OF_GENERATION_TEXTS = [
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<|return|>',
  '<|call|>',
  '<|flush|>',
  '<|calls|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '</s>',
  '<|eom_id|>',
  '<EOT>',
  '_<EOT>',
  '[EOT]',
  '[EOS]',
  '<|end_of_text|>',
  '<end_of_utterance>',
  '<eos>',
  '<turn|>',
  '<|tool_response>',
  '<｜end▁of▁sentence｜>',
  '[e~[',
];

// FIM pad, repo and file-separator tokens: llama.cpp also ends generation at these.
const FILL_IN_MIDDLE_END_TEXTS = [
  '<|fim_pad|>',
  '<fim-pad>',
  '<fim_pad>',
  '<PAD>',
  '[PAD]',
  '<|fim_repo|>',
  '<|repo_name|>',
  '<fim-repo>',
  '<REPO>',
  '<reponame>',
  '<|file_sep|>',
];

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
export function endOfGenerationIds(vocabulary: { tokens: readonly string[]; eosId?: number }): Set<number> {
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
