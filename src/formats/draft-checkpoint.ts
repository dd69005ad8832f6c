/**
 * A fireopt draft checkpoint: what `train` writes and `eval`, `export` and incremental retraining
 * read. A directory:
 *
 *   manifest.json        kind `draft`, schema version, the model config, the draft vocabulary,
 *                        the target it was trained for, training facts, the resolved config
 *   config.json          Hugging Face LlamaConfig of the draft *as stored* (vocab_size = draft vocabulary)
 *   model.safetensors    F32 weights, Hugging Face Llama tensor names and RoPE layout
 *   tokenizer.gguf       the target's tokenizer as a vocab-only GGUF (the draft shares it)
 *   draft_vocab.json     only with a reduced vocabulary: `draft_to_target`, the target id of each
 *                        draft output row (EAGLE-3 / FR-Spec style); every reader of the draft's
 *                        outputs maps through it
 *
 * With a reduced vocabulary the draft's embedding and output rows are the draft vocabulary's,
 * in `draft_to_target` order; inputs are target ids mapped to draft ids (ids outside the draft
 * vocabulary map to the draft's `unk_draft_id`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { LlamaConfig } from '../model/config.js';
import type { LlamaWeights } from '../model/weights.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import { StagedDir, writeFileAtomic } from '../util/atomic.js';
import { makeManifest, readManifest, writeManifest, type Manifest } from './manifest.js';
import { writeVocabOnlyGguf } from './gguf-llama.js';
import { readHfLlama, writeHfLlama } from './safetensors.js';

export const DRAFT_KIND = 'draft';
export const DRAFT_SCHEMA_VERSION = 1;
export const DRAFT_RERUN_HINT = 'fireopt train --config <draft.yaml>';

/** The draft's reduced output vocabulary, when it has one. */
export interface DraftVocabulary {
  /** Target token id of each draft row: [draftVocabSize]. */
  draftToTarget: Int32Array;
  /** The target's full vocabulary size. */
  targetVocabSize: number;
}

export interface DraftManifestBody {
  model: LlamaConfig;
  /** The target's vocabulary size (equal to model.vocabSize unless the vocabulary is reduced). */
  target_vocab_size: number;
  reduced_vocab: boolean;
  /** Who the draft was trained for: target engine identity and tokenizer hash. */
  target: Record<string, unknown>;
  /** Training facts: steps, tokens, best held-out hit rate, preset, ... */
  training: Record<string, unknown>;
  config: unknown;
}

export interface DraftCheckpoint {
  weights: LlamaWeights;
  /** The target tokenizer the draft shares. */
  vocabulary?: Vocabulary;
  draftVocabulary?: DraftVocabulary;
  target: Record<string, unknown>;
  training: Record<string, unknown>;
}

/** Write a draft checkpoint atomically: the directory appears complete or not at all. */
export function writeDraftCheckpoint(dir: string, checkpoint: DraftCheckpoint, resolvedConfig: unknown): void {
  const staged = new StagedDir(dir);
  try {
    const reduced = checkpoint.draftVocabulary;
    writeHfLlama(staged.path, checkpoint.weights, { dtype: 'F32' });
    if (checkpoint.vocabulary) {
      // The tokenizer is the target's: its size is the target vocabulary's, not the draft's rows.
      const targetConfig = {
        ...checkpoint.weights.config,
        vocabSize: reduced?.targetVocabSize ?? checkpoint.weights.config.vocabSize,
      };
      writeVocabOnlyGguf(join(staged.path, 'tokenizer.gguf'), targetConfig, checkpoint.vocabulary);
    }
    if (reduced) {
      if (reduced.draftToTarget.length !== checkpoint.weights.config.vocabSize) {
        throw new Error(
          `draft vocabulary map has ${reduced.draftToTarget.length} entries for ` +
            `${checkpoint.weights.config.vocabSize} rows`,
        );
      }
      writeFileAtomic(
        join(staged.path, 'draft_vocab.json'),
        JSON.stringify({
          target_vocab_size: reduced.targetVocabSize,
          draft_to_target: Array.from(reduced.draftToTarget),
        }),
      );
    }
    const body: DraftManifestBody = {
      model: checkpoint.weights.config,
      target_vocab_size: reduced?.targetVocabSize ?? checkpoint.weights.config.vocabSize,
      reduced_vocab: Boolean(reduced),
      target: checkpoint.target,
      training: checkpoint.training,
      config: resolvedConfig,
    };
    writeManifest(staged.path, makeManifest(DRAFT_KIND, DRAFT_SCHEMA_VERSION, body));
    staged.commit();
  } catch (error) {
    staged.abort();
    throw error;
  }
}

/** Read a draft checkpoint; errors name the directory and what is wrong. */
export function readDraftCheckpoint(dir: string): DraftCheckpoint & { manifest: Manifest<DraftManifestBody> } {
  const manifest = readManifest<DraftManifestBody>(dir, DRAFT_KIND, DRAFT_SCHEMA_VERSION, DRAFT_RERUN_HINT);
  const { weights, vocabulary } = readHfLlama(dir);
  let draftVocabulary: DraftVocabulary | undefined;
  const mapPath = join(dir, 'draft_vocab.json');
  if (manifest.reduced_vocab) {
    if (!existsSync(mapPath))
      throw new InputError(`${dir}: the manifest says the vocabulary is reduced but draft_vocab.json is missing`);
    const parsed = JSON.parse(readFileSync(mapPath, 'utf8')) as {
      target_vocab_size?: unknown;
      draft_to_target?: unknown;
    };
    if (typeof parsed.target_vocab_size !== 'number' || !Array.isArray(parsed.draft_to_target)) {
      throw new InputError(`${mapPath}: expected {target_vocab_size: number, draft_to_target: number[]}`);
    }
    const draftToTarget = Int32Array.from(parsed.draft_to_target as number[]);
    if (draftToTarget.length !== weights.config.vocabSize) {
      throw new InputError(
        `${mapPath}: ${draftToTarget.length} entries, the model has ${weights.config.vocabSize} vocabulary rows`,
      );
    }
    const bad = draftToTarget.findIndex(
      (id) => !Number.isInteger(id) || id < 0 || id >= (parsed.target_vocab_size as number),
    );
    if (bad >= 0)
      throw new InputError(
        `${mapPath}: draft_to_target[${bad}] = ${draftToTarget[bad]} is not a ` +
          `target id (< ${parsed.target_vocab_size})`,
      );
    draftVocabulary = { draftToTarget, targetVocabSize: parsed.target_vocab_size };
  }
  return { weights, vocabulary, draftVocabulary, target: manifest.target, training: manifest.training, manifest };
}
