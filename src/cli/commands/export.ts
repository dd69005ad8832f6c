/**
 * `fireopt export --model <draft> --format hf|gguf|all --out <dir>`: serving artifacts
 * (the stage is imported lazily).
 */
import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { CommandContext, ContextGetter } from '../context.js';
import { recordedDraftInputs } from '../draft-inputs.js';
import { claimOutputs } from '../../util/output.js';
import { forceOption, interruptible } from '../safety.js';

interface ExportFlags {
  model?: string;
  format?: string;
  out?: string;
  dtype?: string;
  target?: string;
  servingContext?: number;
  name?: string;
  force?: boolean;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('export')
    .summary('export a draft for serving engines: Hugging Face (vLLM, SGLang, transformers) and GGUF (llama.cpp)')
    .description(
      'Check the draft against the target for each engine (vocabulary, special tokens, context) and stop before\n' +
        'writing anything if an engine would refuse it; then write <out>/hf/, <out>/<name>.gguf, SERVING.md and\n' +
        'manifest.json atomically. A reduced-vocabulary draft is expanded to the target vocabulary with output\n' +
        'rows that never win, so its greedy choices are unchanged.',
    )
    .option('-m, --model <draft>', 'draft checkpoint directory (written by fireopt train)')
    .addOption(new Option('--format <format>', 'what to write (default all)').choices(['hf', 'gguf', 'all']))
    .option('-o, --out <dir>', 'output folder (replaced atomically)')
    .addOption(new Option('--dtype <dtype>', 'weight precision (default f32)').choices(['f32', 'f16']))
    .option(
      '--target <path>',
      'the target: Hugging Face folder, GGUF, or llama2.c checkpoint (default: the one the draft was trained for)',
    )
    .option('--serving-context <n>', 'context length the target is served with', Number)
    .option('--name <name>', 'name of the export (GGUF file name and general.name)')
    .addOption(forceOption())
    .action(async (flags: ExportFlags) => {
      const ctx = context();
      const config = loadConfig({
        file: ctx.globals.config,
        sets: ctx.globals.set,
        flags: {
          'export.model': flags.model,
          'export.format': flags.format,
          'export.out': flags.out,
          'export.dtype': flags.dtype,
          'export.target': flags.target,
          'export.serving_context': flags.servingContext,
          'export.name': flags.name,
        },
      });
      if (!config.export.target && config.export.model) config.export.target = defaultTarget(config.export.model, ctx);
      claimOutputs({
        command: 'export',
        outputs: [{ path: config.export.out, kind: 'export', option: flags.out ? '--out' : 'export.out' }],
        inputs: [config.export.model, config.export.target],
        force: flags.force,
      });
      const { runExport } = await import('../../export/index.js');
      const kept = 'nothing written (an earlier export at the output path is untouched)';
      const result = await interruptible(ctx.io, { command: 'export', kept, stageWatchesSignal: false }, () =>
        runExport({ export: config.export, resolvedConfig: config }, { progress: ctx.progress }),
      );
      if (ctx.globals.json) {
        ctx.io.stdout(
          JSON.stringify(
            {
              out: result.out,
              hf: result.hfDir ?? null,
              gguf: result.gguf ?? null,
              engines: result.plan.engines,
              vocabulary: result.vocabulary,
              context_length: result.plan.contextLength,
              warnings: result.plan.warnings,
              serving: result.servingCommands,
            },
            null,
            2,
          ) + '\n',
        );
        return;
      }
      const lines = [`wrote ${result.out}: ${[result.hfDir, result.gguf].filter(Boolean).join(', ')}`];
      for (const warning of result.plan.warnings) lines.push(`  note: ${warning}`);
      for (const { title, command } of result.servingCommands) lines.push('', `# ${title}`, command);
      ctx.io.stdout(lines.join('\n') + '\n');
    });
}

/**
 * Without --target (or export.target): the target model the draft was trained for, from its
 * manifest, when that file still exists (saying so on stderr); otherwise none, as before, with a note.
 */
function defaultTarget(model: string, ctx: CommandContext): string | undefined {
  const recorded = recordedDraftInputs(model);
  if (!recorded?.targetModel) return undefined;
  if (!existsSync(recorded.targetModel)) {
    ctx.progress({
      kind: 'log',
      level: 'warn',
      message:
        `export: no --target given, and the target ${model} was trained for (${recorded.targetModel}) is no longer ` +
        'there: exporting without target checks (pass --target to check vocabulary, special tokens and context)',
    });
    return undefined;
  }
  ctx.progress({
    kind: 'log',
    level: 'info',
    message: `export: no --target given: using ${recorded.targetModel} (the target ${model} was trained for)`,
  });
  return recorded.targetModel;
}
