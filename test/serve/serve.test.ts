/**
 * `fireopt serve` over HTTP as vLLM answers: a completion that the model ended keeps its end token
 * (in logprobs and usage, not in the text) with `finish_reason: "stop"`; `stop_reason` tells an
 * end-of-generation token, a stop token and a stop string apart; a request that does not fit the
 * context, or lacks a required field, is a 400 that says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveModel, type ServingModel } from '../../src/serve/open.js';
import { haveShared, STORIES260K, TOK512 } from '../helpers/shared.js';
import { BOS, writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';

const CONTEXT = 512;
/** Greedy, with every generated token as `token_id:N` in `logprobs`. */
const GREEDY_IDS = { temperature: 0, logprobs: 0, return_tokens_as_token_ids: true };
/** Tokens of stories260K's greedy story from BOS, up to and including its end token. */
const STORY_LENGTH = 346;

interface Choice {
  text: string;
  finish_reason: string;
  stop_reason: number | string | null;
  logprobs: { tokens: string[] } | null;
}
interface Answer {
  status: number;
  json: { choices: Choice[]; usage: { completion_tokens: number }; error: { message: string; param: string | null } };
}

describe.skipIf(!haveShared(STORIES260K, TOK512))('fireopt serve: how completions end, and bad requests', () => {
  let gguf: StoriesGguf;
  let serving: ServingModel;
  let story: number[];

  async function post(path: string, body: unknown): Promise<Answer> {
    const headers = { 'content-type': 'application/json' };
    const response = await fetch(`${serving.url}/v1/${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: response.status, json: (await response.json()) as Answer['json'] };
  }

  /** The story's first `n` tokens after BOS: the model ends it `STORY_LENGTH - n` tokens later. */
  const storyPrompt = (n: number): number[] => [BOS, ...story.slice(0, n)];

  beforeAll(async () => {
    gguf = writeStoriesGguf({ endsWithBos: true });
    const local = { model: gguf.path, contextSize: CONTEXT, threads: 1, sequences: 1, batchSize: 512 };
    serving = await serveModel({ ...local, host: '127.0.0.1', port: 0 });
    const whole = await post('completions', { prompt: [BOS], max_tokens: 400, ...GREEDY_IDS });
    story = whole.json.choices[0].logprobs!.tokens.map((token) => Number(token.replace('token_id:', '')));
  });

  afterAll(async () => {
    await serving?.close();
    gguf?.remove();
  });

  it('an end-of-generation token ends the completion as its last token: stop, stop_reason null', async () => {
    // max_tokens 300 from BOS: the story ends after 346 tokens, so this one is cut
    const cut = await post('completions', { prompt: [BOS], max_tokens: 300, temperature: 0 });
    expect(cut.json.choices[0]).toMatchObject({ finish_reason: 'length', stop_reason: null });
    expect(cut.json.usage.completion_tokens).toBe(300);

    expect(story).toHaveLength(STORY_LENGTH);
    expect(story.at(-1)).toBe(BOS);
    const ended = await post('completions', { prompt: storyPrompt(330), max_tokens: 100, ...GREEDY_IDS });
    expect(ended.status).toBe(200);
    const choice = ended.json.choices[0];
    expect(choice).toMatchObject({ finish_reason: 'stop', stop_reason: null });
    expect(choice.logprobs!.tokens).toEqual(story.slice(330).map((id) => `token_id:${id}`));
    expect(ended.json.usage.completion_tokens).toBe(STORY_LENGTH - 330);
    // the end token has no text
    expect(choice.text).toBe(serving.engine.detokenize(story.slice(330, -1), storyPrompt(330)));
    expect(choice.text.endsWith('friend."')).toBe(true);
  });

  it('chat: the end token is the last logprobs entry, not part of the message', async () => {
    const chat = await post('chat/completions', {
      messages: [{ role: 'user', content: 'Tell me a story.' }],
      temperature: 0,
      logprobs: true,
      return_tokens_as_token_ids: true,
    });
    expect(chat.status).toBe(200);
    type ChatChoice = Choice & { message: { content: string }; logprobs: { content: Array<{ token: string }> } };
    const choice = chat.json.choices[0] as ChatChoice;
    if (choice.finish_reason === 'stop') {
      expect(choice.logprobs.content.at(-1)!.token).toBe(`token_id:${BOS}`);
      expect(choice.stop_reason).toBeNull();
    } else {
      expect(chat.json.usage.completion_tokens).toBeGreaterThan(0); // ran to the end of the context
    }
    expect(choice.message.content).not.toContain('<s>');
  });

  it('a stop token id and a stop string are told apart from an end-of-generation token by stop_reason', async () => {
    const stopId = story[335];
    const request = { prompt: storyPrompt(330), max_tokens: 100, stop_token_ids: [stopId], ...GREEDY_IDS };
    const byToken = await post('completions', request);
    expect(byToken.json.choices[0]).toMatchObject({ finish_reason: 'stop', stop_reason: stopId });
    expect(byToken.json.choices[0].logprobs!.tokens.at(-1)).toBe(`token_id:${stopId}`);

    const byString = await post('completions', { prompt: [BOS], max_tokens: 30, temperature: 0, stop: [' girl'] });
    expect(byString.json.choices[0]).toMatchObject({ finish_reason: 'stop', stop_reason: ' girl' });
    expect(byString.json.choices[0].text).toBe('Once upon a time, there was a little');
  });

  it('refuses max_tokens beyond the context with a 400 naming both lengths, as vLLM does', async () => {
    const tooLong = await post('completions', { prompt: storyPrompt(300), max_tokens: 300, temperature: 0 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json.error.param).toBe('max_tokens');
    expect(tooLong.json.error.message).toBe(
      `This model's maximum context length is ${CONTEXT} tokens. ` +
        'However, you requested 601 tokens (301 in the prompt, 300 in the completion). ' +
        'Please reduce the length of the prompt or completion.',
    );
    const chat = await post('chat/completions', { messages: [{ role: 'user', content: 'Hi' }], max_tokens: CONTEXT });
    expect(chat.status).toBe(400);
    expect(chat.json.error.message).toMatch(/context length is 512 tokens.*in the messages, 512 in the completion/);
    // exactly filling the context is allowed
    const fits = await post('completions', { prompt: storyPrompt(300), max_tokens: CONTEXT - 301, temperature: 0 });
    expect(fits.status).toBe(200);
  });

  it('names a missing required field', async () => {
    const noPrompt = await post('completions', { max_tokens: 4 });
    expect(noPrompt.status).toBe(400);
    expect(noPrompt.json.error.message).toBe('invalid request: prompt: required field is missing');
    expect(noPrompt.json.error.param).toBe('prompt');
    const noContent = await post('chat/completions', { messages: [{ role: 'user' }] });
    expect(noContent.status).toBe(400);
    expect(noContent.json.error.message).toBe('invalid request: messages.0.content: required field is missing');
  });
});
