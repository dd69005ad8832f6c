/**
 * The `openai` target engine: any OpenAI-compatible server (vLLM, SGLang, llama.cpp server, TGI,
 * Fireworks, OpenAI, `fireopt serve`).
 *
 * - generate: `/v1/completions` (prompt as token ids, or as text) or `/v1/chat/completions`
 *   (messages), always with `logprobs` so each generated token comes back, as an exact id
 *   (`return_tokens_as_token_ids`) or as text mapped with the target tokenizer (alignment.ts).
 * - score: `/v1/completions` with the prompt and the completion as one token-id prompt and vLLM's
 *   `prompt_logprobs`, reading the completion positions.
 * - Stop token ids are sent (`stop_token_ids`) and also applied client-side, for servers that
 *   ignore the parameter.
 * - A fleet (`base_urls`): requests spread over the replicas (http.ts), after an identity check
 *   that every replica serves the same model (`open`).
 */
import { InputError, RunError, describeError } from '../../errors.js';
import { z } from 'zod';
import { openAiBaseUrls, type OpenAiTargetConfig } from '../config.js';
import type {
  Completion,
  PositionLogprobs,
  SamplingOptions,
  TargetEngine,
  TargetIdentity,
  TargetPrompt,
} from '../engine.js';
import { choiceTokenIds, tokenId, type TokenAligner } from './alignment.js';
import { FatalResponseError, HttpClient, sleep, type ReplicaChange, type ReplicaStats } from './http.js';
import { parseChatResponse, parseCompletionResponse, type ReturnedCompletion } from './responses.js';

export interface OpenAiEngineDeps {
  /** The key's value (the CLI reads the variable named by `api_key_env`). */
  apiKey?: string;
  /** Needed only when the server returns token text instead of ids. */
  tokenizer?: TokenAligner;
  onRetry?: (event: { path: string; attempt: number; reason: string }) => void;
  /** Told when a replica of a fleet is taken out of service or put back. */
  onReplicaChange?: (event: ReplicaChange) => void;
}

/** The identity check's prompt: short, and a greedy continuation any text model gives. */
const PROBE_TEXT = 'Once upon a time';
const PROBE_TOKENS = 8;
const modelListSchema = z.looseObject({ data: z.array(z.looseObject({ id: z.string() })) });

/** What a replica answered to the identity check. */
interface ProbeAnswer {
  models: string[];
  greedy: string;
}

export class OpenAiEngine implements TargetEngine {
  readonly identity: TargetIdentity;
  private readonly http: HttpClient;
  /** Ends the background identity checks of held-out replicas. */
  private readonly closing = new AbortController();
  /** Replicas whose background identity check is running. */
  private readonly readmitting = new Set<number>();

  /**
   * The engine, once every replica of a fleet has passed the identity check (a single server is
   * not checked: there is nothing to compare it with).
   */
  static async open(
    config: Omit<OpenAiTargetConfig, 'engine' | 'api_key_env'>,
    deps: OpenAiEngineDeps = {},
  ): Promise<OpenAiEngine> {
    const engine = new OpenAiEngine(config, deps);
    try {
      if (openAiBaseUrls(config).length > 1) await engine.checkReplicas();
      return engine;
    } catch (error) {
      await engine.close();
      throw error;
    }
  }

  constructor(
    private readonly config: Omit<OpenAiTargetConfig, 'engine' | 'api_key_env'>,
    private readonly deps: OpenAiEngineDeps = {},
  ) {
    const baseUrls = openAiBaseUrls(config);
    this.identity = { engine: 'openai', model: config.model, baseUrl: baseUrls[0] };
    if (baseUrls.length > 1) this.identity.baseUrls = baseUrls;
    if (deps.tokenizer) this.identity.vocabSize = deps.tokenizer.vocabSize;
    this.http = new HttpClient({
      baseUrls,
      apiKey: deps.apiKey,
      concurrency: config.concurrency,
      requestsPerSecond: config.requests_per_second,
      timeoutMs: config.timeout_ms,
      maxRetries: config.max_retries,
      retryMinDelayMs: config.retry_min_delay_ms,
      retryMaxDelayMs: config.retry_max_delay_ms,
      onRetry: deps.onRetry,
      onReplicaChange: deps.onReplicaChange,
    });
  }

  /** Requests answered, tokens and failures per replica so far (generate: completion tokens; score: scored ones). */
  replicaStats(): ReplicaStats[] {
    return this.http.replicaStats();
  }

  /**
   * Every replica must serve `model` (listed by `/models`) and give the same greedy tokens for a
   * probe prompt (ids where the server returns them, else the token strings or the text): a fleet
   * that mixes two models would silently poison the targets. A replica that cannot be reached within
   * the retry budget (restarting, not yet up) does not stop the run while another passed: it is held
   * out of routing and checked again in the background, and serves rows only once it passes.
   */
  async checkReplicas(): Promise<void> {
    const urls = this.http.baseUrls;
    const answers = await Promise.allSettled(urls.map((_, index) => this.probeReplica(index)));
    const unreachable = (answer: PromiseSettledResult<ProbeAnswer>) =>
      answer.status === 'rejected' && (answer.reason as { code?: unknown }).code === 'E_TARGET_UNAVAILABLE';
    const failed = answers.find((answer) => answer.status === 'rejected' && !unreachable(answer));
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const referenceIndex = answers.findIndex((answer) => answer.status === 'fulfilled');
    if (referenceIndex < 0) throw (answers[0] as PromiseRejectedResult).reason;
    const reference = {
      index: referenceIndex,
      answer: (answers[referenceIndex] as PromiseFulfilledResult<ProbeAnswer>).value,
    };
    answers.forEach((answer, index) => {
      if (answer.status === 'fulfilled') {
        const mismatch = this.mismatch(index, answer.value, reference);
        if (mismatch) throw mismatch;
        return;
      }
      const reason = this.http.lastErrorOf(index) ?? describeError(answer.reason);
      this.http.holdOut(index, `the identity check could not reach it (${reason}); held out until it passes`);
      void this.readmit(index, reference);
    });
    // A replica that goes out mid-run (restarted, redeployed) is checked again before it serves another row.
    this.http.onOutOfService = (index) => void this.readmit(index, reference);
  }

  /** Why `answer` (of replica `index`) shows another model than the reference replica's, if it does. */
  private mismatch(
    index: number,
    answer: ProbeAnswer,
    reference: { index: number; answer: ProbeAnswer },
  ): InputError | undefined {
    const urls = this.http.baseUrls;
    if (!answer.models.includes(this.config.model)) {
      return new InputError(
        `target.base_urls[${index}]: ${urls[index]} does not serve ${this.config.model} ` +
          `(its /models lists ${answer.models.join(', ') || 'nothing'})`,
        'every replica of a fleet must serve target.model under the same name',
        'E_TARGET_MISMATCH',
      );
    }
    if (answer.greedy !== reference.answer.greedy) {
      return new InputError(
        `target.base_urls[${index}]: ${urls[index]} answers the probe prompt ${JSON.stringify(PROBE_TEXT)} ` +
          `differently from ${urls[reference.index]} (greedy ${answer.greedy} vs ${reference.answer.greedy}): ` +
          'it serves another model or other weights',
        'every replica of a fleet must serve the same model, weights and tokenizer',
        'E_TARGET_MISMATCH',
      );
    }
    return undefined;
  }

  /**
   * Check a held-out replica again (each round its own retries, then retry_max_delay_ms) until it
   * answers: admitted when it matches the reference, kept out for the rest of the run when it does not.
   * The same for a replica that went out of service mid-run.
   */
  private async readmit(index: number, reference: { index: number; answer: ProbeAnswer }): Promise<void> {
    if (this.readmitting.has(index)) return;
    this.readmitting.add(index);
    try {
      while (!this.closing.signal.aborted) {
        await sleep(this.config.retry_max_delay_ms, this.closing.signal, true);
        if (this.closing.signal.aborted) return;
        let answer: ProbeAnswer;
        try {
          answer = await this.probeReplica(index);
        } catch {
          continue; // still unreachable (or closing): the next round decides
        }
        if (this.closing.signal.aborted) return;
        const mismatch = this.mismatch(index, answer, reference);
        if (!mismatch) return this.http.admit(index);
        this.deps.onReplicaChange?.({
          baseUrl: this.http.baseUrls[index],
          state: 'out',
          reason: `${mismatch.message}; kept out for the rest of the run`,
        });
        return;
      }
    } finally {
      this.readmitting.delete(index);
    }
  }

  private async probeReplica(index: number): Promise<ProbeAnswer> {
    const models = await this.http.getJsonFrom(index, 'models', (json) =>
      modelListSchema.parse(json).data.map((model) => model.id),
    );
    const chat = this.config.api === 'chat';
    const body: Record<string, unknown> = {
      model: this.config.model,
      max_tokens: PROBE_TOKENS,
      temperature: 0,
      seed: 0,
    };
    if (this.config.token_ids !== 'tokenizer') body.return_tokens_as_token_ids = true;
    if (chat) {
      body.messages = [{ role: 'user', content: PROBE_TEXT }];
      body.logprobs = true;
      body.top_logprobs = 1;
    } else {
      body.prompt = PROBE_TEXT;
      body.logprobs = 1;
    }
    const greedy = await this.http.postJsonTo(index, chat ? 'chat/completions' : 'completions', body, (json) => {
      const [choice] = (chat ? parseChatResponse(json) : parseCompletionResponse(json)).choices;
      // Ids where the server returns them, else the token strings, else the text.
      const tokens = choice.positions?.map((position) => position.id ?? position.text);
      return JSON.stringify(tokens ?? choice.text);
    });
    return { models, greedy };
  }

  async generate(prompt: TargetPrompt, sampling: SamplingOptions): Promise<Completion[]> {
    const chat = this.config.api === 'chat';
    const body: Record<string, unknown> = {
      model: this.config.model,
      max_tokens: sampling.maxTokens,
      temperature: sampling.temperature,
      top_p: sampling.topP,
      seed: sampling.seed,
      n: sampling.n,
    };
    if (sampling.topK > 0) body.top_k = sampling.topK; // vLLM / SGLang / llama.cpp extension
    if (this.config.token_ids !== 'tokenizer') body.return_tokens_as_token_ids = true;
    if (this.config.send_stop_token_ids && sampling.stopTokenIds.length > 0)
      body.stop_token_ids = [...sampling.stopTokenIds];
    if (chat) {
      if (!prompt.messages)
        throw new InputError(
          'target.api is chat, but this prompt has no messages',
          'use target.api: completions for prompt-only rows',
        );
      body.messages = prompt.messages;
      body.logprobs = true;
      body.top_logprobs = sampling.topLogprobs;
    } else {
      body.prompt = this.promptField(prompt);
      body.logprobs = sampling.topLogprobs; // 0 still returns every generated token
    }
    const path = chat ? 'chat/completions' : 'completions';
    // Conversion runs inside the validator, so a malformed body is retried like a failed request.
    const completions = await this.http.postJson(
      path,
      body,
      (json) => this.checked(chat ? parseChatResponse(json) : parseCompletionResponse(json), sampling.n),
      (result) => result.reduce((sum, completion) => sum + completion.tokenIds.length, 0),
    );
    return completions.map((completion) => OpenAiEngine.cutAtStopTokens(completion, sampling.stopTokenIds));
  }

  async score(
    prompt: TargetPrompt,
    completionTokenIds: readonly number[],
    options: { topLogprobs: number },
  ): Promise<PositionLogprobs[]> {
    if (this.config.api !== 'completions' || this.config.prompt_format !== 'token_ids') {
      throw new InputError(
        'scoring needs target.api: completions with target.prompt_format: ' +
          'token_ids (prompt_logprobs over a token-id prompt)',
      );
    }
    if (completionTokenIds.length === 0) return [];
    const promptIds = [...prompt.tokenIds, ...completionTokenIds];
    const body = {
      model: this.config.model,
      prompt: promptIds,
      max_tokens: 1,
      temperature: 0,
      prompt_logprobs: options.topLogprobs,
    };
    const tokensOf = (positions: PositionLogprobs[]) => positions.length;
    return this.http.postJson(
      'completions',
      body,
      (json) => {
        const parsed = parseCompletionResponse(json);
        const entries = parsed.choices[0].promptLogprobs;
        if (!entries) {
          throw new FatalResponseError(
            new RunError(
              'the server returned no prompt_logprobs: it cannot score completions',
              'scoring needs a server with vLLM-style prompt_logprobs (vLLM, fireopt serve)',
              'E_TARGET_UNSUPPORTED',
            ),
          );
        }
        if (entries.length !== promptIds.length)
          throw new Error(`prompt_logprobs has ${entries.length} entries for a ${promptIds.length}-token prompt`);
        return completionTokenIds.map((actual, j) => {
          const entry = entries[prompt.tokenIds.length + j];
          const own = entry?.get(actual);
          if (!entry || !own)
            throw new Error(
              `prompt_logprobs position ${prompt.tokenIds.length + j} lacks the prompt's own token ${actual}`,
            );
          const ranked = [...entry].filter(
            ([, value]) => value.rank !== undefined && value.rank <= options.topLogprobs,
          );
          ranked.sort((a, b) => (a[1].rank ?? 0) - (b[1].rank ?? 0) || b[1].logprob - a[1].logprob);
          return {
            tokenLogprob: own.logprob,
            topIds: ranked.map(([id]) => id),
            topLogprobs: ranked.map(([, value]) => value.logprob),
          };
        });
      },
      tokensOf,
    );
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.http.close();
  }

  private promptField(prompt: TargetPrompt): number[] | string {
    if (this.config.prompt_format === 'token_ids') return [...prompt.tokenIds];
    if (prompt.text === undefined) throw new InputError('target.prompt_format is text, but this prompt has no text');
    return prompt.text;
  }

  /** Normalise a parsed response into completions, ordered by choice index. */
  private checked(response: ReturnedCompletion, n: number): Completion[] {
    if (response.choices.length !== n) throw new Error(`expected ${n} choices, got ${response.choices.length}`);
    const choices = [...response.choices].sort((a, b) => a.index - b.index);
    if (choices.some((choice, i) => choice.index !== i)) throw new Error('choice indexes are not 0..n-1');
    const mode = this.config.token_ids;
    const tokenizer = this.deps.tokenizer;
    let total = 0;
    const completions = choices.map((choice): Completion => {
      if (!choice.positions)
        throw new Error(`choice ${choice.index} has no logprobs: the server ignored the logprobs parameter`);
      const tokenIds = wrap(() => choiceTokenIds(choice, mode, tokenizer));
      total += tokenIds.length;
      const wantLogprobs = choice.positions.length > 0 && choice.positions.some((p) => p.top.length > 0);
      let logprobs: PositionLogprobs[] | undefined;
      if (wantLogprobs) {
        logprobs = choice.positions.map((position, i) => {
          const topIds = wrap(() =>
            position.top.map((alternative, k) =>
              tokenId(alternative, mode, tokenizer, `choice ${choice.index}, token ${i}, alternative ${k}`),
            ),
          );
          return {
            tokenLogprob: position.logprob,
            topIds,
            topLogprobs: position.top.map((alternative) => alternative.logprob),
          };
        });
      }
      const completion: Completion = { tokenIds, finishReason: finishReason(choice.finishReason) };
      if (logprobs) completion.logprobs = logprobs;
      return completion;
    });
    if (response.completionTokens !== undefined && response.completionTokens !== total) {
      throw new Error(`usage says ${response.completionTokens} completion tokens, the logprobs hold ${total}`);
    }
    return completions;
  }

  /** Cut a completion after the first stop token, for servers that ignore `stop_token_ids`. */
  static cutAtStopTokens(completion: Completion, stopTokenIds: readonly number[]): Completion {
    const at = completion.tokenIds.findIndex((id) => stopTokenIds.includes(id));
    if (at < 0 || at === completion.tokenIds.length - 1)
      return at < 0 ? completion : { ...completion, finishReason: 'stop' };
    const cut: Completion = { tokenIds: completion.tokenIds.slice(0, at + 1), finishReason: 'stop' };
    if (completion.logprobs) cut.logprobs = completion.logprobs.slice(0, at + 1);
    return cut;
  }
}

/** Alignment and tokenizer errors are final: retrying the request would not change them. */
function wrap<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof RunError || error instanceof InputError) throw new FatalResponseError(error);
    throw error;
  }
}

function finishReason(reason: string | null): Completion['finishReason'] {
  if (reason === 'length') return 'length';
  if (reason === 'stop' || reason === 'eos' || reason === 'eos_token' || reason === 'stop_sequence') return 'stop';
  throw new Error(`unexpected finish_reason ${JSON.stringify(reason)}`);
}
