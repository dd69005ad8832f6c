/**
 * Draws progress events: a cli-progress bar on a TTY, plain lines every few seconds otherwise, and
 * with `--json` one JSON object per line (what CI logs can parse). Everything goes to the context's
 * stderr, so that `--json` output on stdout stays machine-readable.
 */
import cliProgress from 'cli-progress';
import type { ProgressEvent, ProgressSink } from '../progress.js';

export interface RendererOptions {
  /** Where the lines go: the command context's stderr. */
  write: (text: string) => void;
  quiet?: boolean;
  /** JSON lines instead of text (`--json`); a bar is never drawn then. */
  json?: boolean;
  /** Draw a bar: only when `write` is the process's own stderr and that is a terminal. */
  tty?: boolean;
  plainIntervalMs?: number;
}

/**
 * One line of `--json` progress on stderr. `event` is the ProgressEvent's kind; `elapsed_s` counts
 * from the task's start; advance lines come at most every `plainIntervalMs`, start/end/log always.
 */
export type ProgressJsonLine = {
  type: 'progress';
  time: string;
  event: ProgressEvent['kind'];
  elapsed_s?: number;
  rate_per_s?: number;
} & Omit<Partial<Extract<ProgressEvent, { kind: 'advance' }>>, 'kind'> &
  Partial<{ unit: string; level: 'info' | 'warn'; message: string }>;

interface TaskState {
  bar?: cliProgress.SingleBar;
  startedMs: number;
  lastPrintMs: number;
  unit: string;
  total?: number;
  /** Units done before this session (a resumed run): not counted in rates. */
  initial: number;
}

/** A progress sink that draws events for the user (see the file comment), with `stop()` to close open bars. */
export function createProgressRenderer(options: RendererOptions): ProgressSink & { stop(): void } {
  const tty = !options.json && (options.tty ?? false);
  const interval = options.plainIntervalMs ?? 5000;
  const tasks = new Map<string, TaskState>();
  const jsonLine = (line: Omit<ProgressJsonLine, 'type' | 'time'>): void =>
    options.write(JSON.stringify({ type: 'progress', time: new Date().toISOString(), ...line }) + '\n');

  const sink = (event: ProgressEvent): void => {
    if (event.kind === 'log') {
      if (options.quiet && event.level !== 'warn') return;
      if (options.json) jsonLine({ event: 'log', level: event.level, message: event.message });
      else options.write(`${event.level === 'warn' ? 'warning: ' : ''}${event.message}\n`);
      return;
    }
    if (options.quiet) return;
    const now = Date.now();
    if (event.kind === 'start') {
      const state: TaskState = {
        initial: event.done ?? 0,
        startedMs: now,
        lastPrintMs: now,
        unit: event.unit,
        total: event.total,
      };
      if (tty) {
        state.bar = new cliProgress.SingleBar(
          {
            format:
              `${event.task} [{bar}] {percentage}% | {value}/{total} ` + `${event.unit} | {rate} | ETA {eta_formatted}`,
            // The bar redraws in place with cursor moves, which only a terminal stream offers; `tty`
            // is set only when the context's stderr is this process's stderr.
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: false,
          },
          cliProgress.Presets.shades_classic,
        );
        state.bar.start(event.total ?? 0, state.initial, { rate: '' });
      }
      tasks.set(event.task, state);
      if (options.json) jsonLine({ event: 'start', task: event.task, total: event.total, unit: event.unit });
      return;
    }
    const state = tasks.get(event.task);
    if (!state) return;
    const elapsedSec = Math.max((now - state.startedMs) / 1000, 1e-3);
    // This session's units over this session's time: a resumed run's earlier steps took no time here.
    const sessionDone = event.done - state.initial;
    const timing = { elapsed_s: round(elapsedSec), rate_per_s: round(sessionDone / elapsedSec) };
    if (event.kind === 'advance') {
      if (event.total !== undefined && event.total !== state.total) {
        state.total = event.total;
        state.bar?.setTotal(event.total);
      }
      const rate = rateText(event.bytesDone, sessionDone, state.unit, elapsedSec);
      const fields = event.fields
        ? ' ' +
          Object.entries(event.fields)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')
        : '';
      if (state.bar) {
        state.bar.update(event.done, { rate: rate + fields });
      } else if (now - state.lastPrintMs >= interval) {
        state.lastPrintMs = now;
        if (options.json) {
          const { kind, ...advance } = event;
          jsonLine({ event: kind, ...advance, total: state.total, unit: state.unit, ...timing });
        } else {
          const of = state.total ? `/${state.total}` : '';
          options.write(`${event.task}: ${event.done}${of} ${state.unit}, ${rate}${fields}\n`);
        }
      }
      return;
    }
    // end: the task's final counts (e.g. distill's ok / failed / skipped) follow the total
    const rate = rateText(undefined, sessionDone, state.unit, elapsedSec);
    const counts = event.fields
      ? ` (${Object.entries(event.fields)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')})`
      : '';
    if (state.bar) {
      state.bar.update(event.done, { rate });
      state.bar.stop();
      if (counts) options.write(`${event.task}: done, ${event.done} ${state.unit}${counts}\n`);
    } else if (options.json) {
      jsonLine({ event: 'end', task: event.task, done: event.done, unit: state.unit, ...event.fields, ...timing });
    } else {
      const resumed = state.initial > 0 ? ` (resumed at ${state.initial}; ${event.done} in all)` : '';
      const took = `${elapsedSec.toFixed(1)} s`;
      options.write(`${event.task}: done, ${sessionDone} ${state.unit}${counts} in ${took} (${rate})${resumed}\n`);
    }
    tasks.delete(event.task);
  };
  return Object.assign(sink, {
    stop(): void {
      for (const state of tasks.values()) state.bar?.stop();
      tasks.clear();
    },
  });
}

const round = (value: number): number => Math.round(value * 1000) / 1000;

function rateText(bytes: number | undefined, done: number, unit: string, elapsedSec: number): string {
  const perSec = `${Math.round(done / elapsedSec)} ${unit}/s`;
  return bytes === undefined ? perSec : `${perSec}, ${(bytes / 1e6 / elapsedSec).toFixed(1)} MB/s`;
}
