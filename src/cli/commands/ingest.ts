/** `fireopt ingest <files...> --out <dir>`: traces → a traces dataset (the stage is imported lazily). */
import { Option, type Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { ContextGetter } from '../context.js';
import { INGEST_FORMATS } from '../../config/schema.js';
import { claimOutputs } from '../../util/output.js';
import { parseShard, type ShardSpec } from '../../util/shard.js';
import { forceOption, interruptible } from '../safety.js';

interface IngestFlags {
  out?: string;
  format?: string;
  heldout?: number;
  dedup?: boolean;
  redact?: boolean;
  maxRejected?: number;
  maxLineBytes?: number;
  batchInput?: string[];
  shard?: ShardSpec;
  force?: boolean;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('ingest')
    .summary('turn production traces into a train/held-out Arrow dataset')
    .description(
      'Read traces (OpenAI chat, request/response logs, Batch API output, ShareGPT, prompt/completion, prompts;\n' +
        'plain or .gz; files, globs or - for stdin) and write <out>/{train,heldout}.arrow, ' +
        'rejected.jsonl and manifest.json.',
    )
    .argument('[files...]', 'trace files, globs, or - for stdin (default: ingest.inputs from the config)')
    .option('-o, --out <dir>', 'output dataset directory (replaced atomically)')
    .addOption(
      new Option('--format <format>', 'input format (default: detected per file)').choices([...INGEST_FORMATS]),
    )
    .option('--heldout <fraction>', 'fraction of conversations in the held-out split (default 0.1)', parseNumber)
    .option('--no-dedup', 'keep duplicate samples')
    .option('--redact', 'mask e-mails, phone numbers, card numbers, IP addresses and secrets')
    .option(
      '--max-rejected <n>',
      'fail (exit 1) above this many rejected lines: a count, or a fraction < 1 (default 0.05)',
      parseNumber,
    )
    .option('--max-line-bytes <n>', 'reject longer lines (default 16 MiB)', parseNumber)
    .option('--batch-input <file...>', 'OpenAI Batch API input files to join with batch output files by custom_id')
    .option(
      '--shard <i/n>',
      'only the trace files whose path hashes to shard i of n; join with fireopt merge',
      parseShard,
    )
    .addOption(forceOption())
    .action(async (files: string[], flags: IngestFlags, command: Command) => {
      const ctx = context();
      const config = loadConfig({
        file: ctx.globals.config,
        sets: ctx.globals.set,
        flags: {
          'ingest.inputs': files.length ? files : undefined,
          'ingest.out': flags.out,
          'ingest.format': flags.format,
          'ingest.heldout': flags.heldout,
          // commander sets dedup=true by default for --no-dedup; only an explicit --no-dedup overrides the config
          'ingest.dedup': command.getOptionValueSource('dedup') === 'cli' ? flags.dedup : undefined,
          'ingest.redact': flags.redact,
          'ingest.max_rejected': flags.maxRejected,
          'ingest.max_line_bytes': flags.maxLineBytes,
          'ingest.batch_inputs': flags.batchInput,
        },
      });
      const { ingest } = config;
      claimOutputs({
        command: 'ingest',
        outputs: [{ path: ingest.out, kind: 'traces', option: flags.out ? '--out' : 'ingest.out' }],
        inputs: [...ingest.inputs, ...ingest.batch_inputs],
        force: flags.force,
      });
      const { runIngest } = await import('../../ingest/index.js');
      const kept = 'no dataset written (an earlier dataset at the output path is untouched)';
      const summary = await interruptible(ctx.io, { command: 'ingest', kept, stageWatchesSignal: true }, (signal) => {
        // Reading stdin waits for data: end it so the stage sees the interrupt.
        if ([...ingest.inputs, ...ingest.batch_inputs].includes('-')) {
          signal.addEventListener('abort', () => process.stdin.destroy());
        }
        return runIngest(config, { progress: ctx.progress, stdin: process.stdin, signal, shard: flags.shard });
      });
      if (ctx.globals.json) {
        ctx.io.stdout(JSON.stringify(summary, null, 2) + '\n');
        return;
      }
      const { describeOffenders } = await import('../../ingest/rejects.js');
      const lines = [
        `wrote ${summary.out}: ${summary.rows.train} train + ${summary.rows.heldout} held-out rows`,
        `  from ${summary.records} records in ${summary.inputs.length} file(s), ` +
          `${(summary.input_bytes / 1e6).toFixed(1)} MB at ${summary.mb_per_s.toFixed(1)} MB/s`,
        `  by format: ${Object.entries(summary.rows_by_format)
          .map(([f, n]) => `${f} ${n}`)
          .join(', ')}`,
        `  duplicates removed: ${summary.duplicates_removed}; rejected: ${summary.rejected.count}`,
      ];
      if (summary.redactions)
        lines.push(
          `  redacted: ${Object.entries(summary.redactions)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')}`,
        );
      if (summary.rejected.count) {
        lines.push(
          '  worst offenders (all in rejected.jsonl):',
          ...describeOffenders(summary.rejected.worst.slice(0, 5)).map((l) => `    ${l}`),
        );
      }
      ctx.io.stdout(lines.join('\n') + '\n');
    });
}

function parseNumber(value: string): number {
  const number = Number(value);
  // Left to the config schema to reject with its path; NaN is reported there as "expected number".
  return Number.isFinite(number) ? number : Number.NaN;
}
