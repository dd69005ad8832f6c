/**
 * Draws progress events: a cli-progress bar on a TTY, plain lines every few seconds otherwise.
 * Everything goes to stderr so that `--json` output on stdout stays machine-readable.
 */
import cliProgress from 'cli-progress';
import type { ProgressEvent, ProgressSink } from '../progress.js';

export interface RendererOptions {
  quiet?: boolean;
  tty?: boolean;
  plainIntervalMs?: number;
}

interface BarState {
  bar?: cliProgress.SingleBar;
  startedMs: number;
  lastPrintMs: number;
  unit: string;
  total?: number;
  /** Units done before this session (a resumed run): not counted in rates. */
  initial: number;
}

export function createProgressRenderer(options: RendererOptions = {}): ProgressSink & { stop(): void } {
  const tty = options.tty ?? Boolean(process.stderr.isTTY);
  const interval = options.plainIntervalMs ?? 5000;
  const bars = new Map<string, BarState>();

  const sink = (event: ProgressEvent): void => {
    if (event.kind === 'log') {
      if (!options.quiet || event.level === 'warn') process.stderr.write(`${event.level === 'warn' ? 'warning: ' : ''}${event.message}\n`);
      return;
    }
    if (options.quiet) return;
    const now = Date.now();
    if (event.kind === 'start') {
      const state: BarState = {
        initial: event.done ?? 0,
        startedMs: now,
        lastPrintMs: now,
        unit: event.unit,
        total: event.total,
      };
      if (tty) {
        state.bar = new cliProgress.SingleBar(
          {
            format: `${event.task} [{bar}] {percentage}% | {value}/{total} ${event.unit} | {rate} | ETA {eta_formatted}`,
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: false,
          },
          cliProgress.Presets.shades_classic,
        );
        state.bar.start(event.total ?? 0, state.initial, { rate: '' });
      }
      bars.set(event.task, state);
      return;
    }
    const state = bars.get(event.task);
    if (!state) return;
    const elapsedSec = Math.max((now - state.startedMs) / 1000, 1e-3);
    // This session's units over this session's time: a resumed run's earlier steps took no time here.
    const sessionDone = event.done - state.initial;
    const rate = rateText(event.kind === 'advance' ? event.bytesDone : undefined, sessionDone, state.unit, elapsedSec);
    const fields = event.kind === 'advance' && event.fields
      ? ' ' + Object.entries(event.fields).map(([k, v]) => `${k}=${v}`).join(' ')
      : '';
    if (event.kind === 'advance') {
      if (event.total !== undefined && state.bar && event.total !== state.total) {
        state.total = event.total;
        state.bar.setTotal(event.total);
      }
      if (state.bar) state.bar.update(event.done, { rate: rate + fields });
      else if (now - state.lastPrintMs >= interval) {
        state.lastPrintMs = now;
        const of = event.total ? `/${event.total}` : '';
        process.stderr.write(`${event.task}: ${event.done}${of} ${state.unit}, ${rate}${fields}\n`);
      }
      return;
    }
    // end: the task's final counts (e.g. distill's ok / failed / skipped) follow the total
    const counts = event.fields ? ` (${Object.entries(event.fields).map(([k, v]) => `${v} ${k}`).join(', ')})` : '';
    if (state.bar) {
      state.bar.update(event.done, { rate });
      state.bar.stop();
      if (counts) process.stderr.write(`${event.task}: done, ${event.done} ${state.unit}${counts}\n`);
    } else {
      const resumed = state.initial > 0 ? ` (resumed at ${state.initial}; ${event.done} in all)` : '';
      const took = `${elapsedSec.toFixed(1)} s`;
      process.stderr.write(`${event.task}: done, ${sessionDone} ${state.unit}${counts} in ${took} (${rate})${resumed}
`);
    }
    bars.delete(event.task);
  };
  return Object.assign(sink, {
    stop(): void {
      for (const state of bars.values()) state.bar?.stop();
      bars.clear();
    },
  });
}

function rateText(bytes: number | undefined, done: number, unit: string, elapsedSec: number): string {
  const perSec = `${Math.round(done / elapsedSec)} ${unit}/s`;
  return bytes === undefined ? perSec : `${perSec}, ${(bytes / 1e6 / elapsedSec).toFixed(1)} MB/s`;
}
