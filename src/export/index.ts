/**
 * The export stage: a draft checkpoint → serving artifacts that engines load beside the target.
 *
 *   <out>/hf/             config.json, model.safetensors, generation_config.json, the target's
 *                         tokenizer files (copied verbatim from an HF target) or tokenizer.gguf
 *   <out>/hf/reference/   fireopt's logits of the exported model for a few prompts, for
 *                         scripts/gpu/check-hf-export.sh
 *   <out>/<name>.gguf     llama architecture, F32 or F16, the target's tokenizer embedded
 *   <out>/SERVING.md      the serving commands for vLLM, SGLang, llama.cpp and transformers
 *   <out>/manifest.json   kind `export`: draft, target, plan, vocabulary expansion, files
 *
 * Order: read the draft and the target, run the preflight (nothing is written when it fails),
 * then build everything in a staging folder that replaces `<out>` in one rename.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { readDraftCheckpoint, type DraftCheckpoint } from '../formats/draft-checkpoint.js';
import { writeLlamaGguf, writeVocabOnlyGguf } from '../formats/gguf-llama.js';
import { hfConfigJson } from '../formats/hf-config.js';
import { makeManifest, writeManifest } from '../formats/manifest.js';
import { writeHfLlama } from '../formats/safetensors.js';
import type { LlamaWeights } from '../model/weights.js';
import type { ProgressSink } from '../progress.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import { StagedDir } from '../util/atomic.js';
import { sha256File } from '../util/hash.js';
import { exportSchema, type ExportConfig } from './config.js';
import { expandVocabulary } from './expand.js';
import { isInside, pathInside, safeFileName } from './paths.js';
import { assertCompatible, preflight, type DraftFacts, type ExportPlan } from './preflight.js';
import { lowestLogitRows } from './probe.js';
import { writeReferenceLogits } from './reference.js';
import { servingCommands, servingMarkdown, type ServingCommand } from './serving.js';
import { describeTarget, type TargetDescription } from './target.js';

export { exportSchema, type ExportConfig, SERVING_ENGINES, type ServingEngine } from './config.js';
export { expandVocabulary, type ExpandedWeights, type VocabularyExpansion } from './expand.js';
export {
  preflight,
  assertCompatible,
  llamaCppProblems,
  type DraftFacts,
  type ExportPlan,
  type PreflightProblem,
} from './preflight.js';
export { describeTarget, type TargetDescription } from './target.js';
export { servingCommands, type ServingCommand } from './serving.js';
export { safeFileName, pathInside } from './paths.js';

export const EXPORT_KIND = 'export';
export const EXPORT_SCHEMA_VERSION = 1;

export interface ExportInput {
  export: ExportConfig;
  /** Recorded in the manifest. */
  resolvedConfig: unknown;
}

export interface ExportDeps {
  progress: ProgressSink;
}

export interface ExportResult {
  out: string;
  /** The HF folder and GGUF file, when written. */
  hfDir?: string;
  gguf?: string;
  plan: ExportPlan;
  servingCommands: ServingCommand[];
  vocabulary: {
    draftRows: number;
    reduced: boolean;
    /** Rows of each export and how many of them are never-winning rows for ids the draft does not know. */
    hf?: { rows: number; outsideIds: number };
    gguf?: { rows: number; outsideIds: number };
  };
}

/**
 * The GGUF path of an export for one draft (f32, checked against the target's vocabulary), quietly: how
 * `eval --measure-speedup` decodes a draft as it would be served. Returns the GGUF's path.
 */
export async function exportDraftGguf(draftDir: string, targetGguf: string, outDir: string): Promise<string> {
  const settings = exportSchema.parse({
    model: draftDir,
    out: outDir,
    format: 'gguf',
    dtype: 'f32',
    target: targetGguf,
    engines: ['llama-cpp'],
  });
  const result = await runExport({ export: settings, resolvedConfig: { export: settings } }, { progress: () => {} });
  if (!result.gguf) throw new Error(`export of ${draftDir} wrote no GGUF`);
  return result.gguf;
}

/** Export a draft checkpoint for serving engines (see the file comment for the layout). */
export async function runExport(input: ExportInput, deps: ExportDeps): Promise<ExportResult> {
  const config = input.export;
  if (!config.model)
    throw new UsageError('export needs a draft checkpoint', 'HINT: fireopt export --model <draft dir> --out <dir>');
  if (!config.out) throw new UsageError('export needs an output folder', 'HINT: --out <dir>');
  const modelDir = resolve(config.model);
  const out = resolve(config.out);
  if (isInside(out, modelDir))
    throw new UsageError(`--out ${out} would replace the draft checkpoint ${modelDir} it exports`);
  if (config.target && isInside(out, resolve(config.target)))
    throw new UsageError(`--out ${out} would replace the target ${resolve(config.target)}`);
  const log = (message: string, level: 'info' | 'warn' = 'info') => deps.progress({ kind: 'log', level, message });

  const checkpoint = readDraftCheckpoint(modelDir);
  const target = config.target ? describeTarget(config.target) : undefined;
  const draftFacts: DraftFacts = {
    path: modelDir,
    config: checkpoint.weights.config,
    targetVocabSize: checkpoint.draftVocabulary?.targetVocabSize ?? checkpoint.weights.config.vocabSize,
    vocabulary: checkpoint.vocabulary,
  };
  const formats = config.format === 'all' ? (['hf', 'gguf'] as const) : ([config.format] as const);
  const { plan, problems } = preflight(draftFacts, target, {
    formats,
    engines: config.engines,
    servingContext: config.serving_context,
    extendContext: config.extend_context,
  });
  assertCompatible(problems);
  for (const warning of plan.warnings) log(warning, 'warn');

  const name = safeFileName(config.name ?? basename(modelDir));
  const unkDraftId = unknownInputRow(checkpoint);
  const needsExpansion =
    Boolean(checkpoint.draftVocabulary) ||
    plan.hfVocabSize > draftFacts.targetVocabSize ||
    (plan.ggufVocabulary?.tokens.length ?? 0) > draftFacts.targetVocabSize;
  const outsideSourceRows = needsExpansion
    ? await lowestLogitRows(checkpoint.weights, {
        vocabulary: checkpoint.vocabulary,
        draftVocabulary: checkpoint.draftVocabulary,
        unkDraftId,
        backend: config.backend,
        log,
      })
    : undefined;
  const expand = (vocabSize: number) =>
    expandVocabulary(checkpoint.weights, {
      draftToTarget: checkpoint.draftVocabulary?.draftToTarget,
      unkDraftId,
      vocabSize,
      outsideSourceRows,
    });
  const withContext = (weights: LlamaWeights): LlamaWeights => ({
    ...weights,
    config: { ...weights.config, maxSeqLen: plan.contextLength },
  });

  const result: ExportResult = {
    out,
    plan,
    servingCommands: [],
    vocabulary: { draftRows: checkpoint.weights.config.vocabSize, reduced: Boolean(checkpoint.draftVocabulary) },
  };
  const staged = new StagedDir(out);
  try {
    const files: string[] = [];
    if (formats.includes('hf')) {
      const expanded = expand(plan.hfVocabSize);
      const hfDir = pathInside(staged.path, 'hf');
      mkdirSync(hfDir);
      writeHfExport(hfDir, withContext(expanded.weights), {
        dtype: config.dtype,
        target,
        vocabulary: plan.ggufVocabulary ?? target?.vocabulary ?? checkpoint.vocabulary,
      });
      files.push('hf/config.json', 'hf/model.safetensors', 'hf/generation_config.json');
      for (const file of target?.kind === 'hf' ? target.tokenizerFiles : []) {
        copyFileSync(file, pathInside(hfDir, basename(file)));
        files.push(`hf/${basename(file)}`);
      }
      if (config.reference_prompts > 0) {
        const reference = await writeReferenceLogits(hfDir, pathInside(hfDir, 'reference'), {
          prompts: config.reference_prompts,
          vocabulary: checkpoint.vocabulary,
          backend: config.backend,
          log,
        });
        files.push(...reference.map((file) => `hf/reference/${file}`));
      }
      result.hfDir = join(out, 'hf');
      result.vocabulary.hf = { rows: plan.hfVocabSize, outsideIds: expanded.outsideIds };
      log(
        `wrote the Hugging Face export: ${plan.hfVocabSize} rows ` +
          `(${expanded.outsideIds} never-winning), ${config.dtype}`,
      );
    }
    if (formats.includes('gguf')) {
      const vocabulary = plan.ggufVocabulary as Vocabulary; // the preflight guarantees one for GGUF
      const expanded = expand(vocabulary.tokens.length);
      const ggufName = `${name}.gguf`;
      writeLlamaGguf(pathInside(staged.path, ggufName), withContext(expanded.weights), vocabulary, {
        dtype: config.dtype,
        name: config.name ?? name,
      });
      files.push(ggufName);
      result.gguf = join(out, ggufName);
      result.vocabulary.gguf = { rows: vocabulary.tokens.length, outsideIds: expanded.outsideIds };
      log(
        `wrote the GGUF export ${ggufName}: ${vocabulary.tokens.length} rows ` +
          `(${expanded.outsideIds} never-winning), ${config.dtype}`,
      );
    }
    result.servingCommands = servingCommands({
      engines: plan.engines,
      hfDir: result.hfDir,
      gguf: result.gguf,
      target,
      servingContext: plan.servingContext,
    });
    writeFileSync(pathInside(staged.path, 'SERVING.md'), servingMarkdown(result.servingCommands, plan.warnings));
    files.push('SERVING.md');
    const fileHashes: Record<string, string> = {};
    for (const file of files) fileHashes[file] = await sha256File(join(staged.path, file));
    writeManifest(
      staged.path,
      makeManifest(EXPORT_KIND, EXPORT_SCHEMA_VERSION, {
        draft: {
          path: modelDir,
          model: checkpoint.weights.config,
          reduced_vocab: Boolean(checkpoint.draftVocabulary),
          unk_draft_id: unkDraftId,
          weights_sha256: await sha256File(join(modelDir, 'model.safetensors')),
        },
        // The tokenizer the draft was trained with, as its checkpoint records it (null: drafts older than the record).
        tokenizer: checkpoint.target.tokenizer ?? null,
        target: target ? targetSummary(target) : null,
        formats,
        dtype: config.dtype,
        plan: {
          engines: plan.engines,
          hf_vocab_size: plan.hfVocabSize,
          gguf_vocab_size: plan.ggufVocabulary?.tokens.length ?? null,
          context_length: plan.contextLength,
          serving_context: plan.servingContext,
          warnings: plan.warnings,
        },
        vocabulary: result.vocabulary,
        never_winning_rows: outsideSourceRows
          ? {
              rule:
                'output row of every id outside the draft vocabulary = mean of these ' +
                "draft output rows (lowest mean logit on the draft's own text); its " +
                'logit is their mean, below the maximum',
              draft_rows: Array.from(outsideSourceRows),
            }
          : null,
        files: fileHashes,
        serving: result.servingCommands,
        config: input.resolvedConfig,
      }),
    );
    staged.commit();
  } catch (error) {
    staged.abort();
    throw error;
  }
  return result;
}

/** The draft row that was fed for input ids outside its vocabulary (train's `unk_draft_id`). */
function unknownInputRow(checkpoint: DraftCheckpoint): number {
  const rows = checkpoint.weights.config.vocabSize;
  const stored = checkpoint.training.unk_draft_id;
  if (typeof stored === 'number' && Number.isInteger(stored) && stored >= 0 && stored < rows) return stored;
  const map = checkpoint.draftVocabulary?.draftToTarget;
  if (!map) return Math.min(checkpoint.vocabulary?.unkId ?? 0, rows - 1);
  // train's rule (train/vocab.ts): the row of the target's unknown token, else the last row.
  const unkRow = checkpoint.vocabulary?.unkId !== undefined ? map.indexOf(checkpoint.vocabulary.unkId) : -1;
  return unkRow >= 0 ? unkRow : rows - 1;
}

interface HfExportOptions {
  dtype: 'f32' | 'f16';
  target?: TargetDescription;
  vocabulary?: Vocabulary;
}

/** config.json, model.safetensors, generation_config.json (and tokenizer.gguf without HF tokenizer files). */
function writeHfExport(dir: string, weights: LlamaWeights, options: HfExportOptions): void {
  const dtype = options.dtype === 'f32' ? 'F32' : 'F16';
  writeHfLlama(dir, weights, { dtype });
  const bos = options.target?.bosTokenId ?? options.vocabulary?.bosId;
  const eos = options.target?.eosTokenId ?? options.vocabulary?.eosId;
  const configJson = {
    ...hfConfigJson(weights.config, { torchDtype: options.dtype === 'f32' ? 'float32' : 'float16' }),
    ...(bos !== undefined ? { bos_token_id: bos } : {}),
    ...(eos !== undefined ? { eos_token_id: eos } : {}),
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson, null, 2) + '\n');
  writeFileSync(
    join(dir, 'generation_config.json'),
    JSON.stringify(
      {
        _from_model_config: true,
        ...(bos !== undefined ? { bos_token_id: bos } : {}),
        ...(eos !== undefined ? { eos_token_id: eos } : {}),
      },
      null,
      2,
    ) + '\n',
  );
  const hasHfTokenizer = options.target?.kind === 'hf' && options.target.tokenizerFiles.length > 0;
  if (!hasHfTokenizer && options.vocabulary) {
    writeVocabOnlyGguf(
      join(dir, 'tokenizer.gguf'),
      { ...weights.config, vocabSize: options.vocabulary.tokens.length },
      options.vocabulary,
    );
  }
}

function targetSummary(target: TargetDescription): Record<string, unknown> {
  return {
    path: target.path,
    kind: target.kind,
    architecture: target.architecture ?? null,
    vocab_size: target.vocabSize ?? null,
    context_length: target.contextLength ?? null,
    rope_theta: target.ropeTheta ?? null,
    rope_scaling: target.ropeScaling ?? null,
    bos_token_id: target.bosTokenId ?? null,
    eos_token_id: target.eosTokenId ?? null,
    tokenizer: target.vocabularySource ?? null,
    tokenizer_files: target.tokenizerFiles.map((file) => basename(file)),
  };
}
