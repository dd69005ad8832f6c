/**
 * The resume state of one training run, `<run>/state/`: every variable and both AdamW moments as
 * raw float32 (exact), plus the counters that make the continuation identical to an uninterrupted
 * run — optimiser step, data position, schedule length, early-stopping state and how much of
 * metrics.jsonl belongs to the steps it covers. Written atomically (a staged folder renamed into
 * place), so a `kill -9` leaves either the previous state or the new one.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../errors.js';
import type { LlamaConfig } from '../model/index.js';
import { StagedDir } from '../util/atomic.js';
import type { TrainConfig } from './config.js';
import type { DataPosition } from './data.js';

export const STATE_VERSION = 1;

export interface TrainCounters {
  /** Optimiser steps done. */
  step: number;
  position: DataPosition;
  /** Length of the LR schedule (fixed once the step time is known in a time-budgeted run). */
  totalSteps: number;
  /** Tokens processed (every input position of every micro-batch). */
  tokens: number;
  /** Training time so far, excluding the current process's start-up. */
  elapsedMs: number;
  bestHitRate: number;
  bestStep: number;
  evalsWithoutImprovement: number;
  /** Bytes of metrics.jsonl written up to this state. */
  metricsBytes: number;
  stopReason?: string;
}

export interface SavedState {
  version: number;
  /** The resolved `train` section the run was started (or last resumed) with; absent in states of older versions. */
  train?: TrainConfig;
  model: LlamaConfig;
  draftToTarget: number[];
  targetVocabSize: number;
  unkDraftId: number;
  counters: TrainCounters;
  tensors: Array<{ name: string; shape: number[]; offset: number }>;
}

/**
 * Write the state atomically into `dir`. The tensors are read asynchronously, all requested at once
 * (one round trip on a GPU backend; webgpu under Node cannot read synchronously); the caller must not
 * change them until this resolves.
 */
export async function saveState(
  dir: string,
  header: Omit<SavedState, 'tensors' | 'version'>,
  tensors: Map<string, tf.Tensor>,
): Promise<void> {
  const index: SavedState['tensors'] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  const read = await Promise.all([...tensors.values()].map((tensor) => tensor.data() as Promise<Float32Array>));
  let i = 0;
  for (const [name, tensor] of tensors) {
    const values = read[i++];
    chunks.push(values);
    index.push({ name, shape: [...tensor.shape], offset });
    offset += values.length;
  }
  const all = new Float32Array(offset);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  const staged = new StagedDir(dir);
  try {
    const state: SavedState = { version: STATE_VERSION, ...header, tensors: index };
    writeRaw(join(staged.path, 'tensors.f32'), all);
    writeRaw(join(staged.path, 'state.json'), new TextEncoder().encode(JSON.stringify(state)));
    staged.commit();
  } catch (error) {
    staged.abort();
    throw error;
  }
}

/** The header of the state in `dir` (no tensors), or undefined when there is none. */
export function readStateHeader(dir: string): SavedState | undefined {
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) return undefined;
  return JSON.parse(readFileSync(statePath, 'utf8')) as SavedState;
}

/** Read a state folder: the header and the float32 values of each saved tensor by name. */
export function loadState(dir: string): { state: SavedState; values: Map<string, Float32Array> } {
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath))
    throw new InputError(`${dir}: no resume state (state.json missing)`, 'HINT: run without --resume to start afresh');
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as SavedState;
  if (state.version !== STATE_VERSION)
    throw new InputError(`${statePath}: resume state version ${state.version}, this fireopt reads ${STATE_VERSION}`);
  const bytes = readFileSync(join(dir, 'tensors.f32'));
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const values = new Map<string, Float32Array>();
  for (const entry of state.tensors) {
    const size = entry.shape.reduce((a, b) => a * b, 1);
    values.set(entry.name, all.subarray(entry.offset, entry.offset + size));
  }
  return { state, values };
}

function writeRaw(path: string, data: Uint8Array | Float32Array): void {
  const bytes = data instanceof Float32Array ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data;
  // Inside a staged folder: the folder's rename is the atomic step.
  writeFileSyncFsync(path, bytes);
}

function writeFileSyncFsync(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
