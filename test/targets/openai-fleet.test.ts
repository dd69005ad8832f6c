/**
 * The openai engine over a fleet of replicas (`target.base_urls`): real `fireopt serve` servers over
 * stories260K on 127.0.0.1, with the fault proxy in front of each to count deliveries and inject
 * failures. Requests spread over the replicas, a failing replica is taken out and probed back in,
 * every request ends ok exactly once, and a replica that serves another model is refused.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveModel, type ServingModel } from '../../src/serve/open.js';
import { openAiTargetSchema, targetSchema, type OpenAiTargetConfig } from '../../src/targets/config.js';
import { samplingOptions, type Completion } from '../../src/targets/engine.js';
import { LlamaCppEngine } from '../../src/targets/llama-cpp/engine.js';
import type { ReplicaChange } from '../../src/targets/openai/http.js';
import { OpenAiEngine, type OpenAiEngineDeps } from '../../src/targets/openai/engine.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, STORIES260K, TOK512 } from '../helpers/shared.js';
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from './fault-proxy.js';
import { BOS, writeStoriesGguf, type StoriesGguf } from './stories-gguf.js';

let gguf: StoriesGguf;
const servers: ServingModel[] = [];
let direct: LlamaCppEngine;
const proxies: FaultProxy[] = [];
const engines: OpenAiEngine[] = [];

/** A real server over stories260K (one sequence, F32 cache: its greedy results equal the local engine's). */
async function serve(modelName?: string): Promise<ServingModel> {
  const serving = await serveModel({
    model: gguf.path,
    host: '127.0.0.1',
    port: 0,
    contextSize: 256,
    threads: 1,
    sequences: 1,
    batchSize: 256,
    kvCacheType: 'f32',
    modelName,
  });
  servers.push(serving);
  return serving;
}

async function proxy(upstream: ServingModel, options: Partial<FaultProxyOptions> = {}): Promise<FaultProxy> {
  const started = await startFaultProxy({ upstream: upstream.url.replace(/\/v1$/, ''), faults: [], ...options });
  proxies.push(started);
  return started;
}

/** A loopback port with nothing listening on it (connections are refused). */
async function refusedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function fleetConfig(baseUrls: string[], overrides: Partial<OpenAiTargetConfig> = {}): OpenAiTargetConfig {
  return openAiTargetSchema.parse({
    engine: 'openai',
    base_urls: baseUrls.map((url) => `${url}/v1`),
    model: 'stories260K',
    concurrency: 2,
    timeout_ms: 5_000,
    max_retries: 8,
    retry_min_delay_ms: 5,
    retry_max_delay_ms: 40,
    ...overrides,
  });
}

function fleetEngine(
  baseUrls: string[],
  overrides: Partial<OpenAiTargetConfig> = {},
  deps: OpenAiEngineDeps = {},
): OpenAiEngine {
  const engine = new OpenAiEngine(fleetConfig(baseUrls, overrides), deps);
  engines.push(engine);
  return engine;
}

const PROMPT_TEXTS = [
  'Once upon a time',
  'The cat',
  'Lily went to the park',
  'One day, a big dog',
  'Tom had a red ball',
  'The sun was',
  'She saw a bird',
  'Mom said',
  'They played',
  'A little fish',
  'The tree was tall',
  'Ben and Sue',
];

async function generateAll(engine: OpenAiEngine): Promise<{ results: Completion[][]; expected: Completion[][] }> {
  const sampling = samplingOptions({ maxTokens: 12, topLogprobs: 2 });
  const prompts = PROMPT_TEXTS.map((text) => [BOS, ...direct.tokenize(text)]);
  const results = await Promise.all(prompts.map((tokenIds) => engine.generate({ tokenIds }, sampling)));
  const expected: Completion[][] = [];
  for (const tokenIds of prompts) expected.push(await direct.generate({ tokenIds }, sampling));
  return { results, expected };
}

function expectSameTokens(results: Completion[][], expected: Completion[][]): void {
  expect(results.map((completions) => completions.map((c) => c.tokenIds))).toEqual(
    expected.map((completions) => completions.map((c) => c.tokenIds)),
  );
}

/** Poll until `condition` holds (no time assertion: the machine may be loaded; vitest's timeout bounds it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** Total of one counter over a fleet's replicas. */
function total(engine: OpenAiEngine, field: 'requests' | 'tokens' | 'failedAttempts'): number {
  return engine.replicaStats().reduce((sum, replica) => sum + replica[field], 0);
}

describe.skipIf(!haveShared(STORIES260K, TOK512))('openai engine over a fleet of replicas', () => {
  // Inside the guarded block: without ../shared the config tests below still run.
  beforeAll(async () => {
    gguf = writeStoriesGguf();
    await serve();
    await serve();
    direct = await LlamaCppEngine.open({
      model: gguf.path,
      contextSize: 256,
      threads: 1,
      sequences: 1,
      batchSize: 256,
      kvCacheType: 'f32',
    });
  });

  afterAll(async () => {
    for (const engine of engines) await engine.close();
    for (const proxy of proxies) await proxy.close();
    for (const serving of servers) await serving.close();
    await direct?.close();
    gguf?.remove();
  });

  it('spreads requests over the replicas, each delivered once, with per-replica rows and tokens', async () => {
    const [a, b] = [await proxy(servers[0]), await proxy(servers[1])];
    const engine = fleetEngine([a.url, b.url]);
    const { results, expected } = await generateAll(engine);
    expectSameTokens(results, expected);
    const stats = engine.replicaStats();
    expect(stats.map((replica) => replica.baseUrl)).toEqual([`${a.url}/v1`, `${b.url}/v1`]);
    // Both replicas served a share (least outstanding with 2 slots each, 12 requests at once).
    expect(stats.every((replica) => replica.requests >= 2)).toBe(true);
    expect(stats.map((replica) => replica.requests)).toEqual([a.delivered.size, b.delivered.size]);
    expect(total(engine, 'requests')).toBe(PROMPT_TEXTS.length);
    const tokens = results.flat().reduce((sum, completion) => sum + completion.tokenIds.length, 0);
    expect(total(engine, 'tokens')).toBe(tokens);
    expect(total(engine, 'failedAttempts')).toBe(0);
    const bodies = [...a.delivered.keys(), ...b.delivered.keys()];
    expect(new Set(bodies).size).toBe(PROMPT_TEXTS.length); // no request reached two replicas
  });

  it('takes a refused replica out, sends its requests elsewhere, and probes it back in when it returns', async () => {
    const port = await refusedPort();
    const refusedUrl = `http://127.0.0.1:${port}`;
    const healthy = await proxy(servers[0]);
    const changes: ReplicaChange[] = [];
    const retries: string[] = [];
    const engine = fleetEngine(
      [refusedUrl, healthy.url],
      { retry_min_delay_ms: 50, retry_max_delay_ms: 200 },
      { onReplicaChange: (change) => changes.push(change), onRetry: (event) => retries.push(event.reason) },
    );
    const first = await generateAll(engine);
    expectSameTokens(first.results, first.expected);
    let [down, up] = engine.replicaStats();
    expect(down.requests).toBe(0);
    expect(down.timesTakenOut).toBeGreaterThanOrEqual(1);
    // Out at its first refusal: only the attempts already in flight there (its 2 slots) failed with it, and
    // then one probe per outage (requests queued behind them went elsewhere without an attempt).
    expect(down.failedAttempts).toBeGreaterThan(0);
    expect(down.failedAttempts).toBeLessThanOrEqual(2 + down.timesTakenOut);
    expect(up.requests).toBe(PROMPT_TEXTS.length);
    expect(retries.every((reason) => reason.includes('ECONNREFUSED') && reason.includes(refusedUrl))).toBe(true);
    expect(changes[0]).toMatchObject({ baseUrl: `${refusedUrl}/v1`, state: 'out' });
    expect(changes[0].reason).toMatch(/ECONNREFUSED/);

    // The replica comes back at its address; once its backoff has passed, a probe puts it back in service.
    const returned = await proxy(servers[1], { port });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const second = await generateAll(engine);
    expectSameTokens(second.results, second.expected);
    [down, up] = engine.replicaStats();
    expect(changes.at(-1)).toMatchObject({ baseUrl: `${refusedUrl}/v1`, state: 'in' });
    expect(down.requests).toBe(returned.delivered.size);
    expect(down.requests).toBeGreaterThan(0);
    expect(down.requests + up.requests).toBe(2 * PROMPT_TEXTS.length);
  });

  it('takes out a replica that keeps answering 5xx; every request ends ok on the other, exactly once', async () => {
    const failing = await proxy(servers[0], { faults: ['500', '503'], faultsFor: () => Number.POSITIVE_INFINITY });
    const healthy = await proxy(servers[1]);
    const engine = fleetEngine([failing.url, healthy.url], { retry_min_delay_ms: 200, retry_max_delay_ms: 800 });
    const { results, expected } = await generateAll(engine);
    expectSameTokens(results, expected);
    const [bad, good] = engine.replicaStats();
    expect(bad.requests).toBe(0);
    // Out after a streak of 3; afterwards only one probe per outage (each doubling) reaches it, plus at most
    // the attempts already queued there when it went out (its 2 slots).
    expect(bad.timesTakenOut).toBeGreaterThanOrEqual(1);
    expect(bad.failedAttempts).toBeGreaterThanOrEqual(3);
    expect(bad.failedAttempts).toBeLessThanOrEqual(2 + bad.timesTakenOut + 2);
    expect(good.requests).toBe(PROMPT_TEXTS.length);
    expect(healthy.delivered.size).toBe(PROMPT_TEXTS.length);
    expect([...healthy.delivered.values()].every((count) => count === 1)).toBe(true);
  });

  it('fails after the retry budget when every replica is down, naming each replica and its last error', async () => {
    const refusedUrl = `http://127.0.0.1:${await refusedPort()}`;
    const failing = await proxy(servers[0], { faults: ['503'], faultsFor: () => Number.POSITIVE_INFINITY });
    const engine = fleetEngine([refusedUrl, failing.url], { max_retries: 4 });
    const failure = engine.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 4 }));
    await expect(failure).rejects.toMatchObject({ code: 'E_TARGET_UNAVAILABLE' });
    const message = String(await failure.catch((error: Error) => error.message));
    expect(message).toMatch(/still failing after 5 attempts over 2 replicas/);
    expect(message).toContain(`${refusedUrl}/v1 (out of service): connection failed (ECONNREFUSED)`);
    expect(message).toContain(`${failing.url}/v1`);
    expect(message).toContain('HTTP 503 injected server error');
  });

  it('checks before any row that every replica serves the same model: name and greedy probe tokens', async () => {
    const [a, b] = [await proxy(servers[0]), await proxy(servers[1])];
    const checked = await OpenAiEngine.open(fleetConfig([a.url, b.url]));
    engines.push(checked);
    expect(checked.identity.baseUrls).toEqual([`${a.url}/v1`, `${b.url}/v1`]);
    // the check asked both: a model list and one probe completion each
    expect(a.delivered.size).toBe(2);
    expect(b.delivered.size).toBe(2);

    // Same name, other behaviour: the proxy feeds this replica's model another prompt, as other weights would.
    const otherWeights = await proxy(servers[1], {
      rewrite: (body) => (body.prompt === undefined ? body : { ...body, prompt: 'The dog' }),
    });
    const mixed = OpenAiEngine.open(fleetConfig([a.url, otherWeights.url]));
    await expect(mixed).rejects.toMatchObject({ code: 'E_TARGET_MISMATCH', exitCode: 2 });
    await expect(mixed).rejects.toThrow(`target.base_urls[1]: ${otherWeights.url}/v1 answers the probe prompt`);

    const renamed = await serve('stories-other');
    const otherName = OpenAiEngine.open(fleetConfig([a.url, renamed.url.replace(/\/v1$/, '')]));
    await expect(otherName).rejects.toThrow(
      `target.base_urls[1]: ${renamed.url}/v1 does not serve stories260K (its /models lists stories-other)`,
    );
  });

  /** A fleet engine opened while its first replica refuses connections (the second is up). */
  async function openWithOneDown() {
    const port = await refusedPort();
    const refusedUrl = `http://127.0.0.1:${port}`;
    const healthy = await proxy(servers[0]);
    const changes: ReplicaChange[] = [];
    const engine = await OpenAiEngine.open(fleetConfig([refusedUrl, healthy.url], { max_retries: 2 }), {
      onReplicaChange: (change) => changes.push(change),
    });
    engines.push(engine);
    return { port, refusedUrl, changes, engine };
  }

  it('opens with a replica down: held out until it passes the identity check, then it serves rows', async () => {
    const { port, refusedUrl, changes, engine } = await openWithOneDown();
    // Its failed attempts took it out as usual; then the check held it out (no time: until it passes).
    const heldOut = changes.filter((change) => change.outMs === undefined);
    expect(heldOut).toEqual([
      {
        baseUrl: `${refusedUrl}/v1`,
        state: 'out',
        reason: 'the identity check could not reach it (connection failed (ECONNREFUSED)); held out until it passes',
      },
    ]);
    const first = await generateAll(engine);
    expectSameTokens(first.results, first.expected);
    expect(engine.replicaStats()[0].requests).toBe(0);

    // It comes up at its address: the background check admits it (and only then does it get rows).
    const returned = await proxy(servers[1], { port });
    await until(() => changes.some((change) => change.state === 'in'));
    expect(changes.filter((change) => change.state === 'in')).toEqual([{ baseUrl: `${refusedUrl}/v1`, state: 'in' }]);
    expect(returned.delivered.size).toBe(2); // the model list and the probe completion, nothing routed yet
    const second = await generateAll(engine);
    expectSameTokens(second.results, second.expected);
    const [admitted] = engine.replicaStats();
    expect(admitted.requests).toBeGreaterThan(0);
    expect(admitted.requests).toBe(returned.delivered.size - 2);
  });

  it('keeps a held-out replica out for the run when it comes back serving another model', async () => {
    const { port, refusedUrl, changes, engine } = await openWithOneDown();
    const other = await proxy(await serve('stories-other'), { port });
    await until(() => changes.some((change) => change.reason?.includes('kept out')));
    expect(changes.at(-1)).toMatchObject({ baseUrl: `${refusedUrl}/v1`, state: 'out' });
    expect(changes.at(-1)?.reason).toBe(
      `target.base_urls[0]: ${refusedUrl}/v1 does not serve stories260K (its /models lists stories-other); ` +
        'kept out for the rest of the run',
    );
    const { results, expected } = await generateAll(engine);
    expectSameTokens(results, expected);
    expect(engine.replicaStats()[0].requests).toBe(0);
    expect(other.delivered.size).toBe(2); // the identity check only: model list and probe completion
  });

  it('checks a replica that went out mid-run again: back serving another model, it gets no more rows', async () => {
    const [first, healthy] = [await proxy(servers[0]), await proxy(servers[1])];
    const port = Number(new URL(first.url).port);
    const changes: ReplicaChange[] = [];
    const engine = await OpenAiEngine.open(fleetConfig([first.url, healthy.url], { max_retries: 3 }), {
      onReplicaChange: (change) => changes.push(change),
    });
    engines.push(engine);
    const before = await generateAll(engine);
    expectSameTokens(before.results, before.expected);
    const servedBefore = engine.replicaStats()[0].requests;
    expect(servedBefore).toBeGreaterThan(0);

    // A rolling update: the replica goes down, then comes back at its address serving another model.
    await first.close();
    const during = await generateAll(engine);
    expectSameTokens(during.results, during.expected);
    expect(changes).toContainEqual(expect.objectContaining({ baseUrl: `${first.url}/v1`, state: 'out' }));
    const other = await proxy(await serve('stories-other'), { port });
    await until(() => changes.some((change) => change.reason?.includes('kept out')));
    expect(changes.at(-1)?.reason).toBe(
      `target.base_urls[0]: ${first.url}/v1 does not serve stories260K (its /models lists stories-other); ` +
        'kept out for the rest of the run',
    );
    const after = await generateAll(engine);
    expectSameTokens(after.results, after.expected);
    expect(engine.replicaStats()[0].requests).toBe(servedBefore);
    expect(other.delivered.size).toBe(2); // the identity check only: model list and probe completion
    expect(changes.some((change) => change.state === 'in')).toBe(false);
  });

  it('fails when the only admitted replica goes down too, naming the one it tried and the one held out', async () => {
    const { refusedUrl, engine } = await openWithOneDown();
    const healthyUrl = engine.replicaStats()[1].baseUrl;
    await proxies.find((started) => `${started.url}/v1` === healthyUrl)?.close();
    const failure = engine.generate({ tokenIds: [BOS] }, samplingOptions({ maxTokens: 4 }));
    await expect(failure).rejects.toMatchObject({ code: 'E_TARGET_UNAVAILABLE' });
    const message = String(await failure.catch((error: Error) => error.message));
    expect(message).toMatch(/still failing after 3 attempts over 1 of 2 replicas/);
    expect(message).toContain(`${refusedUrl}/v1 (held out): connection failed (ECONNREFUSED)`);
    expect(message).toContain(`${healthyUrl} (held out): connection failed (ECONNREFUSED)`);
  });

  it('does not open when no replica can be reached for the identity check', async () => {
    const urls = [`http://127.0.0.1:${await refusedPort()}`, `http://127.0.0.1:${await refusedPort()}`];
    const opening = OpenAiEngine.open(fleetConfig(urls, { max_retries: 1 }));
    await expect(opening).rejects.toMatchObject({ code: 'E_TARGET_UNAVAILABLE' });
    await expect(opening).rejects.toThrow(/still failing after 2 attempts/);
  });
});

describe('target.base_urls config', () => {
  it('refuses base_url together with base_urls, a fleet that lists a replica twice, and neither', async () => {
    const problems = (target: Record<string, unknown>) => {
      const parsed = targetSchema.safeParse({ engine: 'openai', model: 'm', ...target });
      return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    };
    expect(problems({ base_url: 'http://a/v1', base_urls: ['http://b/v1'] })).toEqual([
      'base_urls: target.base_url and target.base_urls are both set: use base_urls alone for several replicas',
    ]);
    expect(problems({ base_urls: ['http://a/v1', 'http://a/v1/'] })).toEqual([
      'base_urls.1: http://a/v1/ is listed twice',
    ]);
    expect(problems({})).toEqual(['base_url: set target.base_url (or base_urls for a fleet)']);
    expect(problems({ base_urls: [] })).toHaveLength(1);
    expect(problems({ base_urls: ['http://a/v1', 'http://b/v1'] })).toEqual([]);

    // Through the CLI: exit 2 before any work, naming the file and both keys.
    const dir = mkdtempSync(join(tmpdir(), 'fireopt-fleet-config-'));
    try {
      const config = join(dir, 'both.yaml');
      const target = 'target: {engine: openai, model: m, base_url: http://a/v1, base_urls: [http://b/v1]}\n';
      writeFileSync(config, target);
      const result = await runCli(['-c', config, 'distill', join(dir, 'dataset'), '--out', join(dir, 'out')]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`${config}: invalid config`);
      expect(result.stderr).toContain('target.base_urls: target.base_url and target.base_urls are both set');
      expect(existsSync(join(dir, 'out'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
