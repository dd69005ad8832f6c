/**
 * Which draft rows to average into the never-winning output rows (see expand.ts): the `count` rows
 * whose logits are lowest on average over the draft's own text — a few reference prompts and its
 * greedy continuations, in the draft's own id space. Any set keeps greedy decoding unchanged; the
 * least likely rows keep the probability that sampling gives to ids outside the draft vocabulary small.
 */
import type { BackendRequest } from '../backend/index.js';
import type { DraftVocabulary } from '../formats/draft-checkpoint.js';
import type { LlamaWeights } from '../model/weights.js';
import { tokenizerFromVocabulary } from '../tokenizer/load.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import { REFERENCE_TEXTS } from './reference.js';

export interface ProbeOptions {
  vocabulary?: Vocabulary;
  draftVocabulary?: DraftVocabulary;
  /** Draft row fed for ids outside the draft vocabulary. */
  unkDraftId: number;
  backend: BackendRequest;
  count?: number;
  log: (message: string) => void;
}

/** The draft rows with the lowest mean logit over the probe text, lowest first. */
export async function lowestLogitRows(weights: LlamaWeights, options: ProbeOptions): Promise<Int32Array> {
  const rows = weights.config.vocabSize;
  const count = Math.min(options.count ?? 16, rows);
  const rowOf = new Map<number, number>();
  options.draftVocabulary?.draftToTarget.forEach((id, row) => rowOf.set(id, row));
  const toDraft = (ids: number[]) =>
    options.draftVocabulary
      ? ids.map((id) => rowOf.get(id) ?? options.unkDraftId)
      : ids.map((id) => (id < rows ? id : options.unkDraftId));
  const tokenizer = options.vocabulary ? await tokenizerFromVocabulary(options.vocabulary) : undefined;
  const bos = options.vocabulary?.bosId;
  const prompts = [
    ...(bos !== undefined ? [[bos]] : []),
    ...(tokenizer ? REFERENCE_TEXTS.map((text) => tokenizer.encode(text)) : [[0]]),
  ].map(toDraft);

  const { initBackend } = await import('../backend/index.js');
  await initBackend(options.backend, options.log);
  const tf = await import('@tensorflow/tfjs-core');
  const { LlamaModel, generate } = await import('../model/index.js');
  const model = LlamaModel.fromWeights(weights, { trainable: false });
  const meanLogit = new Float64Array(rows);
  let positions = 0;
  try {
    for (const prompt of prompts) {
      const continuation = (
        await generate(model, prompt, {
          maxNewTokens: Math.max(1, Math.min(32, weights.config.maxSeqLen - prompt.length)),
        })
      ).tokens;
      const sequence = [...prompt, ...continuation].slice(0, weights.config.maxSeqLen);
      const logits = tf.tidy(() => model.forward(tf.tensor2d(sequence, [1, sequence.length], 'int32'))); // [1, T, rows]
      const values = await logits.data<'float32'>().finally(() => logits.dispose());
      for (let t = 0; t < sequence.length; t++)
        for (let row = 0; row < rows; row++) meanLogit[row] += values[t * rows + row];
      positions += sequence.length;
    }
  } finally {
    model.dispose();
  }
  const order = Array.from({ length: rows }, (_, i) => i).sort((a, b) => meanLogit[a] - meanLogit[b] || a - b);
  options.log(
    `never-winning rows: the mean of the ${count} draft rows with the ` +
      `lowest mean logit over ${positions} positions of the draft's own text`,
  );
  return Int32Array.from(order.slice(0, count));
}
