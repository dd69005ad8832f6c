/**
 * `fireopt synth --seed-prompts <file> --n <N> --out <dataset>`: the target writes new prompts in
 * the style of the seeds (the synth stage), then ingest turns them into a traces dataset. The
 * stages are imported lazily.
 */
import { dirname, basename, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { ConfigError, UsageError } from '../../errors.js';
import type { SynthConfig } from '../../synth/config.js';
import type { ContextGetter } from '../context.js';
import { claimOutputs } from '../../util/output.js';
import { forceOption, interruptible } from '../safety.js';

interface SynthFlags {
  seedPrompts?: string;
  n?: number;
  out?: string;
  promptsOut?: string;
  targetModel?: string;
  tokenizer?: string;
  examples?: number;
  samples?: number;
  concurrency?: number;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  minChars?: number;
  maxChars?: number;
  similarity?: number;
  maxCompletions?: number;
  heldout?: number;
  force?: boolean;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('synth')
    .summary('the target writes new prompts in the style of seed prompts (self-instruct): an ingest dataset')
    .description(
      'Show the target numbered lists of seed prompts and keep what it writes next, deduplicated (exact and\n' +
        'near-duplicate, against the seeds too). Writes the prompts as <prompts-out> (prompts JSONL) and ingests\n' +
        'them into <out> (train.arrow, heldout.arrow, manifest.json), ready for `fireopt distill`.',
    )
    .option(
      '--seed-prompts <file>',
      'seed prompts: text lines, JSONL/JSON, or an ingested dataset (synth.seed_prompts)',
    )
    .option('--n <count>', 'new prompts to write (synth.n)', parseNumber)
    .option('-o, --out <dir>', 'output dataset directory, replaced atomically (synth.out)')
    .option('--prompts-out <file>', 'where the prompts JSONL goes (default <out>.synth.jsonl beside the dataset)')
    .option('--target-model <gguf>', 'shortcut for target.engine=llama-cpp, target.model=<gguf>')
    .option('--tokenizer <file>', 'the target tokenizer (GGUF or tokenizer.json); default: from the target')
    .option('--examples <k>', 'example prompts listed per request (default 6)', parseNumber)
    .option('--samples <k>', 'completions per request (default 4)', parseNumber)
    .option('--concurrency <k>', 'requests in flight (default 4)', parseNumber)
    .option('--max-tokens <n>', 'most tokens per written prompt (default 96)', parseNumber)
    .option('--temperature <t>', 'sampling temperature (default 1)', parseNumber)
    .option('--top-p <p>', 'nucleus sampling threshold (default 0.95)', parseNumber)
    .option('--seed <s>', 'sampling and example-selection seed (default 0)', parseNumber)
    .option('--min-chars <n>', 'shortest prompt kept (default 12)', parseNumber)
    .option('--max-chars <n>', 'longest prompt kept (default 2000)', parseNumber)
    .option('--similarity <j>', 'near-duplicate threshold: character 4-gram Jaccard (default 0.7)', parseNumber)
    .option('--max-completions <n>', 'give up after this many completions (default 20 × n)', parseNumber)
    .option('--heldout <fraction>', 'fraction of prompts in the held-out split (default ingest.heldout)', parseNumber)
    .addOption(forceOption())
    .action(async (flags: SynthFlags) => {
      const ctx = context();
      const config = loadConfig({
        file: ctx.globals.config,
        sets: ctx.globals.set,
        flags: {
          'distill.tokenizer': flags.tokenizer,
          'ingest.heldout': flags.heldout,
          'target.engine': flags.targetModel ? 'llama-cpp' : undefined,
          'target.model': flags.targetModel,
          'synth.seed_prompts': flags.seedPrompts,
          'synth.n': flags.n,
          'synth.out': flags.out,
          'synth.examples_per_request': flags.examples,
          'synth.samples_per_request': flags.samples,
          'synth.concurrency': flags.concurrency,
          'synth.max_tokens': flags.maxTokens,
          'synth.temperature': flags.temperature,
          'synth.top_p': flags.topP,
          'synth.seed': flags.seed,
          'synth.min_chars': flags.minChars,
          'synth.max_chars': flags.maxChars,
          'synth.near_duplicate_threshold': flags.similarity,
          'synth.max_completions': flags.maxCompletions,
        },
      });
      const { seed_prompts: seedPrompts, n, out: synthOut } = config.synth;
      if (!seedPrompts) throw new UsageError('synth: no seed prompts given (--seed-prompts or synth.seed_prompts)');
      if (n === undefined) throw new UsageError('synth: no count given (--n or synth.n)');
      if (!synthOut) throw new UsageError('synth: no output directory given (--out or synth.out)');
      const synth: SynthConfig = { ...config.synth, seed_prompts: seedPrompts, n, out: synthOut };
      const { target } = config;
      if (!target) throw new ConfigError('synth needs a target: set the `target` section or --target-model <gguf>');
      const out = resolve(synth.out);
      const promptsOut = flags.promptsOut ?? join(dirname(out), `${basename(out)}.synth.jsonl`);
      claimOutputs({
        command: 'synth',
        outputs: [
          { path: out, kind: 'traces', option: '--out' },
          { path: promptsOut, kind: 'prompts-file', option: '--prompts-out', writtenFor: out },
        ],
        inputs: [synth.seed_prompts, target.engine === 'openai' ? undefined : target.model, config.distill.tokenizer],
        force: flags.force,
      });
      const { openTarget, readTargetApiKey } = await import('../../targets/open.js');
      const { runSynth } = await import('../../synth/index.js');
      const { runIngest } = await import('../../ingest/index.js');
      const apiKey = readTargetApiKey(target, process.env);
      const opened = await openTarget(target, config.distill, { apiKey, progress: ctx.progress });
      const tokenizer = opened.tokenizer;
      const kept = 'no dataset written (earlier outputs at the output paths are untouched)';
      await interruptible(ctx.io, { command: 'synth', kept, stageWatchesSignal: true }, async (signal) => {
        const engine = await opened.openEngine();
        let summary: Awaited<ReturnType<typeof runSynth>>;
        try {
          summary = await runSynth({ synth, promptsOut }, { engine, tokenizer, progress: ctx.progress, signal });
        } finally {
          await engine.close();
        }
        const ingested = await runIngest(
          { ...config, ingest: { ...config.ingest, inputs: [promptsOut], out, format: 'prompts' } },
          { progress: ctx.progress, signal },
        );
        const { prompts, ...counts } = summary;
        if (ctx.globals.json) {
          ctx.io.stdout(JSON.stringify({ ...counts, dataset: ingested.out, rows: ingested.rows }, null, 2) + '\n');
          return;
        }
        const rejected = Object.entries(counts.rejected)
          .filter(([, n]) => n > 0)
          .map(([reason, n]) => `${reason} ${n}`);
        ctx.io.stdout(
          [
            `wrote ${ingested.out}: ${ingested.rows.train} train + ${ingested.rows.heldout} held-out prompts ` +
              `(${summary.promptsFile})`,
            `  ${counts.written} of ${counts.requested} new prompts from ${counts.seeds} seeds: ` +
              `${counts.completions} completions in ${counts.requests} requests`,
            `  rejected: ${rejected.length ? rejected.join(', ') : 'none'}`,
            ...prompts
              .slice(0, 3)
              .map((p) => `  e.g. ${JSON.stringify(p.text.length > 100 ? `${p.text.slice(0, 100)}…` : p.text)}`),
          ].join('\n') + '\n',
        );
      });
    });
}

function parseNumber(value: string): number {
  const number = Number(value);
  // Left to the schema to reject with its path; NaN is reported there as "expected number".
  return Number.isFinite(number) ? number : Number.NaN;
}
