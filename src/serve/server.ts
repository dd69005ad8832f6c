/**
 * `fireopt serve`: a small OpenAI-compatible HTTP server (node:http) over the llama-cpp target
 * engine — a local target for `fireopt distill` through the `openai` engine, and the real server
 * the openai engine is tested against.
 *
 * Endpoints: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions.
 * Besides OpenAI's parameters it accepts vLLM's extensions that make token ids exact:
 * `return_tokens_as_token_ids` (tokens written `token_id:123`), `prompt_logprobs` (teacher-forced
 * log-probabilities of the prompt), `stop_token_ids` and `top_k`. Not supported: `stream`, `echo`,
 * `best_of`, penalties and `logit_bias` (rejected when set to anything but their neutral value).
 * Stop *strings* are applied after generation: the completion is cut after the first token whose
 * text completes a stop string, and the text before the stop string is returned.
 *
 * How a completion ends, as vLLM reports it: an end-of-generation token (EOS/EOT) is the last token
 * of the completion (in `logprobs` and `usage`, not in the text), `finish_reason: "stop"`,
 * `stop_reason: null`; a `stop_token_ids` token likewise, with `stop_reason` its id; a stop string
 * gives `stop_reason` the string. A request whose prompt plus `max_tokens` exceeds the context is
 * refused (400), never clipped.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { FireoptError, describeError } from '../errors.js';
import type { ChatMessage, Completion, PositionLogprobs, SamplingOptions } from '../targets/engine.js';
import type { LlamaCppEngine } from '../targets/llama-cpp/engine.js';
import type { ChatRenderer } from './chat.js';
import { tokenText } from './token-text.js';

export interface ServeOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** The model name `/v1/models` lists and responses carry. */
  modelName: string;
  /** Largest request body accepted. */
  maxBodyBytes?: number;
}

export interface ServedModel {
  engine: LlamaCppEngine;
  /** Bytes of a token's text (for `logprobs` token strings). */
  tokenBytes: (tokenId: number) => Uint8Array;
  chat: ChatRenderer;
}

export interface RunningServer {
  /** `http://host:port` (no trailing slash; the API lives under `/v1`). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** vLLM and OpenAI write -inf log-probabilities as a large negative number, since JSON has no -inf. */
const MIN_LOGPROB = -9999;

const stopSchema = z.union([z.string(), z.array(z.string()).max(16)]).nullish();
const unsupported = {
  stream: z.literal(false).nullish(),
  echo: z.literal(false).nullish(),
  best_of: z.literal(1).nullish(),
  presence_penalty: z.literal(0).nullish(),
  frequency_penalty: z.literal(0).nullish(),
  logit_bias: z.strictObject({}).nullish(),
};
const samplingFields = {
  model: z.string().optional(),
  temperature: z.number().min(0).max(2).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  /** vLLM: -1 (or 0) = off. */
  top_k: z.number().int().min(-1).default(-1),
  seed: z.number().int().nullish(),
  stop: stopSchema,
  stop_token_ids: z.array(z.number().int().min(0)).nullish(),
  n: z.number().int().min(1).max(64).default(1),
  return_tokens_as_token_ids: z.boolean().default(false),
  ...unsupported,
};

const tokenIdsSchema = z.array(z.number().int().min(0)).min(1);
const completionRequestSchema = z.looseObject({
  ...samplingFields,
  prompt: z.union([z.string(), tokenIdsSchema, z.array(z.string()).min(1), z.array(tokenIdsSchema).min(1)]),
  max_tokens: z.number().int().min(1).default(16),
  logprobs: z.number().int().min(0).nullish(),
  prompt_logprobs: z.number().int().min(0).nullish(),
});

const contentSchema = z.union([z.string(), z.array(z.looseObject({ type: z.literal('text'), text: z.string() }))]);
const chatRequestSchema = z.looseObject({
  ...samplingFields,
  messages: z
    .array(
      z.looseObject({ role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']), content: contentSchema }),
    )
    .min(1),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  logprobs: z.boolean().default(false),
  top_logprobs: z.number().int().min(0).nullish(),
});

type CompletionRequest = z.infer<typeof completionRequestSchema>;
type ChatRequest = z.infer<typeof chatRequestSchema>;

/** An error answered as OpenAI does: `{error: {message, type, code}}` with an HTTP status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    /** The request field at fault, when one is. */
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** A completion as answered: its text and vLLM's `stop_reason` (a stop token id, a stop string, or null). */
type FinishedCompletion = Completion & { text: string; stopReason: number | string | null };

/** Start serving `served` on host:port; resolves once listening. */
export async function startServer(served: ServedModel, options: ServeOptions): Promise<RunningServer> {
  const api = new OpenAiApi(served, options);
  const server = createServer((request, response) => void api.handle(request, response));
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { url: `http://${host}:${port}`, port, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}

class OpenAiApi {
  private readonly created = Math.floor(Date.now() / 1000);
  private requestCount = 0;

  constructor(
    private readonly served: ServedModel,
    private readonly options: ServeOptions,
  ) {}

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    response.on('error', () => {}); // the client went away; nothing left to tell it
    try {
      const path = (request.url ?? '/').split('?')[0];
      const route = `${request.method ?? 'GET'} ${path}`;
      let body: unknown;
      switch (route) {
        case 'GET /health':
          body = { status: 'ok' };
          break;
        case 'GET /v1/models':
          body = {
            object: 'list',
            data: [{ id: this.options.modelName, object: 'model', created: this.created, owned_by: 'fireopt' }],
          };
          break;
        case 'POST /v1/completions':
          body = await this.completions(
            parse(completionRequestSchema, await readJson(request, this.options.maxBodyBytes)),
          );
          break;
        case 'POST /v1/chat/completions':
          body = await this.chatCompletions(
            parse(chatRequestSchema, await readJson(request, this.options.maxBodyBytes)),
          );
          break;
        default:
          throw new HttpError(404, `no route ${route}`, 'not_found_error');
      }
      send(response, 200, body);
    } catch (error) {
      if (error instanceof HttpError) send(response, error.status, errorBody(error.message, error.type, error.param));
      else if (error instanceof FireoptError && error.exitCode === 2)
        send(response, 400, errorBody(error.message, 'invalid_request_error'));
      else send(response, 500, errorBody(describeError(error), 'server_error'));
    }
  }

  private async completions(body: CompletionRequest): Promise<unknown> {
    const engine = this.served.engine;
    const prompts: number[][] = (
      Array.isArray(body.prompt) &&
      (body.prompt.length === 0 || Array.isArray(body.prompt[0]) || typeof body.prompt[0] === 'string')
        ? (body.prompt as Array<string | number[]>)
        : [body.prompt as string | number[]]
    ).map((prompt) => (typeof prompt === 'string' ? this.tokenizePromptText(prompt) : prompt));
    for (const promptIds of prompts) this.checkFitsContext(promptIds.length, body.max_tokens, 'prompt');
    const sampling = this.sampling(body, body.max_tokens, body.logprobs ?? 0);
    const asIds = body.return_tokens_as_token_ids;
    const perPrompt = await Promise.all(
      prompts.map(async (promptIds) => {
        const completions = await engine.generate({ tokenIds: promptIds }, sampling);
        const promptLogprobs =
          body.prompt_logprobs == null ? undefined : await this.promptLogprobs(promptIds, body.prompt_logprobs, asIds);
        return { promptIds, completions, promptLogprobs };
      }),
    );
    let completionTokens = 0;
    const choices = perPrompt.flatMap(({ promptIds, completions, promptLogprobs }, promptIndex) =>
      completions.map((completion, sample) => {
        const { tokenIds, text, finishReason, stopReason, logprobs } = this.finish(promptIds, completion, body.stop);
        completionTokens += tokenIds.length;
        const choice: Record<string, unknown> = {
          index: promptIndex * sampling.n + sample,
          text,
          logprobs: body.logprobs == null ? null : this.completionLogprobs(promptIds, tokenIds, logprobs, asIds),
          finish_reason: finishReason,
          stop_reason: stopReason,
        };
        if (promptLogprobs) choice.prompt_logprobs = promptLogprobs;
        return choice;
      }),
    );
    const promptTokens = prompts.reduce((sum, p) => sum + p.length, 0);
    return {
      id: this.nextId('cmpl'),
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: this.options.modelName,
      choices,
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
    };
  }

  private async chatCompletions(body: ChatRequest): Promise<unknown> {
    const messages: ChatMessage[] = body.messages.map((message) => ({
      role: message.role === 'developer' ? 'system' : message.role,
      content:
        typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join(''),
    }));
    const promptIds = this.served.engine.tokenize(this.served.chat.render(messages), true);
    const topLogprobs = body.logprobs ? (body.top_logprobs ?? 0) : 0;
    const requested = body.max_completion_tokens ?? body.max_tokens;
    if (requested != null) this.checkFitsContext(promptIds.length, requested, 'messages');
    // As vLLM: without a limit, the completion may fill the rest of the context.
    const sampling = this.sampling(body, requested ?? this.served.engine.contextSize - promptIds.length, topLogprobs);
    // top_logprobs 0 still returns the chosen token's logprob, so ask the engine for one alternative.
    if (body.logprobs && sampling.topLogprobs === 0) sampling.topLogprobs = 1;
    const completions = await this.served.engine.generate({ tokenIds: promptIds }, sampling);
    let completionTokens = 0;
    const choices = completions.map((completion, index) => {
      const { tokenIds, text, finishReason, stopReason, logprobs } = this.finish(promptIds, completion, body.stop);
      completionTokens += tokenIds.length;
      return {
        index,
        message: { role: 'assistant', content: text },
        logprobs: body.logprobs
          ? { content: this.chatLogprobs(tokenIds, logprobs, topLogprobs, body.return_tokens_as_token_ids) }
          : null,
        finish_reason: finishReason,
        stop_reason: stopReason,
      };
    });
    return {
      id: this.nextId('chatcmpl'),
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: this.options.modelName,
      choices,
      usage: {
        prompt_tokens: promptIds.length,
        completion_tokens: completionTokens,
        total_tokens: promptIds.length + completionTokens,
      },
    };
  }

  /** As vLLM: a prompt plus `max_tokens` longer than the context is a bad request, not a silent clip. */
  private checkFitsContext(promptTokens: number, maxTokens: number, promptPart: 'prompt' | 'messages'): void {
    const contextSize = this.served.engine.contextSize;
    if (promptTokens + maxTokens <= contextSize) return;
    throw new HttpError(
      400,
      `This model's maximum context length is ${contextSize} tokens. ` +
        `However, you requested ${promptTokens + maxTokens} tokens ` +
        `(${promptTokens} in the ${promptPart}, ${maxTokens} in the completion). ` +
        `Please reduce the length of the ${promptPart} or completion.`,
      'invalid_request_error',
      'max_tokens',
    );
  }

  private sampling(body: CompletionRequest | ChatRequest, maxTokens: number, topLogprobs: number): SamplingOptions {
    const vocabularySize = this.served.engine.vocabularySize;
    if (topLogprobs > vocabularySize)
      throw new HttpError(400, `logprobs ${topLogprobs} is more than the ${vocabularySize}-token vocabulary`);
    for (const id of body.stop_token_ids ?? []) {
      if (id >= vocabularySize)
        throw new HttpError(400, `stop_token_ids: ${id} is outside the ${vocabularySize}-token vocabulary`);
    }
    return {
      maxTokens,
      temperature: body.temperature,
      topP: body.top_p,
      topK: Math.max(0, body.top_k),
      seed: body.seed ?? Math.floor(Math.random() * 2 ** 31),
      stopTokenIds: body.stop_token_ids ?? [],
      n: body.n,
      topLogprobs,
    };
  }

  private tokenizePromptText(text: string): number[] {
    const ids = this.served.engine.tokenize(text, false);
    const bos = this.served.engine.model.tokens.bos;
    // As llama.cpp's server: a text prompt starts with BOS when the model adds one.
    return bos !== null &&
      this.served.engine.model.fileInfo.metadata.tokenizer.ggml.add_bos_token !== false &&
      ids[0] !== bos
      ? [bos, ...ids]
      : ids;
  }

  /** Apply stop strings and produce the completion's text and vLLM's `stop_reason`. */
  private finish(
    promptIds: number[],
    completion: Completion,
    stop: string | string[] | null | undefined,
  ): FinishedCompletion {
    const engine = this.served.engine;
    const decode = (ids: readonly number[]) => engine.detokenize(ids, promptIds);
    const stops = (typeof stop === 'string' ? [stop] : (stop ?? [])).filter((s) => s.length > 0);
    const text = decode(completion.tokenIds);
    let stopAt = -1;
    for (const s of stops) {
      const at = text.indexOf(s);
      if (at >= 0 && (stopAt < 0 || at < stopAt)) stopAt = at;
    }
    if (stopAt < 0) return { ...completion, text, stopReason: this.stopTokenReason(completion) };
    const stopString = stops.find((s) => text.indexOf(s) === stopAt) ?? '';
    // Fewest tokens whose text holds the whole stop string (prefix text grows with the prefix).
    let low = 1;
    let high = completion.tokenIds.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (decode(completion.tokenIds.slice(0, mid)).length >= stopAt + stopString.length) high = mid;
      else low = mid + 1;
    }
    const cut: FinishedCompletion = {
      tokenIds: completion.tokenIds.slice(0, low),
      finishReason: 'stop',
      text: text.slice(0, stopAt),
      stopReason: stopString,
    };
    if (completion.logprobs) cut.logprobs = completion.logprobs.slice(0, low);
    return cut;
  }

  /** vLLM's `stop_reason` of a completion the engine ended: null for EOS/EOT or length, else the stop token id. */
  private stopTokenReason(completion: Completion): number | null {
    const last = completion.tokenIds.at(-1);
    if (completion.finishReason !== 'stop' || last === undefined) return null;
    return this.served.engine.isEndOfGeneration(last) ? null : last;
  }

  private tokenString(tokenId: number, asIds: boolean): string {
    return asIds ? `token_id:${tokenId}` : tokenText(this.served.tokenBytes(tokenId));
  }

  /** Legacy completions `logprobs`: parallel arrays, top alternatives as {token: logprob}. */
  private completionLogprobs(
    promptIds: number[],
    tokenIds: number[],
    logprobs: PositionLogprobs[] | undefined,
    asIds: boolean,
  ): unknown {
    const tokens: string[] = [];
    const tokenLogprobs: number[] = [];
    const top: Array<Record<string, number>> = [];
    const textOffset: number[] = [];
    let offset = 0;
    tokenIds.forEach((tokenId, i) => {
      tokens.push(this.tokenString(tokenId, asIds));
      tokenLogprobs.push(finite(logprobs?.[i]?.tokenLogprob));
      const alternatives: Record<string, number> = {};
      const position = logprobs?.[i];
      position?.topIds.forEach((id, k) => {
        const key = this.tokenString(id, asIds);
        if (!(key in alternatives)) alternatives[key] = finite(position.topLogprobs[k]);
      });
      top.push(alternatives);
      textOffset.push(offset);
      offset = this.served.engine.detokenize(tokenIds.slice(0, i + 1), promptIds).length;
    });
    return { tokens, token_logprobs: tokenLogprobs, top_logprobs: top, text_offset: textOffset };
  }

  /** Chat `logprobs.content`: one object per token with its bytes and top alternatives. */
  private chatLogprobs(
    tokenIds: number[],
    logprobs: PositionLogprobs[] | undefined,
    topLogprobs: number,
    asIds: boolean,
  ): unknown[] {
    const entry = (tokenId: number, logprob: number | undefined) => ({
      token: this.tokenString(tokenId, asIds),
      logprob: finite(logprob),
      bytes: [...this.served.tokenBytes(tokenId)],
    });
    return tokenIds.map((tokenId, i) => {
      const position = logprobs?.[i];
      return {
        ...entry(tokenId, position?.tokenLogprob),
        top_logprobs: (position?.topIds ?? [])
          .slice(0, topLogprobs)
          .map((id, k) => entry(id, position?.topLogprobs[k])),
      };
    });
  }

  /** vLLM `prompt_logprobs`: null for the first prompt token, then {id: {logprob, rank?, decoded_token}}. */
  private async promptLogprobs(promptIds: number[], topLogprobs: number, asIds: boolean): Promise<unknown[]> {
    const scored =
      promptIds.length > 1
        ? await this.served.engine.score({ tokenIds: promptIds.slice(0, 1) }, promptIds.slice(1), { topLogprobs })
        : [];
    return [
      null,
      ...scored.map((position, i) => {
        const actual = promptIds[i + 1];
        const entries: Record<string, { logprob: number; rank?: number; decoded_token: string }> = {};
        const actualRank = position.topIds.indexOf(actual);
        entries[String(actual)] = {
          logprob: finite(position.tokenLogprob),
          // the rank is known only when the token is among the top alternatives
          ...(actualRank >= 0 ? { rank: actualRank + 1 } : {}),
          decoded_token: this.tokenString(actual, asIds),
        };
        position.topIds.forEach((id, k) => {
          entries[String(id)] ??= {
            logprob: finite(position.topLogprobs[k]),
            rank: k + 1,
            decoded_token: this.tokenString(id, asIds),
          };
        });
        return entries;
      }),
    ];
  }

  private nextId(prefix: string): string {
    this.requestCount += 1;
    return `${prefix}-${this.created.toString(36)}${this.requestCount.toString(36)}`;
  }
}

function finite(logprob: number | undefined): number {
  if (logprob === undefined || Number.isNaN(logprob)) return MIN_LOGPROB;
  return Math.max(MIN_LOGPROB, logprob);
}

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const field = issue.path.length ? issue.path.join('.') : 'body';
      // zod says "Invalid input" for a missing union field (`prompt`): name what is wrong instead.
      const missing = issue.path.length > 0 && valueAt(body, issue.path) === undefined;
      return missing ? `${field}: required field is missing` : `${field}: ${issue.message}`;
    });
    const firstField = result.error.issues[0]?.path[0];
    const param = typeof firstField === 'string' ? firstField : null;
    throw new HttpError(400, `invalid request: ${problems.join('; ')}`, 'invalid_request_error', param);
  }
  return result.data;
}

/** The value at `path` inside a parsed JSON body (undefined where the path leads nowhere). */
function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

async function readJson(request: IncomingMessage, maxBytes = 16 * 1024 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, `request body over ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

function errorBody(message: string, type: string, param: string | null = null): unknown {
  return { error: { message, type, param, code: null } };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent || response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
