/** `fireopt distill <dataset> --out <dir>`: run the target over the prompts (the stage is imported lazily). */
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { ConfigError, UsageError } from '../../errors.js';
import type { ContextGetter } from '../context.js';
import { DISTILL_MODES, TRUNCATE_PROMPT } from '../../distill/config.js';
import type { ReplicaRows } from '../../distill/index.js';
import { parseShard, shardName, type ShardSpec } from '../../util/shard.js';
import { claimOutputs } from '../../util/output.js';
import { forceOption, interruptible } from '../safety.js';

interface DistillFlags {
  out?: string;
  mode?: string;
  targetModel?: string;
  tokenizer?: string;
  maxTokens?: number;
  limit?: number;
  topLogprobs?: number;
  truncatePrompt?: string;
  reuse?: string;
  shard?: ShardSpec;
  force?: boolean;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('distill')
    .summary('run the target model over the prompts: target token ids and top-k log-probabilities')
    .description(
      'Read an ingested dataset and write <out>/{train,heldout}.arrow (targets) and manifest.json.\n' +
        'Resumable: after a crash or Ctrl-C, run the same command again to continue.',
    )
    .argument('[dataset]', 'ingested dataset directory (default: distill.dataset from the config)')
    .option('-o, --out <dir>', 'output targets directory (replaced atomically when complete)')
    .addOption(
      new Option('--mode <mode>', 'regenerate | score | traces (default regenerate)').choices([...DISTILL_MODES]),
    )
    .option('--target-model <gguf>', 'shortcut for target.engine=llama-cpp, target.model=<gguf>')
    .option('--tokenizer <file>', 'the target tokenizer (GGUF or tokenizer.json); default: from the target GGUF')
    .option('--max-tokens <n>', 'most tokens per completion', Number)
    .option('--top-logprobs <n>', 'alternatives kept per position (0 = none)', Number)
    .option('--limit <n>', 'at most n rows per split (quick trials)', Number)
    .addOption(
      new Option(
        '--truncate-prompt <side>',
        'a prompt over distill.max_prompt_tokens: error (default), or left: keep its last tokens',
      ).choices(TRUNCATE_PROMPT),
    )
    .option(
      '--reuse <targets>',
      'take the rows of earlier targets by row id (same target and settings); distill only new rows',
    )
    .option(
      '--shard <i/n>',
      'only shard i of n (by row-id hash), for parallel workers; join with fireopt merge',
      parseShard,
    )
    .addOption(forceOption())
    .action(async (dataset: string | undefined, flags: DistillFlags) => {
      const ctx = context();
      const config = loadConfig({
        file: ctx.globals.config,
        sets: ctx.globals.set,
        flags: {
          'distill.dataset': dataset,
          'distill.out': flags.out,
          'distill.mode': flags.mode,
          'distill.tokenizer': flags.tokenizer,
          'distill.max_tokens': flags.maxTokens,
          'distill.top_logprobs': flags.topLogprobs,
          'distill.limit': flags.limit,
          'distill.truncate_prompt': flags.truncatePrompt,
          'target.engine': flags.targetModel ? 'llama-cpp' : undefined,
          'target.model': flags.targetModel,
        },
      });
      const { distill, target } = config;
      if (!distill.dataset) throw new UsageError('distill: no dataset given (argument or distill.dataset)');
      if (!distill.out) throw new UsageError('distill: no output directory given (--out or distill.out)');
      if (!target && distill.mode !== 'traces') {
        throw new ConfigError(
          'distill needs a target: set the `target` section or --target-model <gguf> (or use --mode traces)',
        );
      }
      claimOutputs({
        command: 'distill',
        outputs: [{ path: distill.out, kind: 'targets', option: flags.out ? '--out' : 'distill.out' }],
        inputs: [
          distill.dataset,
          target?.engine === 'openai' ? undefined : target?.model,
          distill.tokenizer,
          // Reusing the output folder itself is allowed: its rows are read before it is replaced.
          flags.reuse && resolve(flags.reuse) !== resolve(distill.out) ? flags.reuse : undefined,
        ],
        force: flags.force,
      });
      const { openTarget, readTargetApiKey } = await import('../../targets/open.js');
      const { runDistill } = await import('../../distill/index.js');
      const apiKey = readTargetApiKey(target, process.env);
      const opened = await openTarget(target, distill, { apiKey, progress: ctx.progress });
      const [input, out] = [distill.dataset, distill.out];
      const kept = 'finished rows are journaled: run the same command again to resume';
      await interruptible(ctx.io, { command: 'distill', kept, stageWatchesSignal: true }, async (signal) => {
        const summary = await runDistill(
          { dataset: input, out, distill, resolvedConfig: config, target, reuse: flags.reuse, shard: flags.shard },
          {
            tokenizer: opened.tokenizer,
            chatTemplate: opened.chatTemplate,
            tokenizerIdentity: opened.identity,
            openEngine: opened.openEngine,
            progress: ctx.progress,
            signal,
          },
        );
        if (ctx.globals.json) {
          ctx.io.stdout(JSON.stringify(summary, null, 2) + '\n');
          return;
        }
        const c = summary.counts;
        ctx.io.stdout(
          [
            `wrote ${summary.out}: ${c.rows.train} train + ${c.rows.heldout} held-out target rows`,
            `  ${c.input} input rows${summary.shard ? ` (shard ${shardName(summary.shard)})` : ''}: ` +
              `${c.ok} ok, ${c.failed} failed, ${c.skipped} ` +
              `skipped${c.resumed ? ` (${c.resumed} from an earlier run)` : ''}`,
            ...(summary.reuse ? [reuseLine(c.reused, c.input, summary.reuse)] : []),
            `  tokens: ${summary.tokens.prompt} prompt, ${summary.tokens.completion} completion`,
            ...(c.truncated
              ? [truncationLine(c.truncated, config.distill.max_prompt_tokens, summary.tokens.truncated)]
              : []),
            ...(summary.replicas ?? []).map(replicaLine),
            ...summary.failures.slice(0, 5).map((f) => `  failed ${f.id}: ${f.reason}`),
          ].join('\n') + '\n',
        );
      });
    });
}

/** The summary line of one target replica of a fleet. */
function replicaLine(replica: ReplicaRows): string {
  const troubles = [
    ...(replica.failedAttempts ? [`${replica.failedAttempts} failed attempts`] : []),
    ...(replica.timesTakenOut ? [`taken out ${replica.timesTakenOut}×`] : []),
  ];
  const detail = troubles.length ? ` (${troubles.join(', ')})` : '';
  return `  replica ${replica.baseUrl}: ${replica.rows} rows, ${replica.tokens} tokens${detail}`;
}

/** The summary line of --reuse: how many rows came from the earlier targets, or why none did. */
function reuseLine(reused: number, input: number, reuse: { from: string; reason: string }): string {
  return reused > 0
    ? `  ${reused} rows reused from ${reuse.from}, ${input - reused} distilled`
    : `  0 of ${input} rows reused: ${reuse.reason}`;
}

/** The summary line of truncate_prompt `left`. */
function truncationLine(rows: number, maxPromptTokens: number, droppedTokens: number): string {
  return `  ${rows} prompts cut to their last ${maxPromptTokens} tokens (${droppedTokens} tokens dropped)`;
}
