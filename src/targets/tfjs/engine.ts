/**
 * The `tfjs` target engine: a local llama2.c, Hugging Face safetensors or GGUF (F32/F16/BF16)
 * model run by fireopt's own model core (`src/model/`) on the backend `initBackend` chooses.
 *
 * It needs no native library, so it is the target for small models where llama.cpp is not
 * installed, and a second, independent implementation to check llama.cpp against.
 *
 * - Log-probabilities come straight from the logits of each position (log-softmax at temperature
 *   1), whatever sampling chose the token: generation reads them as it decodes, for greedy and
 *   sampled completions alike.
 * - One key/value-cached session is kept between requests; a request first cuts it back to the
 *   longest common prefix with its prompt, so a shared prefix (and the n samples of one prompt)
 *   is evaluated once. tfjs runs one request at a time, so requests are queued.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import PQueue from 'p-queue';
import { initBackend, type BackendRequest } from '../../backend/index.js';
import { InputError, RunError } from '../../errors.js';
import { loadModel } from '../../formats/load-model.js';
import { HF_FILES } from '../../formats/safetensors.js';
import { DecodeSession, LlamaModel, SeededRandom, sampleToken } from '../../model/index.js';
import { endOfGenerationIds } from '../../tokenizer/end-of-generation.js';
import type { Vocabulary } from '../../tokenizer/vocabulary.js';
import { sha256File } from '../../util/hash.js';
import {
  checkedPromptIds,
  checkedTokenIds,
  checkSampling,
  checkScoreFits,
  sampleCompletions,
  type LocalLimits,
} from '../engine.js';
import type {
  Completion,
  PositionLogprobs,
  SamplingOptions,
  TargetEngine,
  TargetIdentity,
  TargetPrompt,
} from '../engine.js';
import { positionLogprobs } from './distribution.js';

export interface TfjsEngineOptions {
  /** llama2.c checkpoint, safetensors file or Hugging Face folder, or GGUF. */
  model: string;
  /** Tokenizer file (llama2.c tokenizer.bin or a GGUF); default: the checkpoint's own or a tokenizer.bin beside it. */
  tokenizer?: string;
  backend: BackendRequest;
  /** Told which backend was chosen. */
  log?: (line: string) => void;
}

/** Positions teacher-forced per `feed`: bounds the [positions × V] logits held at once. */
const SCORE_CHUNK = 64;

export class TfjsEngine implements TargetEngine {
  readonly identity: TargetIdentity;
  /** The model's tokenizer vocabulary, when the checkpoint has one or a tokenizer file was given. */
  readonly vocabulary: Vocabulary | undefined;
  /** Ids that end a completion whatever the request says (EOS and end-of-turn markers). */
  readonly endOfGenerationIds: ReadonlySet<number>;
  /** One request at a time: they share the model and its cached session. */
  private readonly queue = new PQueue({ concurrency: 1 });
  private readonly session: DecodeSession;
  /** The tokens whose keys and values `session` holds. */
  private cachedTokens: number[] = [];
  private closed = false;

  private constructor(
    /** The loaded model (benchmarks run the model core's own loop on it). */
    readonly model: LlamaModel,
    identity: TargetIdentity,
    vocabulary: Vocabulary | undefined,
  ) {
    this.identity = identity;
    this.vocabulary = vocabulary;
    this.session = new DecodeSession(model);
    // The same set llama.cpp stops at, so both engines end a completion at the same token.
    this.endOfGenerationIds = vocabulary ? endOfGenerationIds(vocabulary) : new Set();
  }

  /** Choose the backend, load the checkpoint and build the model. */
  static async open(options: TfjsEngineOptions): Promise<TfjsEngine> {
    if (!existsSync(options.model))
      throw new InputError(
        `${options.model}: model file not found`,
        'target.model must name a llama2.c, safetensors or GGUF checkpoint',
      );
    await initBackend(options.backend, options.log);
    const loaded = loadModel(options.model, { tokenizer: options.tokenizer });
    const model = LlamaModel.fromWeights(loaded.weights, { trainable: false });
    return new TfjsEngine(
      model,
      {
        engine: 'tfjs',
        model: basename(options.model),
        modelSha256: await sha256File(weightsFileOf(options.model)),
        vocabSize: loaded.weights.config.vocabSize,
      },
      loaded.vocabulary,
    );
  }

  /** Longest prompt + completion, in tokens: the length the model was trained for. */
  get contextSize(): number {
    return this.model.config.maxSeqLen;
  }

  private get limits(): LocalLimits {
    return { vocabSize: this.model.config.vocabSize, contextSize: this.contextSize, contextOwner: "the model's" };
  }

  async generate(prompt: TargetPrompt, sampling: SamplingOptions): Promise<Completion[]> {
    const promptIds = checkedPromptIds(prompt.tokenIds, this.limits);
    checkSampling(sampling);
    const budget = Math.min(sampling.maxTokens, this.contextSize - promptIds.length);
    return this.exclusive(async () => {
      return sampleCompletions(sampling, (seed) => this.generateOne(promptIds, sampling, seed, budget));
    });
  }

  async score(
    prompt: TargetPrompt,
    completionTokenIds: readonly number[],
    options: { topLogprobs: number },
  ): Promise<PositionLogprobs[]> {
    const promptIds = checkedPromptIds(prompt.tokenIds, this.limits);
    const completion = checkedTokenIds(completionTokenIds, 'completion', this.limits);
    if (completion.length === 0) return [];
    checkScoreFits(promptIds.length, completion.length, this.limits);
    return this.exclusive(async () => {
      const pending = this.align(promptIds);
      // The distribution for completion[j] comes out of the token before it: the last prompt
      // token for j = 0, completion[j - 1] after that.
      const inputs = [...pending, ...completion.slice(0, -1)];
      const firstScored = pending.length - 1;
      const vocabSize = this.model.config.vocabSize;
      const result: PositionLogprobs[] = [];
      for (let start = 0; start < inputs.length; start += SCORE_CHUNK) {
        const chunk = inputs.slice(start, start + SCORE_CHUNK);
        const logits = await this.feed(chunk); // [chunk.length × V]
        for (let offset = 0; offset < chunk.length; offset++) {
          const position = start + offset - firstScored;
          if (position >= 0)
            result.push(
              positionLogprobs(logits, offset * vocabSize, vocabSize, completion[position], options.topLogprobs),
            );
        }
        await yieldToEventLoop();
      }
      return result;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.clear();
    await this.queue.onIdle();
    this.session.dispose();
    this.model.dispose();
  }

  private async generateOne(
    promptIds: number[],
    sampling: SamplingOptions,
    seed: number,
    budget: number,
  ): Promise<Completion> {
    const vocabSize = this.model.config.vocabSize;
    const random = new SeededRandom(seed);
    const options = { temperature: sampling.temperature, topK: sampling.topK, topP: sampling.topP };
    const stopIds = new Set([...this.endOfGenerationIds, ...sampling.stopTokenIds]);
    const wantLogprobs = sampling.topLogprobs > 0;
    const tokenIds: number[] = [];
    const logprobs: PositionLogprobs[] = [];
    let finishReason: Completion['finishReason'] = 'length';
    if (budget > 0) {
      const pending = this.align(promptIds);
      let logits = await this.feed(pending);
      let offset = (pending.length - 1) * vocabSize; // the last row predicts the first new token
      for (;;) {
        const token = sampleToken(logits, options, random, offset, vocabSize);
        tokenIds.push(token);
        if (wantLogprobs) logprobs.push(positionLogprobs(logits, offset, vocabSize, token, sampling.topLogprobs));
        if (stopIds.has(token)) {
          finishReason = 'stop';
          break;
        }
        if (tokenIds.length >= budget) break;
        // Let timers, signals and I/O run between tokens: on CPU backends tfjs computes synchronously,
        // and a read that resolves at once yields only to microtasks.
        await yieldToEventLoop();
        logits = await this.feed([token]);
        offset = 0;
      }
    }
    return wantLogprobs ? { tokenIds, logprobs, finishReason } : { tokenIds, finishReason };
  }

  /**
   * Cut the cache back to its longest common prefix with `promptIds` (keeping at most all but the
   * last prompt token, whose logits give the first completion position) and return the tokens
   * still to feed.
   */
  private align(promptIds: readonly number[]): number[] {
    const limit = Math.min(this.cachedTokens.length, promptIds.length - 1);
    let common = 0;
    while (common < limit && this.cachedTokens[common] === promptIds[common]) common++;
    this.session.truncate(common);
    this.cachedTokens.length = common;
    return promptIds.slice(common);
  }

  /** Run tokens through the cached session; logits [tokens.length × V]. */
  private async feed(tokens: number[]): Promise<Float32Array> {
    const logits = await this.session.feed(tokens);
    this.cachedTokens.push(...tokens);
    return logits;
  }

  private async exclusive<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) throw new RunError('the tfjs target engine is closed');
    return (await this.queue.add(run)) as T;
  }
}

/**
 * The file whose hash identifies the model: the checkpoint file, or a Hugging Face folder's weights
 * (or shard index).
 */
function weightsFileOf(path: string): string {
  if (!statSync(path).isDirectory()) return path;
  const single = join(path, HF_FILES.weights);
  return existsSync(single) ? single : join(path, HF_FILES.index);
}
