/**
 * The synth stage: the target writes new prompts in the style of a few seed prompts
 * (self-instruct, Wang et al. 2023), for a customer with few traces of their own.
 *
 * Each request shows the target a numbered list of example prompts (seeds, and after the first
 * rounds two of its own accepted prompts, as self-instruct does) ending at the next number; the
 * target's continuation up to the end of that line is a candidate. Candidates that are empty,
 * too short or long, cut off mid-sentence, or an exact or near duplicate of a seed or of an
 * accepted prompt are rejected (and counted by reason).
 *
 * Requests go out in rounds of `concurrency` and are judged in request order, so a deterministic
 * engine gives the same prompts whatever the timing. The result is written as a prompts JSONL
 * file ({"prompt", "metadata"} per line) that `fireopt ingest` reads; the CLI ingests it into the
 * output dataset.
 */
import { InputError, RunError } from '../errors.js';
import { SeededRandom } from '../model/random.js';
import type { ProgressSink } from '../progress.js';
import type { Completion, SamplingOptions, TargetEngine, TargetIdentity, TargetPrompt } from '../targets/engine.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { SynthConfig } from './config.js';
import { NearDuplicateIndex } from './dedup.js';
import { readSeedPrompts } from './seeds.js';

export interface SynthRun {
  synth: SynthConfig;
  /** Where the accepted prompts go, as prompts JSONL. */
  promptsOut: string;
}

export interface SynthDeps {
  engine: TargetEngine;
  /** The target's tokenizer: prompts are sent as its token ids. */
  tokenizer: Tokenizer;
  progress: ProgressSink;
  signal?: AbortSignal;
}

export const REJECT_REASONS = [
  'empty',
  'too-short',
  'too-long',
  'truncated',
  'invalid-text',
  'exact-duplicate',
  'near-duplicate',
  'surplus',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface SynthPrompt {
  text: string;
  /** Which request and sample wrote it. */
  request: number;
  sample: number;
}

export interface SynthSummary {
  promptsFile: string;
  seeds: number;
  requested: number;
  written: number;
  requests: number;
  completions: number;
  rejected: Record<RejectReason, number>;
  target: TargetIdentity;
  prompts: SynthPrompt[];
}

/** Few-shot list header: it tells a base model what the list is; an instruct model reads it as a task. */
const LIST_HEADER = 'Examples of prompts, one per line:';

/** Run synth; resolves once `promptsOut` is written. */
export async function runSynth(run: SynthRun, deps: SynthDeps): Promise<SynthSummary> {
  const { synth } = run;
  if (synth.min_chars > synth.max_chars)
    throw new InputError(`synth: min_chars ${synth.min_chars} > max_chars ${synth.max_chars}`);
  // One prompt per line of the few-shot list: a seed's own line breaks become spaces.
  const seeds = (await readSeedPrompts(synth.seed_prompts)).map(oneLine);
  const index = new NearDuplicateIndex(synth.near_duplicate_threshold);
  for (const seed of seeds) index.add(seed);
  const stopTokenIds = lineEndIds(deps.tokenizer);
  const maxCompletions = synth.max_completions || 20 * synth.n;
  const accepted: SynthPrompt[] = [];
  const rejected = Object.fromEntries(REJECT_REASONS.map((reason) => [reason, 0])) as Record<RejectReason, number>;
  let completions = 0;
  let request = 0;
  deps.progress({ kind: 'start', task: 'synth', total: synth.n, unit: 'prompts' });
  while (accepted.length < synth.n && completions < maxCompletions) {
    if (deps.signal?.aborted) throw new RunError('synth interrupted; nothing written', undefined, 'E_INTERRUPTED');
    const round = Math.max(
      1,
      Math.min(synth.concurrency, Math.ceil((maxCompletions - completions) / synth.samples_per_request)),
    );
    const requests = Array.from({ length: round }, (_, i) => request + i);
    const results = await Promise.all(
      requests.map(async (r) => {
        const prompt = fewShotPrompt(pickExamples(seeds, accepted, synth, r), deps.tokenizer);
        const sampling: SamplingOptions = {
          maxTokens: synth.max_tokens,
          temperature: synth.temperature,
          topP: synth.top_p,
          topK: synth.top_k,
          seed: synth.seed + r * synth.samples_per_request,
          stopTokenIds,
          n: synth.samples_per_request,
          topLogprobs: 0,
        };
        return deps.engine.generate(prompt, sampling);
      }),
    );
    results.forEach((samples, i) => {
      samples.forEach((completion, sample) => {
        completions++;
        const candidate = candidateText(completion, deps.tokenizer, synth);
        let reason: RejectReason | undefined = 'reason' in candidate ? candidate.reason : undefined;
        if (!reason && 'text' in candidate) {
          const verdict = index.check(candidate.text);
          if (verdict.kind === 'exact') reason = 'exact-duplicate';
          else if (verdict.kind === 'near') reason = 'near-duplicate';
          else if (accepted.length >= synth.n) reason = 'surplus';
          else {
            index.add(candidate.text);
            accepted.push({ text: candidate.text, request: requests[i], sample });
          }
        }
        if (reason) rejected[reason]++;
      });
    });
    request += round;
    deps.progress({
      kind: 'advance',
      task: 'synth',
      done: accepted.length,
      total: synth.n,
      fields: { completions, rejected: completions - accepted.length },
    });
  }
  deps.progress({ kind: 'end', task: 'synth', done: accepted.length });
  if (accepted.length === 0) {
    throw new RunError(
      `synth: none of ${completions} completions was a new prompt (${describeRejections(rejected)})`,
      'try more or more varied seed prompts, a higher temperature, or a larger synth max_tokens',
    );
  }
  if (accepted.length < synth.n) {
    deps.progress({
      kind: 'log',
      level: 'warn',
      message:
        `synth: ${accepted.length} of ${synth.n} prompts after ${completions} ` +
        `completions (${describeRejections(rejected)}); raise --max-completions for more`,
    });
  }
  const identity = deps.engine.identity;
  const lines = accepted.map((prompt) =>
    JSON.stringify({
      prompt: prompt.text,
      metadata: {
        synth: { request: prompt.request, sample: prompt.sample, engine: identity.engine, model: identity.model },
      },
    }),
  );
  writeFileAtomic(run.promptsOut, lines.join('\n') + '\n');
  return {
    promptsFile: run.promptsOut,
    seeds: seeds.length,
    requested: synth.n,
    written: accepted.length,
    requests: request,
    completions,
    rejected,
    target: identity,
    prompts: accepted,
  };
}

/** The few-shot prompt: a header, the numbered examples, and the next number. */
export function fewShotPrompt(examples: readonly string[], tokenizer: Tokenizer): TargetPrompt {
  const text = [LIST_HEADER, ...examples.map((example, i) => `${i + 1}. ${example}`), `${examples.length + 1}.`].join(
    '\n',
  );
  return { tokenIds: tokenizer.encode(text), text };
}

/**
 * The examples of request `r`: up to two accepted synthetic prompts (so the list drifts away from
 * the seeds, as in self-instruct) and seeds for the rest, drawn without replacement and shuffled
 * by a generator seeded with (seed, r).
 */
export function pickExamples(
  seeds: readonly string[],
  accepted: readonly SynthPrompt[],
  synth: SynthConfig,
  r: number,
): string[] {
  const random = new SeededRandom((Math.imul(synth.seed + 1, 0x9e3779b1) ^ r) >>> 0);
  const synthetic = Math.min(2, accepted.length, synth.examples_per_request - 1);
  const fromSeeds = Math.min(synth.examples_per_request - synthetic, seeds.length);
  const examples = [
    ...draw(seeds, fromSeeds, random),
    ...draw(
      accepted.map((p) => p.text),
      synthetic,
      random,
    ),
  ];
  return draw(examples, examples.length, random);
}

/** `count` items drawn without replacement (a partial Fisher–Yates shuffle). */
function draw<T>(items: readonly T[], count: number, random: SeededRandom): T[] {
  const pool = [...items];
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random.nextFloat() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count);
}

/** Ids whose text holds a line break (each ends a list item), and BOS (a base model starting a new document). */
export function lineEndIds(tokenizer: Tokenizer): number[] {
  const ids: number[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    if (!tokenizer.isSpecial(id) && tokenizer.tokenBytes(id).includes(0x0a)) ids.push(id);
  }
  if (tokenizer.bosId !== undefined) ids.push(tokenizer.bosId);
  return ids;
}

/** The prompt a completion wrote, or why it is not one. */
export function candidateText(
  completion: Completion,
  tokenizer: Tokenizer,
  synth: Pick<SynthConfig, 'min_chars' | 'max_chars'>,
): { text: string } | { reason: RejectReason } {
  const decoded = tokenizer.decode(completion.tokenIds);
  const lineBreak = decoded.indexOf('\n');
  let text = (lineBreak >= 0 ? decoded.slice(0, lineBreak) : decoded).trim();
  if (lineBreak < 0 && completion.finishReason === 'length') {
    // Cut off by max_tokens: keep it only up to its last complete sentence.
    const sentenceEnd = Math.max(text.lastIndexOf('.'), text.lastIndexOf('?'), text.lastIndexOf('!'));
    if (sentenceEnd < 0) return { reason: 'truncated' };
    text = text.slice(0, sentenceEnd + 1);
  }
  text = text.replace(/^\d+[.)]\s*/, ''); // a model that wrote its own list number
  if (text.includes('\uFFFD')) return { reason: 'invalid-text' };
  if (!text) return { reason: 'empty' };
  if (text.length < synth.min_chars) return { reason: 'too-short' };
  if (text.length > synth.max_chars) return { reason: 'too-long' };
  return { text };
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function describeRejections(rejected: Record<RejectReason, number>): string {
  const parts = REJECT_REASONS.filter((reason) => rejected[reason] > 0).map(
    (reason) => `${rejected[reason]} ${reason}`,
  );
  return parts.length ? `rejected: ${parts.join(', ')}` : 'none rejected';
}
