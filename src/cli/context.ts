/** What every command gets: global flags, output streams and the progress sink. */
import type { ProgressSink } from '../progress.js';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface GlobalOptions {
  config?: string;
  set: string[];
  json: boolean;
  verbose: boolean;
  quiet: boolean;
}

export interface CommandContext {
  io: CliIO;
  globals: GlobalOptions;
  progress: ProgressSink;
}

/** How a command reaches its context: it exists only once commander has parsed the global flags. */
export type ContextGetter = () => CommandContext;

export const processIO: CliIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};
