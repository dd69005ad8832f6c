/**
 * Command registration. Each command imports its stage lazily inside its action, so parsing
 * and `--help` stay fast and never load TensorFlow.js.
 */
import type { Command } from 'commander';
import type { CommandContext } from './context.js';

export type ContextGetter = () => CommandContext;

export function registerCommands(program: Command, context: ContextGetter): void {
  void program;
  void context;
}
