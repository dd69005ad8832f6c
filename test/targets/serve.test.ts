/** `fireopt serve` as a spawned process: real port, real HTTP, clean shutdown on SIGTERM. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveShared, repoRoot, STORIES260K, TOK512 } from '../helpers/shared.js';
import { BOS, GREEDY_STORY_PREFIX, writeStoriesGguf, type StoriesGguf } from './stories-gguf.js';

let gguf: StoriesGguf;
beforeAll(() => {
  gguf = writeStoriesGguf();
});
afterAll(() => gguf?.remove());

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

describe.skipIf(!haveShared(STORIES260K, TOK512))('fireopt serve (spawned)', () => {
  it('serves models, completions and chat on 127.0.0.1 and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin/fireopt'), '--json', 'serve', '--model', gguf.path, '--port', '0', '--context-size', '256'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const summary = await new Promise<{ url: string; model: string; chatTemplate: string }>((resolve, reject) => {
        let stdout = '';
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('\n')) resolve(JSON.parse(stdout.split('\n')[0]));
        });
        child.on('exit', (code) => reject(new Error(`fireopt serve exited early with ${code}`)));
        setTimeout(() => reject(new Error('fireopt serve did not start within 20 s')), 20_000).unref();
      });
      expect(summary.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
      expect(summary.chatTemplate).toBe('fallback'); // stories260K ships no chat template
      const base = summary.url.replace(/\/v1$/, '');
      expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: 'ok' });
      const models = (await (await fetch(`${summary.url}/models`)).json()) as { data: Array<{ id: string }> };
      expect(models.data.map((m) => m.id)).toEqual(['stories260K']);

      const greedy = await post(`${summary.url}/completions`, { prompt: [BOS], max_tokens: 30, temperature: 0 });
      expect(greedy.status).toBe(200);
      const choice = (greedy.json.choices as Array<{ text: string; finish_reason: string }>)[0];
      expect(choice.text.startsWith(GREEDY_STORY_PREFIX)).toBe(true);
      expect(choice.finish_reason).toBe('length');

      // a stop string cuts the text before it
      const stopped = await post(`${summary.url}/completions`, {
        prompt: [BOS],
        max_tokens: 30,
        temperature: 0,
        stop: [' girl'],
      });
      expect((stopped.json.choices as Array<{ text: string; finish_reason: string }>)[0]).toEqual({
        index: 0,
        text: 'Once upon a time, there was a little',
        logprobs: null,
        finish_reason: 'stop',
        stop_reason: ' girl',
      });

      const chat = await post(`${summary.url}/chat/completions`, {
        messages: [{ role: 'user', content: 'Tell me a story.' }],
        max_tokens: 8,
        temperature: 0,
      });
      expect(chat.status).toBe(200);
      expect((chat.json.usage as { completion_tokens: number }).completion_tokens).toBe(8);

      const bad = await post(`${summary.url}/completions`, { prompt: [BOS], max_tokens: 0, stream: true });
      expect(bad.status).toBe(400);
      expect(String((bad.json.error as { message: string }).message)).toMatch(/max_tokens.*stream|stream.*max_tokens/s);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
