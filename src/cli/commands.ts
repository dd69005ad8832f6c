/**
 * Command registration: one file per command in ./commands/, each exporting `register(program, context)`.
 * Each command imports its stage lazily inside its action, so parsing and `--help` stay fast and
 * never load TensorFlow.js or Arrow; the command modules themselves are small and imported statically.
 */
import type { Command } from 'commander';
import type { ContextGetter } from './context.js';
import { register as compare } from './commands/compare.js';
import { register as convert } from './commands/convert.js';
import { register as demo } from './commands/demo.js';
import { register as distill } from './commands/distill.js';
import { register as drift } from './commands/drift.js';
import { register as evaluate } from './commands/eval.js';
import { register as exportCommand } from './commands/export.js';
import { register as ingest } from './commands/ingest.js';
import { register as inspect } from './commands/inspect.js';
import { register as merge } from './commands/merge.js';
import { register as run } from './commands/run.js';
import { register as serve } from './commands/serve.js';
import { register as synth } from './commands/synth.js';
import { register as tokenize } from './commands/tokenize.js';
import { register as train } from './commands/train.js';

// In the order `fireopt --help` lists them.
const registrations: Array<(program: Command, context: ContextGetter) => void> = [
  ingest,
  inspect,
  convert,
  distill,
  merge,
  serve,
  evaluate,
  compare,
  train,
  synth,
  exportCommand,
  tokenize,
  run,
  drift,
  demo,
];

/** Register every command on the program. */
export function registerCommands(program: Command, context: ContextGetter): void {
  for (const register of registrations) register(program, context);
}
