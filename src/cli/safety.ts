/**
 * What every command does to keep the user's files safe, in one place: the `--force` flag that
 * lets an output replace something that is not an earlier output of the command (see
 * util/output.ts for the checks), and Ctrl-C / SIGTERM handling.
 *
 * Interrupts: the stage's AbortSignal fires, the stage stops at its next check and removes its
 * staging, and the command exits 130 (SIGINT) or 143 (SIGTERM) with one line saying what was kept
 * and how to go on. A stage that does not watch the signal, or a second Ctrl-C, ends the process at
 * once; the exit hooks of util/atomic.ts and util/output.ts still remove staging and locks.
 */
import { Option } from 'commander';
import type { FireoptConfig } from '../config/schema.js';
import { InterruptedError } from '../errors.js';
import { claimOutputs } from '../util/output.js';
import type { CliIO } from './context.js';

/** The `--force` option every command that writes an output takes. */
export function forceOption(): Option {
  return new Option('--force', 'replace what is at the output path even if it is not an earlier output of this command');
}

/**
 * Claim a pipeline's outputs (`fireopt run`, `fireopt demo`): the run directory and the release
 * folder, never one of the files the config reads. No --force here: `run --force` means "retrain".
 */
export function claimPipelineOutputs(command: string, config: FireoptConfig, options: { dir: string; release: string }): void {
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
  /** What stays after an interrupt and how to go on: "finished rows are journaled: run the same command again to resume". */
  kept: string;
  /** The stage watches the signal and stops at its next check; otherwise the process ends at once. */
  stageWatchesSignal: boolean;
}

type Interrupt = 'SIGINT' | 'SIGTERM';

/** Run `body` with Ctrl-C / SIGTERM turned into a clean stop (exit 130 / 143) that says what was kept. */
export async function interruptible<T>(io: CliIO, plan: InterruptPlan, body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let received: Interrupt | undefined;
  const interrupted = (signal: Interrupt): InterruptedError =>
    new InterruptedError(signal, `${plan.command} interrupted (${signal}): ${plan.kept}`);
  const onSignal = (name: NodeJS.Signals): void => {
    const signal: Interrupt = name === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
    if (received || !plan.stageWatchesSignal) {
      const error = interrupted(received ?? signal);
      io.stderr(`fireopt: ${error.message}\n`);
      process.exit(error.exitCode);
    }
    received = signal;
    controller.abort(interrupted(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await body(controller.signal);
  } catch (error) {
    // Whatever the stage threw while stopping (an abort reason, a closed stream), the user pressed Ctrl-C.
    if (received) throw interrupted(received);
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
