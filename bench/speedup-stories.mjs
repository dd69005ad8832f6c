// FireOptimizer's table in wall-clock time: on a cost-realistic target (stories260K padded with
// output-neutral compute to ~25M parameters of work per step: src/speculation/padded-target.ts), the
// stories260K workload of bench/train-stories.mjs, measured by `fireopt eval --measure-speedup llama-cpp`:
// no speculation, a generic draft (trained on tinyshakespeare text, never on this target's outputs), the
// adapted draft (distilled from this target on this traffic) and prompt lookup. Then checks that the
// padded target's greedy outputs equal stories260K's on every measured prompt, distributions within 1e-4.
// Run on the built dist (npx tsc -p tsconfig.json). Prints one JSON object; the report is in <workdir>/eval.
// Usage: nice node bench/speedup-stories.mjs [workdir]
//   env: STEPS (train steps, 600), PAD ("dim,hidden,extra layers": 512,1536,3), K (2,4), PROMPTS (8),
//        MAX_TOKENS (64), RUNS (5), COST_RUNS (3), REUSE=1 (keep drafts and targets a previous run left in workdir)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { STORIES_TARGETS_COMMANDS, writeStoriesWorkload } from '../scripts/stories-prompts.mjs';
import { readLlama2cTokenizer } from '../dist/formats/llama2c-tokenizer.js';
import { writeLlamaGguf } from '../dist/formats/gguf-llama.js';
import { readTargetRows } from '../dist/formats/targets-schema.js';
import { llamaCppAgreement, padTarget, parameterCount } from '../dist/speculation/padded-target.js';

const repo = resolve(import.meta.dirname, '..');
const shared = process.env.FIREOPT_SHARED ?? resolve(repo, '../shared');
const work = resolve(process.argv[2] ?? join(tmpdir(), `fireopt-bench-speedup-${process.pid}`));
mkdirSync(work, { recursive: true });
const reuse = process.env.REUSE === '1';
const log = (line) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
const fireopt = (...args) =>
  execFileSync(process.execPath, [join(repo, 'bin/fireopt'), ...args], {
    cwd: work,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
const seconds = (t0) => Math.round((Date.now() - t0) / 100) / 10;

// --- the target: stories260K, and the same function at a 25M-parameter model's cost ------------
const weights = writeStoriesWorkload(shared, work); // stories260K.gguf, prompts.jsonl
const vocabulary = readLlama2cTokenizer(join(shared, 'models/stories260K/tok512.bin'), weights.config.vocabSize);
const [dim, hiddenDim, extraLayers] = (process.env.PAD ?? '512,1536,3').split(',').map(Number);
const padded = padTarget(weights, { dim, hiddenDim, extraLayers });
writeLlamaGguf(join(work, 'padded.gguf'), padded, vocabulary, { name: 'stories260K-padded' });
log(`padded target: ${parameterCount(padded)} parameters (stories260K: ${parameterCount(weights)})`);

// --- the adapted draft: distilled from this target (stories260K's function) on this traffic -----
const trainDraft = (targets, out) =>
  fireopt(
    '--quiet',
    'train',
    targets,
    '--out',
    out,
    '--target-model',
    join(shared, 'models/stories260K/stories260K.bin'),
    '--set',
    `train.tokenizer=${join(shared, 'models/stories260K/tok512.bin')}`,
    '--set',
    'train.select=off',
    '--set',
    'train.backend=wasm',
    '--set',
    'train.model={preset: draft-nano, dim: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1}',
    '--set',
    'train.seq_len=128',
    '--set',
    'train.batch_size=16',
    '--set',
    'train.lr=0.005',
    '--set',
    `train.max_steps=${process.env.STEPS ?? 600}`,
    '--set',
    'train.warmup_steps=50',
    '--set',
    'train.eval_every=200',
    '--set',
    'train.patience=0',
  );
let t0 = Date.now();
if (!(reuse && existsSync(join(work, 'targets/manifest.json')))) {
  // stories260K.gguf computes what padded.gguf computes (checked below), at a fraction of the time.
  for (const command of STORIES_TARGETS_COMMANDS) fireopt(...command);
}
const distillSeconds = seconds(t0);
t0 = Date.now();
if (!(reuse && existsSync(join(work, 'adapted/draft/manifest.json')))) trainDraft('targets', 'adapted');
const adaptedSeconds = seconds(t0);
log(`adapted draft: distill ${distillSeconds} s, train ${adaptedSeconds} s`);

// --- the generic draft: the same shape trained on generic text (tinyshakespeare) ---------------
t0 = Date.now();
if (!(reuse && existsSync(join(work, 'generic/draft/manifest.json')))) {
  const speeches = readFileSync(join(shared, 'data/tinyshakespeare/input.txt'), 'utf8')
    .split(/\n\s*\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  const rows = [];
  for (let i = 0; i + 1 < speeches.length && rows.length < 1500; i += 2)
    rows.push({ conversation_id: `shakespeare-${i}`, prompt: speeches[i], completion: speeches[i + 1] });
  writeFileSync(join(work, 'generic.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  fireopt(
    '--quiet',
    'ingest',
    'generic.jsonl',
    '--format',
    'prompt-completion',
    '--out',
    'generic-dataset',
    '--heldout',
    '0.05',
  );
  fireopt(
    '--quiet',
    'distill',
    'generic-dataset',
    '--out',
    'generic-targets',
    '--mode',
    'traces',
    '--tokenizer',
    'stories260K.gguf',
    '--top-logprobs',
    '0',
  );
  trainDraft('generic-targets', 'generic');
}
const genericSeconds = seconds(t0);
log(`generic draft: ${genericSeconds} s`);

// --- the table: eval --measure-speedup on the padded target ------------------------------------
t0 = Date.now();
const loadBefore = loadavg();
const summary = JSON.parse(
  fireopt(
    '--json',
    'eval',
    '--model',
    'adapted/draft',
    '--data',
    'targets',
    '--baseline',
    'generic/draft',
    '--baseline',
    'prompt-lookup',
    '--measure-speedup',
    'llama-cpp',
    '--target-model',
    'padded.gguf',
    '--speedup-k',
    process.env.K ?? '2,4',
    '--speedup-prompts',
    process.env.PROMPTS ?? '8',
    '--speedup-runs',
    process.env.RUNS ?? '5',
    '--set',
    `eval.speedup.max_tokens=${process.env.MAX_TOKENS ?? 64}`,
    // c and v_k, measured per draft: fewer rounds than eval's default (the measurement itself is the point here).
    '--set',
    `eval.cost.runs=${process.env.COST_RUNS ?? 3}`,
    '--set',
    'eval.cost.warmup_runs=1',
    '--set',
    'eval.cost.steps=16',
    '--out',
    'eval',
    '--force',
  ),
);
const evalSeconds = seconds(t0);
const report = JSON.parse(readFileSync(join(work, 'eval/report.json'), 'utf8'));
const measured = report.measured;

// --- the padded target computes stories260K's function on every measured prompt ---------------
const wanted = new Set(measured.prompt_rows);
const prompts = [];
for await (const row of readTargetRows(join(work, 'targets/heldout.arrow')))
  if (wanted.has(row.id)) prompts.push(Array.from(row.prompt_token_ids));
const agreement = await llamaCppAgreement(join(work, 'stories260K.gguf'), join(work, 'padded.gguf'), prompts, {
  maxTokens: measured.max_tokens,
});

const best = (c) => c.by_k.reduce((a, b) => (b.speedup.median > a.speedup.median ? b : a));
const rows = measured.candidates.map((c) => {
  const candidate = report.candidates.find((r) => r.name === c.name);
  const b = best(c);
  return {
    method: c.name,
    hit_rate: candidate.greedy_hit_rate,
    cost_ratio: candidate.cost_ratio,
    k: b.k,
    tau: b.tau,
    simulated_tau: b.simulated_tau,
    predicted: b.predicted_speedup,
    predicted_cost_phase: b.predicted_speedup_cost_phase,
    measured: b.speedup.median,
    measured_range: [b.speedup.min, b.speedup.max],
    measured_over_predicted: b.measured_over_predicted,
    identical_to_plain: measured.identical_to_plain,
  };
});
console.log(
  JSON.stringify(
    {
      padded_parameters: parameterCount(padded),
      padding: { dim, hiddenDim, extraLayers },
      agreement,
      plain_tokens_per_second: measured.plain_tokens_per_second,
      engine: measured.engine_version,
      prompts: measured.prompts,
      max_tokens: measured.max_tokens,
      runs: measured.runs,
      rows,
      by_k: measured.candidates.map((c) => ({
        name: c.name,
        by_k: c.by_k.map((m) => ({
          k: m.k,
          tau: m.tau,
          predicted: m.predicted_speedup,
          predicted_cost_phase: m.predicted_speedup_cost_phase,
          measured: m.speedup.median,
          ratio: m.measured_over_predicted,
          v_in_run: m.verify_cost_in_run,
          c_in_run: m.draft_cost_in_run,
        })),
      })),
      cost: report.candidates.map((c) => ({ name: c.name, c: c.cost_ratio, v: c.verify_cost_by_k })),
      costs_in_run: {
        ...measured.costs_in_run,
        candidates: measured.candidates.map((c) => ({ name: c.name, ...c.costs_in_run })),
      },
      seconds: { distill: distillSeconds, adapted: adaptedSeconds, generic: genericSeconds, eval: evalSeconds },
      load_average: { before: loadBefore, after: loadavg(), measured: measured.load_average },
      winner: summary.winner,
    },
    null,
    2,
  ),
);
