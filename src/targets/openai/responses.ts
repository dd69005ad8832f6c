/**
 * The one place where OpenAI-compatible servers' response shapes are normalised:
 * - `/v1/completions` logprobs are parallel arrays (`tokens`, `token_logprobs`, `top_logprobs` as
 *   {token: logprob} maps); `/v1/chat/completions` logprobs are `content: [{token, logprob, bytes,
 *   top_logprobs: [...]}]`.
 * - vLLM's `return_tokens_as_token_ids` writes tokens as `token_id:123`; other servers write text,
 *   and OpenAI writes a token that is not whole UTF-8 as `bytes:\xe2\x80`.
 * - vLLM's `prompt_logprobs` maps token ids (as strings) to {logprob, rank, decoded_token}.
 * - -inf log-probabilities arrive as null or as a large negative number.
 */
import { z } from 'zod';

/** A token as a server returned it: an exact id, or text/bytes still to be mapped to an id. */
export interface ReturnedToken {
  id?: number;
  /** The token's bytes (from `bytes`, a `bytes:` string, or the UTF-8 of its text). */
  bytes?: Uint8Array;
  /** The token string as the server wrote it (for error messages). */
  text: string;
  logprob: number;
}

export interface ReturnedPosition extends ReturnedToken {
  top: ReturnedToken[];
}

export interface ReturnedChoice {
  index: number;
  text: string;
  finishReason: string | null;
  positions: ReturnedPosition[] | undefined;
  /** vLLM `prompt_logprobs`, one entry per prompt token (the first is null). */
  promptLogprobs?: Array<Map<number, { logprob: number; rank?: number }> | null>;
}

export interface ReturnedCompletion {
  choices: ReturnedChoice[];
  completionTokens?: number;
}

const logprobValue = z
  .number()
  .nullable()
  .transform((value) => value ?? Number.NEGATIVE_INFINITY);

const completionLogprobsSchema = z.looseObject({
  tokens: z.array(z.string()),
  token_logprobs: z.array(logprobValue),
  top_logprobs: z.array(z.record(z.string(), logprobValue).nullable()).nullish(),
});

const promptLogprobEntry = z.looseObject({ logprob: logprobValue, rank: z.number().int().nullish() });
const completionResponseSchema = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        index: z.number().int().min(0),
        text: z.string(),
        finish_reason: z.string().nullable(),
        logprobs: completionLogprobsSchema.nullish(),
        prompt_logprobs: z.array(z.record(z.string(), promptLogprobEntry).nullable()).nullish(),
      }),
    )
    .min(1),
  usage: z.looseObject({ completion_tokens: z.number().int().min(0) }).nullish(),
});

const chatTokenSchema = z.looseObject({
  token: z.string(),
  logprob: logprobValue,
  bytes: z.array(z.number().int().min(0).max(255)).nullish(),
});
const chatResponseSchema = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        index: z.number().int().min(0),
        message: z.looseObject({ content: z.string().nullable() }),
        finish_reason: z.string().nullable(),
        logprobs: z
          .looseObject({
            content: z.array(chatTokenSchema.extend({ top_logprobs: z.array(chatTokenSchema).default([]) })).nullable(),
          })
          .nullish(),
      }),
    )
    .min(1),
  usage: z.looseObject({ completion_tokens: z.number().int().min(0) }).nullish(),
});

/** Parse a `/v1/completions` body (throws on a malformed one). */
export function parseCompletionResponse(json: unknown): ReturnedCompletion {
  const body = completionResponseSchema.parse(json);
  return {
    completionTokens: body.usage?.completion_tokens,
    choices: body.choices.map((choice) => {
      const logprobs = choice.logprobs;
      let positions: ReturnedPosition[] | undefined;
      if (logprobs) {
        if (
          logprobs.token_logprobs.length !== logprobs.tokens.length ||
          (logprobs.top_logprobs && logprobs.top_logprobs.length !== logprobs.tokens.length)
        ) {
          throw new Error(`choice ${choice.index}: logprobs arrays of different lengths`);
        }
        positions = logprobs.tokens.map((token, i) => ({
          ...returnedToken(token, logprobs.token_logprobs[i]),
          top: Object.entries(logprobs.top_logprobs?.[i] ?? {})
            .map(([text, logprob]) => returnedToken(text, logprob))
            .sort((a, b) => b.logprob - a.logprob),
        }));
      }
      const parsed: ReturnedChoice = {
        index: choice.index,
        text: choice.text,
        finishReason: choice.finish_reason,
        positions,
      };
      if (choice.prompt_logprobs) {
        parsed.promptLogprobs = choice.prompt_logprobs.map((entry) => {
          if (!entry) return null;
          const byId = new Map<number, { logprob: number; rank?: number }>();
          for (const [key, value] of Object.entries(entry)) {
            const id = Number(key);
            if (!Number.isInteger(id) || id < 0) throw new Error(`prompt_logprobs key '${key}' is not a token id`);
            byId.set(
              id,
              value.rank == null ? { logprob: value.logprob } : { logprob: value.logprob, rank: value.rank },
            );
          }
          return byId;
        });
      }
      return parsed;
    }),
  };
}

/** Parse a `/v1/chat/completions` body (throws on a malformed one). */
export function parseChatResponse(json: unknown): ReturnedCompletion {
  const body = chatResponseSchema.parse(json);
  return {
    completionTokens: body.usage?.completion_tokens,
    choices: body.choices.map((choice) => ({
      index: choice.index,
      text: choice.message.content ?? '',
      finishReason: choice.finish_reason,
      positions: choice.logprobs?.content?.map((entry) => ({
        ...returnedToken(entry.token, entry.logprob, entry.bytes),
        top: entry.top_logprobs.map((alternative) =>
          returnedToken(alternative.token, alternative.logprob, alternative.bytes),
        ),
      })),
    })),
  };
}

const TOKEN_ID = /^token_id:(\d+)$/;
const BYTES_TOKEN = /^bytes:((?:\\x[0-9a-fA-F]{2})+)$/;

function returnedToken(text: string, logprob: number, bytes?: number[] | null): ReturnedToken {
  const idMatch = TOKEN_ID.exec(text);
  if (idMatch) return { id: Number(idMatch[1]), text, logprob };
  if (bytes) return { bytes: Uint8Array.from(bytes), text, logprob };
  const bytesMatch = BYTES_TOKEN.exec(text);
  if (bytesMatch) {
    const hex = bytesMatch[1].split('\\x').filter(Boolean);
    return { bytes: Uint8Array.from(hex.map((h) => Number.parseInt(h, 16))), text, logprob };
  }
  return { bytes: new TextEncoder().encode(text), text, logprob };
}
