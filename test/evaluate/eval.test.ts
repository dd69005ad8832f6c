/**
 * fireopt eval and fireopt compare through the CLI, on real targets: stories260K (GGUF) distilled
 * greedily over real ShareGPT openings, evaluated with real drafts (stories260K with a layer dropped
 * and weight noise, two noise levels) and the model-free baselines.
 */
import { spawnSync } from 'node:child_process';
import { Resvg } from '@resvg/resvg-js';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportSchema, type EvalReport } from '../../src/evaluate/report-schema.js';
import { writeLlamaGguf } from '../../src/formats/gguf-llama.js';
import { readLlama2cCheckpoint } from '../../src/formats/llama2c.js';
import { readLlama2cTokenizer } from '../../src/formats/llama2c-tokenizer.js';
import { runCli } from '../helpers/cli.js';
import { haveShared, sharedPath, SHAREGPT, STORIES260K, TOK512 } from '../helpers/shared.js';
import { writeNoisyDraft, type NoisyDraft } from '../speculation/fixtures.js';

let work: string;
let good: NoisyDraft;
let poor: NoisyDraft;
let targets: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'fireopt-eval-'));
  good = writeNoisyDraft({ noise: 0.05, keepLayers: 4 });
  poor = writeNoisyDraft({ noise: 0.3, keepLayers: 3, seed: 3 });
  const sharegpt = JSON.parse(readFileSync(sharedPath(SHAREGPT), 'utf8')) as Array<{
    conversations: Array<{ value: string }>;
  }>;
  const file = join(work, 'prompts.jsonl');
  // Every prompt carries a metadata tag (as gateways and OpenAI stored completions record them).
  writeFileSync(
    file,
    sharegpt
      .slice(20, 84)
      .map((c, i) =>
        JSON.stringify({
          prompt: c.conversations[0].value.split(/\s+/).slice(0, 8).join(' '),
          metadata: { team: i % 3 === 0 ? 'search' : 'support' },
        }),
      )
      .join('\n') + '\n',
  );
  const dataset = join(work, 'dataset');
  const ingested = await runCli(['--quiet', 'ingest', file, '--out', dataset, '--heldout', '0.5']);
  expect(ingested.code, ingested.stderr).toBe(0);
  targets = join(work, 'targets');
  const distilled = await runCli([
    '--quiet',
    'distill',
    dataset,
    '--out',
    targets,
    '--target-model',
    good.targetGguf,
    '--max-tokens',
    '64',
    '--top-logprobs',
    '4',
    '--set',
    'target.kv_cache_type=f32',
  ]);
  expect(distilled.code, distilled.stderr).toBe(0);
});

afterAll(() => {
  good?.remove();
  poor?.remove();
  rmSync(work, { recursive: true, force: true });
});

function readReportFile(dir: string): EvalReport {
  return reportSchema.parse(JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')));
}

const haveInputs = haveShared(STORIES260K, TOK512, SHAREGPT);

describe.skipIf(!haveInputs)('fireopt eval', () => {
  let goodOut: string;

  it('writes a schema-valid report with baselines, sampling acceptance and slices', async () => {
    goodOut = join(work, 'eval-good');
    const result = await runCli([
      '--quiet',
      'eval',
      '--model',
      good.checkpoint,
      '--data',
      targets,
      '--baseline',
      'prompt-lookup',
      '--baseline',
      'suffix',
      '--baseline',
      poor.checkpoint,
      '--cost-ratio',
      '0.1',
      '--out',
      goodOut,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const report = readReportFile(goodOut);
    expect(report.candidates.map((c) => c.kind)).toEqual(['draft', 'prompt-lookup', 'suffix', 'draft']);
    const [draft, lookup, suffix, poorDraft] = report.candidates;
    expect(report.data.rows).toBeGreaterThan(10);
    // Slices by metadata tag: the two teams partition the rows.
    const tagSlices = draft.slices.filter((slice) => slice.dimension === 'tag');
    expect(tagSlices.map((slice) => slice.value).sort()).toEqual(['team=search', 'team=support']);
    expect(tagSlices.reduce((sum, slice) => sum + slice.rows, 0)).toBe(report.data.rows);
    expect(readFileSync(join(goodOut, 'report.md'), 'utf8')).toContain('team=search');
    expect(report.data.rows_with_top_k).toBe(report.data.rows);
    // The greedy hit rate is the fraction of positions where m_t ≥ 1, i.e. k = 1 acceptance.
    expect(draft.greedy_hit_rate).toBeCloseTo(draft.by_k[0].accepted / draft.by_k[0].drafted, 1);
    expect(draft.by_k[0].tau).toBeCloseTo(report.data.tokens / draft.by_k[0].steps, 12);
    for (let k = 1; k < 8; k++) expect(draft.by_k[k].tau).toBeGreaterThanOrEqual(draft.by_k[k - 1].tau);
    expect(draft.by_k[draft.best_k - 1].speedup).toBe(draft.best_speedup);
    expect(draft.best_speedup).toBeGreaterThan(poorDraft.best_speedup);
    expect(lookup.cost_ratio).toBe(0);
    expect(suffix.cost_ratio_source).toBe('model-free');
    expect(lookup.sampling_acceptance).toBeNull();
    // Sampling acceptance Σ min(p, q) lies between its bounds; the unknown mass bounds the gap.
    const sampling = draft.sampling_acceptance!;
    expect(sampling.positions).toBe(report.data.tokens);
    expect(sampling.lower).toBeGreaterThan(0.3);
    expect(sampling.upper - sampling.lower).toBeLessThanOrEqual(sampling.unknown_target_mass + 1e-9);
    expect(draft.slices.filter((s) => s.dimension === 'source_file')).toHaveLength(1);
    expect(draft.conversations.reduce((n, c) => n + c.tokens, 0)).toBe(report.data.tokens);
    expect(report.winner).toBe(report.candidates.reduce((a, b) => (b.best_speedup > a.best_speedup ? b : a)).name);
    const markdown = readFileSync(join(goodOut, 'report.md'), 'utf8');
    expect(markdown).toContain('## τ and speed-up by k');
    expect(markdown).toContain(
      report.winner === draft.name ? 'beats every baseline' : `A baseline wins: ${report.winner}`,
    );
  });

  it('says plainly when a baseline wins', async () => {
    const out = join(work, 'eval-poor');
    const result = await runCli([
      '--quiet',
      'eval',
      '--model',
      poor.checkpoint,
      '--data',
      targets,
      '--baseline',
      good.checkpoint,
      '--out',
      out,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const report = readReportFile(out);
    expect(report.winner).toBe(report.candidates[1].name);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain(`**A baseline wins: ${report.candidates[1].name}**`);
  });

  it('renders plots that are valid SVG images', () => {
    for (const name of ['acceptance-by-position.svg', 'tau-vs-k.svg', 'speedup-vs-k.svg', 'slices.svg']) {
      const path = join(goodOut, name);
      const svg = readFileSync(path, 'utf8');
      expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      expect(svg).toContain(name === 'slices.svg' ? '<rect x=' : '<polyline');
      // resvg (a full SVG renderer) rasterises it; the image has drawn pixels of several colours.
      const image = new Resvg(svg, { font: { loadSystemFonts: true } }).render();
      expect([image.width, image.height]).toEqual([640, 400]);
      const colours = new Set<number>();
      const pixels = image.pixels;
      for (let i = 0; i < pixels.length; i += 4) colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
      expect(colours.size).toBeGreaterThan(5);
      writeFileSync(join(work, name.replace('.svg', '.png')), image.asPng());
    }
  });

  it('pairs the suffix tree with the draft (--baseline hybrid), its threshold chosen on train rows', async () => {
    const evalWith = async (out: string, ...extra: string[]) => {
      const result = await runCli([
        '--quiet',
        'eval',
        '--model',
        good.checkpoint,
        '--data',
        targets,
        '--baseline',
        'suffix',
        '--baseline',
        'hybrid',
        '--cost-ratio',
        '0.1',
        '--out',
        join(work, out),
        ...extra,
      ]);
      expect(result.code, result.stderr).toBe(0);
      return readReportFile(join(work, out));
    };
    const report = await evalWith('eval-hybrid');
    expect(report.candidates.map((c) => c.kind)).toEqual(['draft', 'suffix', 'hybrid']);
    const [draft, , hybrid] = report.candidates;
    const h = hybrid.hybrid!;
    expect(h).toMatchObject({ draft: draft.name, chosen_by: 'calibration' });
    // Every tenth of the train split's rows (about half of 64 prompts) calibrates it.
    expect(h.calibration_rows).toBeGreaterThanOrEqual(2);
    expect(h.trials.map((t) => t.min_match)).toEqual([null, 8, 7, 6, 5, 4, 3, 2, 1]);
    const bestTrial = h.trials.reduce((a, b) => (b.best_speedup > a.best_speedup + 1e-12 ? b : a));
    expect(h.min_match).toBe(bestTrial.min_match);
    expect(hybrid.cost_ratio).toBe(0.1);
    expect(hybrid.path).toBe(draft.path);
    // Only the draft's steps pay k·c: S = τ / (k·c·share + 1) at every k.
    for (const entry of hybrid.by_k)
      expect(entry.speedup).toBeCloseTo(entry.tau / (entry.k * 0.1 * h.draft_share_by_k[entry.k - 1] + 1), 12);
    expect(readFileSync(join(work, 'eval-hybrid', 'report.md'), 'utf8')).toContain('- hybrid: the suffix tree where');

    // With the tree trusted at every match, it answers some steps; never trusted, the hybrid is the draft.
    const always = (await evalWith('eval-hybrid-1', '--set', 'eval.hybrid.min_match=1')).candidates[2];
    expect(always.hybrid!.chosen_by).toBe('given');
    expect(Math.min(...always.hybrid!.draft_share_by_k)).toBeLessThan(1);
    const never = (await evalWith('eval-hybrid-99', '--set', 'eval.hybrid.min_match=99')).candidates;
    expect(never[2].hybrid!.draft_share_by_k.every((share) => share === 1)).toBe(true);
    expect(never[2].by_k.map((e) => [e.tau, e.speedup])).toEqual(never[0].by_k.map((e) => [e.tau, e.speedup]));
  });

  it('refuses a hybrid without a draft to pair (exit 2)', async () => {
    for (const args of [
      ['--model', 'hybrid'],
      ['--model', 'prompt-lookup', '--baseline', 'hybrid'],
    ]) {
      const result = await runCli(['eval', ...args, '--data', targets, '--out', join(work, 'no-hybrid')]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('the hybrid pairs the suffix tree with a draft');
      expect(existsSync(join(work, 'no-hybrid'))).toBe(false);
    }
  });

  it('refuses data that is not a targets directory, with a hint (exit 2)', async () => {
    const result = await runCli(['eval', '--model', 'suffix', '--data', work, '--out', join(work, 'x')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/not a fireopt targets/);
  });
});

describe.skipIf(!haveInputs)('fireopt eval --measure-speedup llama-cpp', () => {
  // Small settings: the point is the plumbing and the output check, not timings (never asserted).
  const small = [
    '--speedup-k',
    '1,3',
    '--speedup-prompts',
    '3',
    '--speedup-runs',
    '1',
    '--set',
    'eval.speedup.max_tokens=24',
    '--set',
    'eval.speedup.warmup_runs=0',
  ];

  it('measures real speculative decoding beside the prediction, outputs equal to plain decoding', async () => {
    const out = join(work, 'eval-measured');
    const result = await runCli([
      'eval',
      '--model',
      good.checkpoint,
      '--data',
      targets,
      '--baseline',
      'prompt-lookup',
      '--measure-speedup',
      'llama-cpp',
      '--target-model',
      good.targetGguf,
      ...small,
      '--set',
      'eval.cost.runs=1',
      '--set',
      'eval.cost.warmup_runs=0',
      '--set',
      'eval.cost.steps=4',
      '--out',
      out,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const report = readReportFile(out);
    const measured = report.measured!;
    expect(measured).not.toBeNull();
    expect(measured.identical_to_plain).toBe(true);
    expect(measured.prompts).toBe(3);
    expect(measured.tokens).toBeGreaterThan(0);
    expect(measured.engine_version).toMatch(/^llama\.cpp /);
    expect(measured.candidates.map((c) => c.name)).toEqual([report.candidates[0].name, 'prompt-lookup']);
    for (const candidate of measured.candidates) {
      expect(candidate.by_k.map((m) => m.k)).toEqual([1, 3]);
      for (const m of candidate.by_k) {
        // The real loop's τ is the simulator's on the same prompts and outputs.
        expect(Math.abs(m.tau - m.simulated_tau) / m.tau).toBeLessThan(0.02);
        expect(m.predicted_speedup).toBeGreaterThan(0);
        expect(m.speedup.median).toBeGreaterThan(0);
        expect(m.measured_over_predicted).toBeCloseTo(m.speedup.median / m.predicted_speedup, 9);
        expect(m.steps * m.tau).toBeCloseTo(measured.tokens, 6);
      }
    }
    // The draft evaluates itself; prompt lookup costs no draft model evaluation.
    expect(measured.candidates[0].by_k[1].draft_evaluations).toBeGreaterThan(0);
    expect(measured.candidates[1].by_k[1].draft_evaluations).toBe(0);
    expect(measured.candidates[0].by_k[1].draft_cost_in_run).toBeGreaterThan(0);
    expect(measured.candidates[1].by_k[1].draft_cost_in_run).toBe(0);
    expect(measured.candidates[1].by_k[1].verify_cost_in_run).toBeGreaterThan(0);
    // Predicted from the cost phase: this draft's measured c and v_k.
    const draft = report.candidates[0];
    expect(draft.cost_ratio_source).toBe('measured');
    const k3 = measured.candidates[0].by_k[1];
    // Step by step (speedupFromCounts): a draft drafts k but at each completion's end, so τ / (k·c + v_k) nearly.
    const flat = k3.simulated_tau / (3 * draft.cost_ratio + (draft.verify_cost_by_k as number[])[2]);
    expect(Math.abs(k3.predicted_speedup_cost_phase - flat) / flat).toBeLessThan(0.1);
    // Predicted from the costs paid in the same round (one round here, so the medians are that round's terms):
    // at k = 1 a step drafts 0 or 1 tokens, so the report alone gives P_target + P_draft + Σ_d n_d·(v_d + d·e + o).
    const costs = measured.costs_in_run;
    expect(costs.verify_ms_by_drafted).toHaveLength(4);
    expect(costs.plain_step_ms).toBeGreaterThan(0);
    const plainWallMs = (measured.tokens / measured.plain_tokens_per_second.median) * 1000;
    for (const candidate of measured.candidates) {
      const { draft_prefill_ms, draft_evaluation_ms, step_overhead_ms, cost_ratio } = candidate.costs_in_run;
      expect(cost_ratio).toBeCloseTo(draft_evaluation_ms / costs.plain_step_ms, 9);
      const k1 = candidate.by_k[0];
      const [v0, v1] = costs.verify_ms_by_drafted;
      const predictedMs =
        costs.target_prefill_ms +
        draft_prefill_ms +
        (k1.steps - k1.drafted) * (v0 + step_overhead_ms) +
        k1.drafted * (v1 + draft_evaluation_ms + step_overhead_ms);
      expect(k1.predicted_speedup).toBeCloseTo(plainWallMs / predictedMs, 6);
    }
    expect(measured.candidates[0].costs_in_run.draft_evaluation_ms).toBeGreaterThan(0);
    expect(measured.candidates[1].costs_in_run).toMatchObject({ draft_evaluation_ms: 0, draft_prefill_ms: 0 });
    const markdown = readFileSync(join(out, 'report.md'), 'utf8');
    expect(markdown).toContain('## Measured');
    expect(markdown).toContain('Every output equalled plain greedy decoding');
    expect(readFileSync(join(out, 'speedup-measured.svg'), 'utf8')).toContain('predicted');
    expect(result.stdout).toMatch(/measured in llama\.cpp .*outputs equal to plain decoding/);
  });

  it('refuses a draft whose vocabulary differs from the target (exit 2)', async () => {
    // The same target weights with one token's text changed: another vocabulary.
    const weights = readLlama2cCheckpoint(sharedPath(STORIES260K));
    const vocabulary = readLlama2cTokenizer(sharedPath(TOK512), weights.config.vocabSize);
    vocabulary.tokens[300] = 'fireopt-other-token';
    const otherTarget = join(work, 'other-vocab.gguf');
    writeLlamaGguf(otherTarget, weights, vocabulary, { name: 'other-vocabulary' });
    const out = join(work, 'eval-refused');
    const result = await runCli([
      'eval',
      '--model',
      good.checkpoint,
      '--data',
      targets,
      '--measure-speedup',
      'llama-cpp',
      '--measure-cost',
      'given',
      '--target-model',
      otherTarget,
      ...small,
      '--out',
      out,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/vocabulary of the draft .* differs from the target's vocabulary/);
    expect(result.stderr).toMatch(/token id 300/);
    expect(existsSync(out)).toBe(false);
  });

  it('needs the target GGUF (exit 2)', async () => {
    const result = await runCli([
      'eval',
      '--model',
      'prompt-lookup',
      '--data',
      targets,
      '--measure-speedup',
      'llama-cpp',
      '--out',
      join(work, 'eval-no-target'),
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/needs the target GGUF/);
  });
});

describe.skipIf(!haveInputs)('fireopt compare', () => {
  it('promotes a better draft, refuses a worse one, and rejects reports on different data', async () => {
    const poorOut = join(work, 'eval-poor-only');
    expect(
      (
        await runCli([
          '--quiet',
          'eval',
          '--model',
          poor.checkpoint,
          '--data',
          targets,
          '--cost-ratio',
          '0.1',
          '--out',
          poorOut,
        ])
      ).code,
    ).toBe(0);
    const goodReport = join(work, 'eval-good', 'report.json');
    const poorReport = join(poorOut, 'report.json');

    const promoted = await runCli(['--json', 'compare', poorReport, goodReport]);
    expect(promoted.code, promoted.stderr).toBe(0);
    const comparison = JSON.parse(promoted.stdout) as {
      promote: boolean;
      delta_speedup: { estimate: number; ci95: [number, number] };
      delta_tau: { estimate: number };
    };
    expect(comparison.promote).toBe(true);
    expect(comparison.delta_speedup.ci95[0]).toBeGreaterThan(0);
    expect(comparison.delta_speedup.ci95[0]).toBeLessThanOrEqual(comparison.delta_speedup.estimate);
    expect(comparison.delta_tau.estimate).toBeGreaterThan(0);

    // The reverse, and the same draft against itself, are not promoted: exit 3 (as run and drift), not 1 (a crash).
    const reverse = spawnSync(
      process.execPath,
      [join(__dirname, '../../bin/fireopt'), 'compare', goodReport, poorReport],
      { encoding: 'utf8' },
    );
    expect(reverse.status).toBe(3);
    expect(reverse.stdout).toContain('DO NOT PROMOTE');
    expect(reverse.stderr).not.toMatch(/error:/);
    const same = await runCli(['compare', goodReport, goodReport]);
    expect(same.code).toBe(3);
    // A margin larger than the gain blocks the promotion.
    const margin = await runCli([
      'compare',
      poorReport,
      goodReport,
      '--margin',
      String(comparison.delta_speedup.estimate + 1),
    ]);
    expect(margin.code).toBe(3);

    const changed = JSON.parse(readFileSync(goodReport, 'utf8')) as EvalReport;
    changed.data.sha256 = '0'.repeat(64);
    const otherData = join(work, 'other.json');
    writeFileSync(otherData, JSON.stringify(changed));
    const refused = await runCli(['compare', poorReport, otherData]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/different data/);
    expect(existsSync(poorReport)).toBe(true);
  });
});
