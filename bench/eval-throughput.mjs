// Simulator throughput: held-out target tokens per minute that `teacherForcedDraft` + the greedy
// simulation for k = 1..8 evaluate for a draft-sized model (draft-small: d256, 4 layers, vocab 32000),
// on real Llama-2-tokenized text (AlpacaEval outputs of Llama-3-8B-Instruct). Run on built dist:
//   npm run build && node bench/eval-throughput.mjs [--rows 64] [--vocab 32000] [--preset draft-small]
// --smoke: the smallest run (2 rows, draft-nano) that checks the script works, in seconds.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../dist/backend/index.js';
import { LlamaModel, presetConfig, randomWeights } from '../dist/model/index.js';
import {
  DraftModel,
  teacherForcedDraft,
  matchesFromTeacherForcing,
  simulateGreedy,
  emptyCounts,
} from '../dist/speculation/index.js';
import { loadTokenizer } from '../dist/tokenizer/load.js';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '64' },
    vocab: { type: 'string', default: '32000' },
    preset: { type: 'string', default: 'draft-small' },
    batch: { type: 'string', default: '1024' },
    smoke: { type: 'boolean', default: false },
  },
});
if (values.smoke) Object.assign(values, { rows: '2', preset: 'draft-nano' });
const shared = process.env.FIREOPT_SHARED ?? resolve(import.meta.dirname, '../../shared');
const backend = await initBackend('auto');
const tokenizer = await loadTokenizer(`${shared}/models/vocab/ggml-vocab-llama-spm.gguf`);
const outputs = JSON.parse(
  readFileSync(`${shared}/data/alpaca_eval_outputs/${'Meta-Llama-3-8B-Instruct.json'}`, 'utf8'),
);
const rows = outputs.slice(0, Number(values.rows)).map((o) => ({
  promptIds: tokenizer.encode(o.instruction, { addBos: true }).slice(0, 128),
  completionIds: tokenizer.encode(o.output).slice(0, 256),
}));
const vocab = Number(values.vocab);
const model = LlamaModel.fromWeights(
  randomWeights(
    presetConfig(/** @type {import('../dist/model/presets.js').PresetName} */ (values.preset), vocab, 512),
    { seed: 1 },
  ),
  { trainable: false },
);
const draft = new DraftModel(model);
const run = async () => {
  const started = performance.now();
  const scored = await teacherForcedDraft(draft, rows, { tokensPerBatch: Number(values.batch) });
  const counts = Array.from({ length: 8 }, (_, i) => emptyCounts(i + 1));
  rows.forEach((row, i) =>
    counts.forEach((c, k) =>
      simulateGreedy(matchesFromTeacherForcing(row.completionIds, scored[i].predicted), k + 1, c),
    ),
  );
  return (performance.now() - started) / 1000;
};
await run(); // warm-up
const seconds = await run();
const tokens = rows.reduce((n, r) => n + r.completionIds.length, 0);
const promptTokens = rows.reduce((n, r) => n + r.promptIds.length, 0);
console.log(
  JSON.stringify({
    backend: backend.name,
    preset: values.preset,
    vocab,
    rows: rows.length,
    completion_tokens: tokens,
    prompt_tokens: promptTokens,
    seconds: Number(seconds.toFixed(2)),
    heldout_tokens_per_min: Math.round((tokens / seconds) * 60),
  }),
);
model.dispose();
