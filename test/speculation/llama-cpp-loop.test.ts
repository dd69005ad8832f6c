/**
 * The simulator against real speculative decoding in llama.cpp. Target: stories260K (GGUF). Draft:
 * stories260K with its last layer dropped and 5% weight noise (see fixtures.ts), as a fireopt draft
 * checkpoint for the tfjs simulator and as a GGUF for the loop. Prompts: real ShareGPT openings.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/index.js';
import { readDraftCheckpoint } from '../../src/formats/draft-checkpoint.js';
import { LlamaModel } from '../../src/model/index.js';
import {
  DraftModel,
  DraftModelProposer,
  acceptanceLength,
  emptyCounts,
  matchesFromTeacherForcing,
  matchesWithProposer,
  simulateGreedy,
  teacherForcedDraft,
} from '../../src/speculation/index.js';
import { LlamaCppSpeculator } from '../../src/speculation/llama-cpp-loop.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { haveShared, sharedPath, SHAREGPT, STORIES260K, TOK512 } from '../helpers/shared.js';
import { writeNoisyDraft, type NoisyDraft } from './fixtures.js';

const MAX_TOKENS = 96;
let fixture: NoisyDraft;
let speculator: LlamaCppSpeculator;
let draft: DraftModel;
let prompts: number[][];
let greedy: Array<{ tokens: number[]; wallMs: number }>;

beforeAll(async () => {
  fixture = writeNoisyDraft({ noise: 0.05, keepLayers: 4 });
  const tokenizer = await loadTokenizer(fixture.targetGguf);
  const sharegpt = JSON.parse(readFileSync(sharedPath(SHAREGPT), 'utf8')) as Array<{
    conversations: Array<{ value: string }>;
  }>;
  prompts = sharegpt
    .slice(0, 12)
    .map((c) => tokenizer.encode(c.conversations[0].value.split(/\s+/).slice(0, 6).join(' '), { addBos: true }));
  speculator = await LlamaCppSpeculator.open({ targetModel: fixture.targetGguf, draftModel: fixture.gguf });
  greedy = [];
  for (const prompt of prompts) greedy.push(await speculator.greedy(prompt, { maxTokens: MAX_TOKENS }));
  await initBackend('auto');
  draft = new DraftModel(LlamaModel.fromWeights(readDraftCheckpoint(fixture.checkpoint).weights, { trainable: false }));
});

afterAll(async () => {
  await speculator?.close();
  draft?.model.dispose();
  fixture?.remove();
});

describe.skipIf(!haveShared(STORIES260K, TOK512, SHAREGPT))('speculative decoding in llama.cpp', () => {
  it('outputs exactly the plain greedy tokens, and the simulator predicts its τ within 2% for every k', async () => {
    const scored = await teacherForcedDraft(
      draft,
      prompts.map((prompt, i) => ({ promptIds: prompt, completionIds: greedy[i].tokens })),
    );
    const lines: string[] = [];
    const greedyTokens = greedy.reduce((n, g) => n + g.tokens.length, 0);
    const greedyMs = greedy.reduce((n, g) => n + g.wallMs, 0);
    for (const k of [1, 2, 3, 4, 6, 8]) {
      const simulated = emptyCounts(k);
      let tokens = 0;
      let steps = 0;
      let wallMs = 0;
      for (let i = 0; i < prompts.length; i++) {
        const run = await speculator.decode(prompts[i], { k, maxTokens: MAX_TOKENS });
        expect(run.tokens).toEqual(greedy[i].tokens);
        tokens += run.tokens.length;
        steps += run.steps;
        wallMs += run.wallMs;
        simulateGreedy(matchesFromTeacherForcing(greedy[i].tokens, scored[i].predicted), k, simulated);
      }
      const realTau = tokens / steps;
      const simulatedTau = acceptanceLength(simulated);
      lines.push(
        `k=${k}: τ real ${realTau.toFixed(3)} simulated ` +
          `${simulatedTau.toFixed(3)}; ${((tokens / wallMs) * 1000).toFixed(0)} ` +
          `tokens/s speculative vs ${((greedyTokens / greedyMs) * 1000).toFixed(0)} plain`,
      );
      expect(Math.abs(simulatedTau - realTau) / realTau).toBeLessThan(0.02);
      expect(realTau).toBeGreaterThan(1.2); // the draft is useful: the comparison is not trivial
    }
    console.log(lines.join('\n'));
  });

  it('the KV-cache proposer and the batched teacher-forced pass give the same match lengths', async () => {
    const proposer = new DraftModelProposer(draft);
    const scored = await teacherForcedDraft(
      draft,
      prompts.slice(0, 3).map((prompt, i) => ({ promptIds: prompt, completionIds: greedy[i].tokens })),
      { tokensPerBatch: 256 },
    );
    for (let i = 0; i < 3; i++) {
      const incremental = await matchesWithProposer(proposer, prompts[i], greedy[i].tokens);
      expect(Array.from(incremental.matchLengths)).toEqual(
        Array.from(matchesFromTeacherForcing(greedy[i].tokens, scored[i].predicted).matchLengths),
      );
    }
  });
});
