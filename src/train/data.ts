/**
 * Training data from `targets.arrow`, streamed: rows pass through a seeded shuffle buffer, are
 * concatenated (prompt then completion, row after row) and cut into packed windows of seq_len + 1
 * tokens; only completion tokens whose loss_mask is 1 carry loss. Memory is bounded by the shuffle
 * buffer and one batch, not the dataset.
 *
 * The order is a pure function of (seed, epoch), so a data position is just (epoch, micro-batch
 * index): resuming replays the epoch's stream without computing anything and skips to it.
 */
import { readTargetRows, type TargetRow } from '../formats/targets-schema.js';
import { SeededRandom } from '../model/index.js';
import { inputDraftId, type DraftVocab } from './vocab.js';

/** One packed micro-batch, row-major [rows, seqLen]. Ids are target ids except `inputs`. */
export interface PackedBatch {
  rows: number;
  seqLen: number;
  /** Draft ids fed to the model: [rows · seqLen]. */
  inputs: Int32Array;
  /** Target id of the next token at each position (−1 = padding): [rows · seqLen]. */
  targets: Int32Array;
  /** 1 where the next token is a trained completion token: [rows · seqLen]. */
  weights: Float32Array;
  /** Alternatives per position (0 = none in this data). */
  topK: number;
  /** The target's top-k ids for the next token (−1 = none): [rows · seqLen · topK]. */
  topIds: Int32Array;
  /** Their log-probabilities (−Infinity = none): [rows · seqLen · topK]. */
  topLogprobs: Float32Array;
}

export interface DataPosition {
  epoch: number;
  /** Micro-batches already consumed in this epoch. */
  batch: number;
}

export interface StreamOptions {
  file: string;
  vocab: DraftVocab;
  seqLen: number;
  batchSize: number;
  shuffleRows: number;
  seed: number;
  topK: number;
}

/**
 * Rows of `file` in the seeded order of `epoch`: its record batches (256 rows each, as distill writes
 * them) in a shuffled order, then through a shuffle buffer — the two levels of a streaming shuffle, so
 * traces that arrive sorted (by day, by source) are mixed across the whole file with memory bounded by
 * the buffer.
 */
async function* shuffledRows(
  file: string,
  shuffleRows: number,
  seed: number,
  epoch: number,
): AsyncGenerator<TargetRow> {
  const random = new SeededRandom((seed * 0x9e3779b1 + epoch * 7919 + 1) >>> 0);
  const batchOrder = (count: number): number[] => {
    const order = Array.from({ length: count }, (_, i) => i);
    for (let i = count - 1; i > 0; i--) {
      const j = random.nextUint32() % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  };
  const buffer: TargetRow[] = [];
  for await (const row of readTargetRows(file, batchOrder)) {
    if (buffer.length < shuffleRows) {
      buffer.push(row);
      continue;
    }
    const j = random.nextUint32() % buffer.length;
    yield buffer[j];
    buffer[j] = row;
  }
  while (buffer.length) {
    const j = random.nextUint32() % buffer.length;
    yield buffer[j];
    buffer[j] = buffer[buffer.length - 1];
    buffer.pop();
  }
}

/** Token stream entries waiting to be cut into windows. */
class Pending {
  ids: number[] = [];
  weights: number[] = [];
  topIds: number[] = [];
  topLogprobs: number[] = [];
  constructor(readonly topK: number) {}

  push(row: TargetRow): void {
    const K = this.topK;
    for (const id of row.prompt_token_ids) {
      this.ids.push(id);
      this.weights.push(0);
      for (let j = 0; j < K; j++) {
        this.topIds.push(-1);
        this.topLogprobs.push(-Infinity);
      }
    }
    const n = row.completion_token_ids.length;
    const rowK = row.top_ids && row.top_logprobs ? row.top_k : 0;
    for (let i = 0; i < n; i++) {
      this.ids.push(row.completion_token_ids[i]);
      this.weights.push(row.loss_mask[i] ? 1 : 0);
      for (let j = 0; j < K; j++) {
        const has = j < rowK;
        this.topIds.push(has ? (row.top_ids as Int32Array)[i * rowK + j] : -1);
        this.topLogprobs.push(has ? (row.top_logprobs as Float32Array)[i * rowK + j] : -Infinity);
      }
    }
  }

  /** Remove the first `count` entries. */
  drop(count: number): void {
    this.ids.splice(0, count);
    this.weights.splice(0, count);
    this.topIds.splice(0, count * this.topK);
    this.topLogprobs.splice(0, count * this.topK);
  }
}

class BatchBuilder {
  private windows = 0;
  private batch: PackedBatch;
  constructor(private readonly options: StreamOptions) {
    this.batch = emptyBatch(options.batchSize, options.seqLen, options.topK);
  }

  get full(): boolean {
    return this.windows === this.options.batchSize;
  }
  get empty(): boolean {
    return this.windows === 0;
  }

  /** Add the window pending[0 .. length] (length ≤ seqLen + 1 tokens; the rest is padding). */
  addWindow(pending: Pending, length: number): void {
    const { seqLen, vocab, topK: K } = this.options;
    const b = this.batch;
    const base = this.windows * seqLen;
    for (let t = 0; t < seqLen; t++) {
      const p = base + t;
      const real = t + 1 < length;
      b.inputs[p] = t < length ? inputDraftId(vocab, pending.ids[t]) : vocab.unkDraftId;
      b.targets[p] = real ? pending.ids[t + 1] : -1;
      b.weights[p] = real ? pending.weights[t + 1] : 0;
      for (let j = 0; j < K; j++) {
        b.topIds[p * K + j] = real ? pending.topIds[(t + 1) * K + j] : -1;
        b.topLogprobs[p * K + j] = real ? pending.topLogprobs[(t + 1) * K + j] : -Infinity;
      }
    }
    this.windows++;
  }

  take(): PackedBatch {
    const { batchSize, seqLen, topK } = this.options;
    const rows = this.windows;
    const b = this.batch;
    const result: PackedBatch =
      rows === batchSize
        ? b
        : {
            rows,
            seqLen,
            topK,
            inputs: b.inputs.slice(0, rows * seqLen),
            targets: b.targets.slice(0, rows * seqLen),
            weights: b.weights.slice(0, rows * seqLen),
            topIds: b.topIds.slice(0, rows * seqLen * topK),
            topLogprobs: b.topLogprobs.slice(0, rows * seqLen * topK),
          };
    result.rows = rows;
    this.batch = emptyBatch(batchSize, seqLen, topK);
    this.windows = 0;
    return result;
  }
}

function emptyBatch(rows: number, seqLen: number, topK: number): PackedBatch {
  return {
    rows,
    seqLen,
    topK,
    inputs: new Int32Array(rows * seqLen),
    targets: new Int32Array(rows * seqLen).fill(-1),
    weights: new Float32Array(rows * seqLen),
    topIds: new Int32Array(rows * seqLen * topK).fill(-1),
    topLogprobs: new Float32Array(rows * seqLen * topK).fill(-Infinity),
  };
}

/**
 * The packed micro-batches of one epoch, in order. Windows overlap by one token (the last target
 * of a window is the first input of the next); the epoch's last window is padded with zero weights.
 */
export async function* epochBatches(options: StreamOptions, epoch: number): AsyncGenerator<PackedBatch> {
  const { seqLen } = options;
  const pending = new Pending(options.topK);
  const builder = new BatchBuilder(options);
  for await (const row of shuffledRows(options.file, options.shuffleRows, options.seed, epoch)) {
    pending.push(row);
    while (pending.ids.length >= seqLen + 1) {
      builder.addWindow(pending, seqLen + 1);
      pending.drop(seqLen);
      if (builder.full) yield builder.take();
    }
  }
  if (pending.ids.length > 1) builder.addWindow(pending, pending.ids.length);
  if (!builder.empty) yield builder.take();
}

/**
 * Micro-batches from `start` on, epoch after epoch, each with the position after it. Skipped
 * batches of a resumed epoch are packed but not computed on.
 */
export async function* trainingBatches(
  options: StreamOptions,
  start: DataPosition,
): AsyncGenerator<{ batch: PackedBatch; next: DataPosition }> {
  for (let epoch = start.epoch; ; epoch++) {
    let index = 0;
    let any = false;
    for await (const batch of epochBatches(options, epoch)) {
      any = true;
      index++;
      if (epoch === start.epoch && index <= start.batch) continue;
      yield { batch, next: { epoch, batch: index } };
    }
    if (!any) throw new Error(`${options.file}: no training tokens`);
  }
}
