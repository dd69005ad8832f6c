/**
 * Typed errors. Every error a user can cause carries a stable code, a message that names the
 * file / line / field at fault, an optional hint, and the exit code the CLI should use:
 *   0 success, 1 the run failed, 2 bad usage, config or input; 3 and 4 are outcomes a CI job
 *   branches on (`fireopt run` and `fireopt compare`: 3 = not promoted; `run`: 4 = retraining not needed;
 *   `fireopt drift`: 3 = due);
 *   5 (`fireopt run`): nothing changed since the last finished run.
 *   130 / 143 interrupted by SIGINT / SIGTERM (the shells' 128 + signal number).
 */
export type ExitCode = 0 | 1 | 2 | 3 | 4 | 5 | 130 | 143;

export class FireoptError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad command-line usage: unknown flags, missing arguments, conflicting options. */
export class UsageError extends FireoptError {
  constructor(message: string, hint?: string) {
    super(message, 'E_USAGE', 2, hint);
  }
}

/** A config file (or --set override) that does not match the schema. */
export class ConfigError extends FireoptError {
  constructor(
    message: string,
    readonly problems: string[] = [],
    hint?: string,
  ) {
    super(problems.length ? `${message}\n${problems.map((p) => `  - ${p}`).join('\n')}` : message, 'E_CONFIG', 2, hint);
  }
}

/** Input data that cannot be used: wrong format, corrupt file, wrong schema version. */
export class InputError extends FireoptError {
  constructor(message: string, hint?: string, code = 'E_INPUT') {
    super(message, code, 2, hint);
  }
}

/** The run itself failed (too many rejected rows, an engine crashed, a check did not pass). */
export class RunError extends FireoptError {
  constructor(message: string, hint?: string, code = 'E_RUN') {
    super(message, code, 1, hint);
  }
}

/** An output path that must not be written (an input, the current folder, someone else's files): before any work. */
export class OutputRefusedError extends FireoptError {
  constructor(message: string, hint?: string) {
    super(message, 'E_OUTPUT_REFUSED', 2, hint);
  }
}

/** Another fireopt process is writing the same output right now. */
export class OutputLockedError extends FireoptError {
  constructor(message: string, hint?: string) {
    super(message, 'E_OUTPUT_LOCKED', 2, hint);
  }
}

/** Ctrl-C or SIGTERM: the message says what was kept and how to go on. */
export class InterruptedError extends FireoptError {
  constructor(
    readonly signal: 'SIGINT' | 'SIGTERM',
    message: string,
  ) {
    super(message, 'E_INTERRUPTED', signal === 'SIGINT' ? 130 : 143);
  }
}

/**
 * A command that finished normally but reports a non-zero status (e.g. `fireopt run`: not
 * promoted). The command has printed its result; the top-level handler only sets the exit code.
 */
export class ExitStatus extends FireoptError {
  constructor(exitCode: ExitCode, code: string, message: string) {
    super(message, code, exitCode);
  }
}

/**
 * A failure that comes with a machine-readable summary (e.g. `fireopt run`: the stage that failed).
 * The top-level handler prints `summary` on stdout under `--json`, then reports `cause` as usual.
 */
export class FailureWithSummary extends Error {
  constructor(
    override readonly cause: unknown,
    readonly summary: Record<string, unknown>,
  ) {
    super(describeError(cause));
    this.name = 'FailureWithSummary';
  }
}

/** Format an unknown thrown value as one line, for messages that wrap a lower-level failure. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
