// Quality of `fireopt train` with stories260K as the target (run on the built dist: npm run build).
// Real prompt openings (ShareGPT, Spec-Bench, GSM8K questions) → fireopt ingest → fireopt distill
// (greedy, top-4 log-probabilities, stories260K through llama.cpp) → fireopt train with a draft of at
// most a quarter of the target's parameters, three inits side by side → held-out greedy hit rate.
// Prints one JSON object.
// Usage: [STEPS=1500] [BUDGET_S=…] [INITS=random,target,target-layers] [TL_LAYERS=1 TL_HIDDEN=96 TL_HEADS TL_KV_HEADS]
//   node bench/train-stories.mjs [workdir]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { STORIES_TARGETS_COMMANDS, writeStoriesWorkload } from '../scripts/stories-prompts.mjs';

const repo = resolve(import.meta.dirname, '..');
const shared = process.env.FIREOPT_SHARED ?? resolve(repo, '../shared');
const work = process.argv[2] ?? join(tmpdir(), `fireopt-bench-train-${process.pid}`);
mkdirSync(work, { recursive: true });
const fireopt = (...args) => {
  try {
    return execFileSync(process.execPath, [join(repo, 'bin/fireopt'), ...args], {
      cwd: work,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  } catch (error) {
    // Exit 3: train's verdict that no draft beats plain decoding or a model-free method; its summary is on stdout.
    const failed = /** @type {{ status?: number, stdout?: string }} */ (error);
    if (failed.status === 3 && failed.stdout) return failed.stdout;
    throw error;
  }
};

const modelPath = join(shared, 'models/stories260K/stories260K.bin');
const tokenizerPath = join(shared, 'models/stories260K/tok512.bin');
const weights = writeStoriesWorkload(shared, work);
const promptCount = readFileSync(join(work, 'prompts.jsonl'), 'utf8').trim().split('\n').length;
const count = (w) =>
  w.tokenEmbedding.data.length +
  w.finalNorm.data.length +
  (w.output?.data.length ?? 0) +
  w.layers.reduce((s, l) => s + Object.values(l).reduce((t, x) => t + x.data.length, 0), 0);
const targetParameters = count(weights);

// A work folder that already holds the targets (an earlier run's) reuses them: distilling is most of the time.
const reuse = existsSync(join(work, 'targets', 'manifest.json'));
const t0 = Date.now();
if (!reuse) {
  for (const command of STORIES_TARGETS_COMMANDS) fireopt(...command);
}
const distillSeconds = reuse ? null : (Date.now() - t0) / 1000;

// Three ways to start the draft, each trained for STEPS steps (default 1,500, as the earlier random-init
// figure), or for BUDGET_S seconds when given (automatic selection with one candidate and one learning
// rate: the step count then follows from the step time measured over the first steps):
// random weights, the target's embeddings (same shape), and the target's own first block with its
// SwiGLU narrowed (target-layers). Each draft has at most a quarter of the target's parameters.
const budgetSeconds = Number(process.env.BUDGET_S ?? 1e6);
const smallShape = process.env.DRAFT_SHAPE ?? '{preset: draft-nano, dim: 32, n_layers: 2, n_heads: 2, n_kv_heads: 1}';
// TL_HEADS / TL_KV_HEADS narrow the cut's attention too (whole GQA groups; default: all of the target's heads).
const cutHeads = [
  process.env.TL_HEADS && `n_heads: ${process.env.TL_HEADS}`,
  process.env.TL_KV_HEADS && `n_kv_heads: ${process.env.TL_KV_HEADS}`,
].filter(Boolean);
const cutKeys = [`n_layers: ${process.env.TL_LAYERS ?? 1}`, `hidden_dim: ${process.env.TL_HIDDEN ?? 96}`, ...cutHeads];
const cutShape = `{${cutKeys.join(', ')}}`;
const variants = [
  { init: 'random', shape: smallShape, lr: Number(process.env.LR ?? 0.005) },
  { init: 'target', shape: smallShape, lr: Number(process.env.LR ?? 0.005) },
  { init: 'target-layers', shape: cutShape, lr: Number(process.env.TL_LR ?? 0.002) },
].filter((v) => !process.env.INITS || process.env.INITS.split(',').includes(v.init));
const results = [];
for (const variant of variants) {
  // A rerun in the same work folder trains afresh: this script's own earlier run folder goes.
  rmSync(join(work, `run-${variant.init}`), { recursive: true, force: true });
  const t0 = Date.now();
  const summary = JSON.parse(
    fireopt(
      '--json',
      '--quiet',
      'train',
      'targets',
      '--out',
      `run-${variant.init}`,
      '--target-model',
      modelPath,
      '--set',
      `train.tokenizer=${tokenizerPath}`,
      '--set',
      `train.init=${variant.init}`,
      '--set',
      `train.search.models=[${variant.shape}]`,
      '--set',
      `train.search.learning_rates=[${variant.lr}]`,
      '--set',
      `train.time_budget_s=${budgetSeconds}`,
      '--set',
      'train.backend=wasm',
      '--set',
      `train.draft_vocab_size=${process.env.DRAFT_VOCAB ?? 0}`,
      '--set',
      'train.seq_len=128',
      '--set',
      'train.batch_size=16',
      '--set',
      `train.max_steps=${process.env.STEPS ?? 1500}`,
      '--set',
      'train.warmup_steps=50',
      '--set',
      'train.eval_every=250',
      '--set',
      'train.patience=0',
    ),
  );
  const w = summary.winner;
  results.push({
    init: variant.init,
    draft: w.model,
    lr: variant.lr,
    draft_parameters: w.parameters,
    parameter_fraction: w.parameters / targetParameters,
    vocab: summary.vocab,
    steps: w.steps,
    train_s: (Date.now() - t0) / 1000,
    tokens_per_s: Math.round(w.tokensPerSec),
    untrained_hit_rate: w.untrained.hitRate,
    heldout_hit_rate: w.best.hitRate,
    heldout_tokens: w.best.tokens,
    acceptance_length_k4: w.best.acceptanceLength,
    expected_speedup_k4: w.best.expectedSpeedup,
    cost_ratio: w.cost.ratio,
    cost_source: w.cost.source,
    best_step: w.best.step,
    outcome: summary.outcome,
    model_free: summary.modelFree,
  });
}
const manifest = JSON.parse(readFileSync(join(work, 'targets/manifest.json'), 'utf8'));
console.log(
  JSON.stringify(
    {
      prompts: promptCount,
      target_rows: manifest.counts.rows,
      completion_tokens: manifest.tokens.completion,
      distill_s: distillSeconds,
      target_parameters: targetParameters,
      budget_s: budgetSeconds,
      load_average: loadavg(),
      variants: results,
    },
    null,
    2,
  ),
);
