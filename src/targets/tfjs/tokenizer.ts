/** The tokenizer of a `tfjs` target, found without loading its weights (for distill and synth). */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError } from '../../errors.js';
import { detectCheckpointKind, loadModel, readFileHead, readTokenizerFile } from '../../formats/load-model.js';
import { HF_FILES } from '../../formats/safetensors.js';
import { loadTokenizer, tokenizerFromVocabulary } from '../../tokenizer/load.js';
import type { Tokenizer } from '../../tokenizer/tokenizer.js';
import type { TfjsTargetConfig } from '../config.js';

export interface TfjsTargetTokenizer {
  tokenizer: Tokenizer;
  /** The file it was read from (hashed into manifests; chat templates are looked up beside it). */
  source: string;
}

/**
 * The tokenizer the tfjs engine would use: `tokenizer` when given, else the GGUF's own, the
 * Hugging Face folder's tokenizer.gguf or tokenizer.json, or the tokenizer.bin beside a llama2.c
 * checkpoint.
 */
export async function tfjsTargetTokenizer(
  config: Pick<TfjsTargetConfig, 'model' | 'tokenizer'>,
): Promise<TfjsTargetTokenizer> {
  const kind = detectCheckpointKind(config.model);
  if (config.tokenizer)
    return { tokenizer: await openTokenizer(config.tokenizer, config.model), source: config.tokenizer };
  if (kind === 'gguf') return { tokenizer: await loadTokenizer(config.model), source: config.model };
  const dir = kind === 'hf' && !config.model.endsWith('.safetensors') ? config.model : dirname(config.model);
  const candidates = kind === 'hf' ? [HF_FILES.vocabulary, 'tokenizer.json'] : ['tokenizer.bin'];
  for (const name of candidates) {
    const path = join(dir, name);
    if (existsSync(path)) return { tokenizer: await openTokenizer(path, config.model), source: path };
  }
  throw new InputError(
    `${config.model}: no tokenizer found beside the checkpoint (looked for ${candidates.join(', ')})`,
    'set target.tokenizer (or distill.tokenizer)',
  );
}

/**
 * GGUF and tokenizer.json files describe themselves; a llama2.c tokenizer.bin needs the checkpoint's
 * vocabulary size.
 */
async function openTokenizer(path: string, model: string): Promise<Tokenizer> {
  if (!existsSync(path)) throw new InputError(`${path}: tokenizer file not found`);
  const head = readFileHead(path, 64);
  if (head.subarray(0, 4).toString('latin1') === 'GGUF' || head.toString('utf8').trimStart().startsWith('{'))
    return loadTokenizer(path);
  return tokenizerFromVocabulary(readTokenizerFile(path, checkpointVocabSize(model)), { path });
}

/** vocab_size from a llama2.c header (its sign only says whether the head is tied); other kinds load the checkpoint. */
function checkpointVocabSize(model: string): number {
  if (detectCheckpointKind(model) === 'llama2c') return Math.abs(readFileHead(model, 28).readInt32LE(20));
  return loadModel(model).weights.config.vocabSize;
}
