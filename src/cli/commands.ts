/**
 * Command registration: one file per command in ./commands/, each exporting `register(program, context)`.
 * Each command imports its stage lazily inside its action, so parsing and `--help` stay fast and
 * never load TensorFlow.js or Arrow.
 */
import type { Command } from 'commander';
import type { CommandContext } from './context.js';

export type ContextGetter = () => CommandContext;

const registrations: Array<(program: Command, context: ContextGetter) => void> = [
  // one line per command module, e.g.: (await import)... kept static for --help speed:
  (await import('./commands/ingest.js')).register,
  (await import('./commands/inspect.js')).register,
  (await import('./commands/convert.js')).register,
  (await import('./commands/distill.js')).register,
  (await import('./commands/serve.js')).register,
  (await import('./commands/eval.js')).register,
  (await import('./commands/compare.js')).register,
  (await import('./commands/train.js')).register,
  (await import('./commands/synth.js')).register,
  (await import('./commands/export.js')).register,
  (await import('./commands/tokenize.js')).register,
  (await import('./commands/run.js')).register, (await import('./commands/drift.js')).register, (await import('./commands/demo.js')).register,
];

export function registerCommands(program: Command, context: ContextGetter): void {
  for (const register of registrations) register(program, context);
}
