/**
 * The fireopt command line. Commands are thin wrappers: each parses its flags, builds the config
 * and imports its stage lazily, so `fireopt --help` never loads TensorFlow.js or Arrow.
 * One top-level handler maps errors to exit codes: 0 success, 1 run failed, 2 bad usage/config/input.
 */
import { Command, CommanderError } from 'commander';
import { ExitStatus, FailureWithSummary, FireoptError, InterruptedError, describeError } from '../errors.js';
import { releaseOutputs } from '../util/output.js';
import { FIREOPT_VERSION } from '../version.js';
import { processIO, type CliIO, type CommandContext, type GlobalOptions } from './context.js';
import { createProgressRenderer } from './progress.js';
import { registerCommands } from './commands.js';
import { handleInterrupts } from './safety.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Build the commander program; `onContext` sees each command's context before it runs. */
export function buildProgram(io: CliIO, onContext: (ctx: CommandContext) => void = () => {}): Command {
  let context: CommandContext | undefined;
  const program = new Command('fireopt')
    .description('Train small draft models for speculative decoding, adapted to your own traffic.')
    .version(FIREOPT_VERSION, '-V, --version')
    .option('-c, --config <file>', 'YAML config file')
    .option('--set <key.path=value>', 'override a config value (repeatable)', collect, [])
    .option('--json', 'print a machine-readable JSON summary on stdout', false)
    .option('-v, --verbose', 'more detail, including stack traces of internal errors', false)
    .option('-q, --quiet', 'no progress output', false)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();
  program.hook('preAction', (_program, actionCommand) => {
    const globals = actionCommand.optsWithGlobals() as GlobalOptions;
    const progress = createProgressRenderer({
      write: io.stderr,
      quiet: globals.quiet,
      json: globals.json,
      tty: io === processIO && Boolean(process.stderr.isTTY),
    });
    context = { io, globals: { ...globals, set: globals.set ?? [] }, progress };
    onContext(context);
  });
  registerCommands(program, () => {
    if (!context) throw new Error('command context used before preAction');
    return context;
  });
  return program;
}

/** Run the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let verbose = argv.includes('--verbose') || argv.includes('-v');
  let json = false;
  const program = buildProgram(io, (ctx) => {
    verbose = ctx.globals.verbose;
    json = ctx.globals.json;
  });
  const stopHandlingInterrupts = handleInterrupts(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    return reportError(error, io, verbose, json);
  } finally {
    stopHandlingInterrupts();
    releaseOutputs(); // the output locks a command took (in-process callers run more than one command)
  }
}

/**
 * The one top-level error handler. Under `--json` a failure also prints a JSON summary on stdout
 * (`outcome: "failed"`, the error's code and message), so a CI job that parses stdout always can.
 */
export function reportError(error: unknown, io: CliIO, verbose: boolean, json = false): number {
  if (error instanceof FailureWithSummary) {
    const exitCode = reportError(error.cause, io, verbose);
    if (json) io.stdout(JSON.stringify({ ...error.summary, exit_code: exitCode }, null, 2) + '\n');
    return exitCode;
  }
  if (json && !(error instanceof ExitStatus) && !(error instanceof CommanderError && error.exitCode === 0)) {
    const exitCode = reportError(error, io, verbose);
    const fireoptError = error instanceof FireoptError ? error : undefined;
    const summary = {
      outcome: 'failed',
      exit_code: exitCode,
      error: {
        code: fireoptError?.code ?? (error instanceof CommanderError ? 'E_USAGE' : 'E_INTERNAL'),
        message: describeError(error),
        hint: fireoptError?.hint ?? null,
      },
    };
    io.stdout(JSON.stringify(summary, null, 2) + '\n');
    return exitCode;
  }
  if (error instanceof CommanderError) {
    if (
      error.code === 'commander.helpDisplayed' ||
      error.code === 'commander.version' ||
      error.code === 'commander.help'
    )
      return 0;
    return error.exitCode === 0 ? 0 : 2; // commander already printed the message
  }
  if (error instanceof ExitStatus) return error.exitCode; // the command already printed its outcome
  if (error instanceof InterruptedError) {
    io.stderr(`fireopt: ${error.message}\n`); // one line: what was kept and how to go on
    return error.exitCode;
  }
  if (error instanceof FireoptError) {
    io.stderr(`fireopt: error: ${error.message}\n`);
    if (error.hint) io.stderr(`${error.hint}\n`);
    if (verbose && error.stack) io.stderr(`${error.stack}\n`);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.stderr(`fireopt: internal error: ${message}\n`);
  if (verbose && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
  else io.stderr('(run with --verbose for the stack trace; this is a bug in fireopt, please report it)\n');
  return 1;
}
