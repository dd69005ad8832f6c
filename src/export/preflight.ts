/**
 * Compatibility preflight: every reason a serving engine would refuse the exported draft beside
 * its target (or silently serve garbage), found before anything is written.
 *
 * - vLLM, SGLang, transformers (the HF export): the draft's `vocab_size` must equal the target's.
 *   A draft that knows fewer ids than the target's config counts is padded when the extra ids are
 *   padding rows (the target's tokenizer has no tokens there), e.g. a tokenizer of 151665 tokens in
 *   a 151936-row model; a draft with more rows than the target's vocab_size is refused (Qwen2.5:
 *   0.5B–3B have 151936, 7B and larger 152064). When both tokenizers are known their tokens must agree.
 * - llama.cpp (the GGUF export): common/speculative.cpp's `common_speculative_are_compatible`:
 *   the same vocabulary type, the same add-BOS / add-EOS flags and BOS / EOS ids, vocabulary sizes
 *   within 128 tokens, and identical token text from id 5 on.
 * - Every engine: the draft's trained context must cover the serving context.
 */
import { InputError } from '../errors.js';
import type { LlamaConfig } from '../model/config.js';
import type { Vocabulary } from '../tokenizer/vocabulary.js';
import type { ServingEngine } from './config.js';
import type { TargetDescription } from './target.js';

/** llama.cpp's SPEC_VOCAB_MAX_SIZE_DIFFERENCE and SPEC_VOCAB_CHECK_START_TOKEN_ID. */
export const LLAMA_CPP_MAX_VOCAB_DIFFERENCE = 128;
export const LLAMA_CPP_CHECK_START_TOKEN_ID = 5;

/** Which export format each engine loads. */
export const ENGINE_FORMAT: Record<ServingEngine, 'hf' | 'gguf'> = {
  vllm: 'hf',
  sglang: 'hf',
  transformers: 'hf',
  'llama-cpp': 'gguf',
};

export interface DraftFacts {
  path: string;
  /** The draft's config as stored (vocabSize = its output rows). */
  config: LlamaConfig;
  /** Ids the draft knows: the target vocabulary size it was trained for. */
  targetVocabSize: number;
  /** The tokenizer the draft was trained with (its tokenizer.gguf). */
  vocabulary?: Vocabulary;
}

export interface PreflightOptions {
  formats: ReadonlyArray<'hf' | 'gguf'>;
  engines: readonly ServingEngine[];
  servingContext?: number;
  extendContext: boolean;
}

export interface PreflightProblem {
  engines: ServingEngine[];
  code:
    | 'E_EXPORT_VOCAB_SIZE'
    | 'E_EXPORT_VOCAB_TYPE'
    | 'E_EXPORT_SPECIAL_TOKENS'
    | 'E_EXPORT_TOKEN_TEXT'
    | 'E_EXPORT_TOKENIZER'
    | 'E_EXPORT_CONTEXT';
  message: string;
}

/** What the export will write, when nothing stands in the way. */
export interface ExportPlan {
  /** Engines checked (those whose format is exported). */
  engines: ServingEngine[];
  /** config.json vocab_size. */
  hfVocabSize: number;
  /** The tokenizer embedded in the GGUF (the target's when known) and so its row count. */
  ggufVocabulary?: Vocabulary;
  /** max_position_embeddings / context_length written. */
  contextLength: number;
  servingContext: number;
  warnings: string[];
}

/** Check the draft against the target for every selected engine; problems are collected, never thrown. */
export function preflight(
  draft: DraftFacts,
  target: TargetDescription | undefined,
  options: PreflightOptions,
): { plan: ExportPlan; problems: PreflightProblem[] } {
  const engines = options.engines.filter((engine) => options.formats.includes(ENGINE_FORMAT[engine]));
  const hfEngines = engines.filter((engine) => ENGINE_FORMAT[engine] === 'hf');
  const ggufEngines = engines.filter((engine) => ENGINE_FORMAT[engine] === 'gguf');
  const problems: PreflightProblem[] = [];
  const warnings: string[] = [];
  const targetTokens = target?.vocabulary?.tokens.length;

  // Vocabulary size and tokens for the HF engines.
  const hfVocabSize = target?.vocabSize ?? draft.targetVocabSize;
  if (hfEngines.length) {
    if (draft.targetVocabSize > hfVocabSize) {
      problems.push({
        engines: hfEngines,
        code: 'E_EXPORT_VOCAB_SIZE',
        message:
          `the draft's vocab_size is ${draft.targetVocabSize} but the target's ` +
          `(${target?.path}) is ${hfVocabSize}; vLLM, SGLang and transformers ` +
          `need them equal (Qwen2.5 0.5B–3B have 151936, 7B and larger 152064): train the draft for this target`,
      });
    } else if (draft.targetVocabSize < hfVocabSize) {
      if (targetTokens !== undefined && targetTokens > draft.targetVocabSize) {
        problems.push({
          engines: hfEngines,
          code: 'E_EXPORT_VOCAB_SIZE',
          message:
            `the target's tokenizer has ${targetTokens} tokens but the draft knows ` +
            `${draft.targetVocabSize} ids: it was trained for another tokenizer`,
        });
      } else {
        warnings.push(
          `vocab_size padded from ${draft.targetVocabSize} to the target's ` +
            `${hfVocabSize} with output rows that never win (ids ` +
            `${draft.targetVocabSize}–${hfVocabSize - 1} are padding)`,
        );
      }
    }
    if (target?.vocabulary && draft.vocabulary) {
      const mismatch = firstTokenMismatch(draft.vocabulary, target.vocabulary, 0);
      if (mismatch !== undefined) {
        problems.push({
          engines: hfEngines,
          code: 'E_EXPORT_TOKENIZER',
          message:
            `the draft's tokenizer differs from the target's ` +
            `(${target.vocabularySource}) at id ${mismatch.id}: ${mismatch.text}`,
        });
      }
    }
  }

  // llama.cpp's own compatibility check, on the tokenizer the draft was trained with.
  let ggufVocabulary: Vocabulary | undefined;
  if (ggufEngines.length) {
    ggufVocabulary = target?.vocabulary ?? draft.vocabulary;
    if (!ggufVocabulary) {
      problems.push({
        engines: ggufEngines,
        code: 'E_EXPORT_TOKENIZER',
        message:
          target?.vocabularyRefusal ??
          `a GGUF embeds its tokenizer, and neither the draft (no tokenizer.gguf) nor the target gives one`,
      });
    } else if (ggufVocabulary.tokens.length < draft.targetVocabSize) {
      problems.push({
        engines: ggufEngines,
        code: 'E_EXPORT_VOCAB_SIZE',
        message:
          `the draft predicts ${draft.targetVocabSize} ids but the target's ` +
          `tokenizer (${target?.vocabularySource ?? "the draft's"}) has ${ggufVocabulary.tokens.length} tokens`,
      });
    }
    if (target?.vocabulary && draft.vocabulary)
      problems.push(
        ...llamaCppProblems(draft.vocabulary, target.vocabulary, target.vocabularySource ?? target.path, ggufEngines),
      );
    else if (!target?.vocabulary)
      warnings.push(
        `llama.cpp's vocabulary check was not run: the target gives no tokenizer (pass the target GGUF as --target)`,
      );
  }

  // Context.
  const trained = draft.config.maxSeqLen;
  const servingContext = options.servingContext ?? target?.contextLength ?? trained;
  if (engines.length && trained < servingContext) {
    if (options.extendContext) {
      warnings.push(
        `context extended from the draft's trained ${trained} positions to ` +
          `${servingContext}; acceptance past position ${trained} is untested`,
      );
    } else {
      problems.push({
        engines,
        code: 'E_EXPORT_CONTEXT',
        message:
          `the draft was trained for ${trained} positions but the serving context ` +
          `is ${servingContext}: engines refuse a draft shorter than the target (or stop speculating past it)`,
      });
    }
  }

  // RoPE and norm: the export writes the draft's own values (its weights were trained with them);
  // engines compute each model's positions from its own config, so a difference is only reported.
  if (target?.ropeTheta !== undefined && target.ropeTheta !== draft.config.ropeTheta) {
    warnings.push(
      `rope_theta: the draft uses ${draft.config.ropeTheta}, the target ` +
        `${target.ropeTheta}; the export keeps the draft's (its weights were trained with it)`,
    );
  }
  if (target && target.ropeScaling !== null && target.ropeScaling !== undefined) {
    warnings.push(
      `rope_scaling: the target has ${JSON.stringify(target.ropeScaling)}, ` +
        `the draft none; the export writes null (what the draft computes)`,
    );
  }

  return {
    plan: {
      engines,
      hfVocabSize: Math.max(hfVocabSize, draft.targetVocabSize),
      ggufVocabulary,
      contextLength: Math.max(trained, servingContext),
      servingContext,
      warnings,
    },
    problems,
  };
}

/** The checks of llama.cpp's common_speculative_are_compatible (common/speculative.cpp). */
export function llamaCppProblems(
  draft: Vocabulary,
  target: Vocabulary,
  targetSource: string,
  engines: ServingEngine[] = ['llama-cpp'],
): PreflightProblem[] {
  const problems: PreflightProblem[] = [];
  const problem = (code: PreflightProblem['code'], message: string) =>
    problems.push({ engines, code, message: `llama.cpp: ${message}` });
  if (draft.model !== target.model) {
    problem(
      'E_EXPORT_VOCAB_TYPE',
      `the draft's vocabulary type is ${vocabType(draft)}, the target's (${targetSource}) ${vocabType(target)}`,
    );
    return problems;
  }
  const specials: Array<[string, unknown, unknown]> = [
    ['add_bos_token', draft.addBos, target.addBos],
    ['add_eos_token', draft.addEos, target.addEos],
    ['bos_token_id', draft.bosId, target.bosId],
    ['eos_token_id', draft.eosId, target.eosId],
  ];
  for (const [name, mine, theirs] of specials) {
    if (mine !== theirs)
      problem(
        'E_EXPORT_SPECIAL_TOKENS',
        `${name} is ${String(mine)} for the draft, ${String(theirs)} for the target (${targetSource})`,
      );
  }
  const difference = Math.abs(draft.tokens.length - target.tokens.length);
  if (difference > LLAMA_CPP_MAX_VOCAB_DIFFERENCE) {
    problem(
      'E_EXPORT_VOCAB_SIZE',
      `the draft's vocabulary has ${draft.tokens.length} tokens, the target's ` +
        `(${targetSource}) ${target.tokens.length}: more than ${LLAMA_CPP_MAX_VOCAB_DIFFERENCE} apart`,
    );
  }
  const mismatch = firstTokenMismatch(draft, target, LLAMA_CPP_CHECK_START_TOKEN_ID);
  if (mismatch !== undefined)
    problem(
      'E_EXPORT_TOKEN_TEXT',
      `token ${mismatch.id} differs: ${mismatch.text} (llama.cpp compares ` +
        `token text from id ${LLAMA_CPP_CHECK_START_TOKEN_ID} on)`,
    );
  return problems;
}

function vocabType(vocabulary: Vocabulary): string {
  return vocabulary.model === 'llama' ? 'SPM (llama)' : 'BPE (gpt2)';
}

function firstTokenMismatch(
  draft: Vocabulary,
  target: Vocabulary,
  from: number,
): { id: number; text: string } | undefined {
  const end = Math.min(draft.tokens.length, target.tokens.length);
  for (let id = from; id < end; id++) {
    if (draft.tokens[id] !== target.tokens[id])
      return {
        id,
        text: `${JSON.stringify(draft.tokens[id])} in the draft, ${JSON.stringify(target.tokens[id])} in the target`,
      };
  }
  return undefined;
}

/** Throw one error that lists every problem, per engine, or return when there is none. */
export function assertCompatible(problems: PreflightProblem[]): void {
  if (!problems.length) return;
  const lines = problems.map((p) => `  - [${p.engines.join(', ')}] ${p.code}: ${p.message}`);
  throw new InputError(
    `the draft cannot be served beside this target; nothing was written:\n${lines.join('\n')}`,
    'HINT: export for the engines that fit (--set export.engines=[...]), or ' +
      'pass the right --target / --serving-context',
    'E_EXPORT_PREFLIGHT',
  );
}
