/**
 * What every command does to keep the user's files safe, in one place: the `--force` flag that
 * lets an output replace something that is not an earlier output of the command (see
 * util/output.ts for the checks), and Ctrl-C / SIGTERM handling.
 *
 * Interrupts (one handler for the life of a command, installed by the top-level handler): the
 * stage's AbortSignal fires, the stage stops at its next check and removes its staging, and the
 * command exits 130 (SIGINT) or 143 (SIGTERM) with one line saying what was kept and how to go
 * on. A stage that does not watch the signal, or a second Ctrl-C, ends the process at
 * once; the exit hooks of util/atomic.ts and util/output.ts still remove staging and locks.
 */
import { Option } from 'commander';
import type { FireoptConfig } from '../config/schema.js';
import { InterruptedError } from '../errors.js';
import { claimOutputs } from '../util/output.js';
import type { CliIO } from './context.js';

/** The `--force` option every command that writes an output takes. */
export function forceOption(): Option {
  const help = 'replace what is at the output path even if it is not an earlier output of this command';
  return new Option('--force', help);
}

/**
 * Claim a pipeline's outputs (`fireopt run`, `fireopt demo`): the run directory and the release
 * folder, never one of the files the config reads. No --force here: `run --force` means "retrain".
 */
export function claimPipelineOutputs(
  command: string,
  config: FireoptConfig,
  options: { dir: string; release: string },
): void {
  const { target } = config;
  claimOutputs({
    command,
    outputs: [
      { path: config.run.dir, kind: 'pipeline-run', option: options.dir },
      { path: config.promotion.release, kind: 'release', option: options.release },
    ],
    inputs: [
      ...config.ingest.inputs,
      target?.engine === 'openai' ? undefined : target?.model,
      config.distill.tokenizer,
      config.train.target_model,
      config.train.init_from,
      config.train.tokenizer,
      config.export.target,
    ],
  });
}

export interface InterruptPlan {
  /** The command's name, for the message. */
  command: string;
  /** What stays after an interrupt and how to go on: "finished rows are journaled: run the same command again". */
  kept: string;
  /** The stage watches the signal and stops at its next check; otherwise the process ends at once. */
  stageWatchesSignal: boolean;
}

type Interrupt = 'SIGINT' | 'SIGTERM';

/** A stage that watches the signal but is stuck in I/O still ends this long after the first signal. */
const STOP_GRACE_MS = 10_000;

/** The running command's plan while its stage runs; before and after, a signal ends the process at once. */
let active: { plan: InterruptPlan; controller: AbortController; received?: Interrupt; io: CliIO } | undefined;

function interruptedError(plan: InterruptPlan | undefined, signal: Interrupt): InterruptedError {
  if (!plan) return new InterruptedError(signal, `interrupted (${signal}) before any output was written`);
  return new InterruptedError(signal, `${plan.command} interrupted (${signal}): ${plan.kept}`);
}

/** Print the one line and end the process; the exit hooks remove staging and release output locks. */
function exitNow(io: CliIO, error: InterruptedError): never {
  io.stderr(`fireopt: ${error.message}\n`);
  process.exit(error.exitCode);
}

/**
 * Handle Ctrl-C / SIGTERM for the whole life of a command (the top-level handler installs it, so
 * a signal while the config loads or the stage is imported ends cleanly too). Returns the uninstaller.
 */
export function handleInterrupts(io: CliIO): () => void {
  const onSignal = (name: NodeJS.Signals): void => {
    const signal: Interrupt = name === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
    if (!active || active.received || !active.plan.stageWatchesSignal) {
      exitNow(active?.io ?? io, interruptedError(active?.plan, active?.received ?? signal));
    }
    active.received = signal;
    const stopping = active;
    setTimeout(() => exitNow(stopping.io, interruptedError(stopping.plan, signal)), STOP_GRACE_MS).unref();
    active.controller.abort(interruptedError(active.plan, signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    active = undefined;
  };
}

/** Run a command's stage so that Ctrl-C / SIGTERM stop it cleanly (exit 130 / 143) with a line saying what was kept. */
export async function interruptible<T>(
  io: CliIO,
  plan: InterruptPlan,
  body: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const run = { plan, controller: new AbortController(), io, received: undefined as Interrupt | undefined };
  active = run;
  try {
    return await body(run.controller.signal);
  } catch (error) {
    // Whatever the stage threw while stopping (an abort reason, a closed stream), the user pressed Ctrl-C.
    if (run.received) throw interruptedError(plan, run.received);
    throw error;
  } finally {
    if (active === run) active = undefined;
  }
}

/** For `serve`, where Ctrl-C / SIGTERM is the normal way to stop: resolves on the first one (a second ends it). */
export function untilStopSignal(io: CliIO): Promise<void> {
  const plan = { command: 'serve', kept: 'the server stopped', stageWatchesSignal: true };
  const run = { plan, controller: new AbortController(), io };
  active = run;
  return new Promise((resolve) => {
    run.controller.signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
