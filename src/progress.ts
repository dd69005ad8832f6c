/**
 * Progress events. Core code emits these; only the CLI draws them (a cli-progress bar on a TTY,
 * plain periodic lines otherwise, nothing on stdout with --json).
 */
export type ProgressEvent =
  /** `done`: units already done before this session (a resumed run); rates count only this session's. */
  | { kind: 'start'; task: string; total?: number; unit: string; done?: number }
  | {
      kind: 'advance';
      task: string;
      done: number;
      total?: number;
      bytesDone?: number;
      fields?: Record<string, string | number>;
    }
  | { kind: 'end'; task: string; done: number; fields?: Record<string, string | number> }
  | { kind: 'log'; level: 'info' | 'warn'; message: string };

export type ProgressSink = (event: ProgressEvent) => void;

/** A sink that drops everything (library use, tests). */
export const silentProgress: ProgressSink = () => {};
