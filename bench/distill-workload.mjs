/**
 * The workload of the distill benches (bench/distill.mjs, bench/distill-fleet.mjs): the real stories260K
 * written as GGUF by fireopt, ShareGPT openings (first 8 words) ingested by fireopt's own ingest, and one
 * timed `runDistill` over that dataset with an engine the caller opened (model load is not counted).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configSchema } from '../dist/config/schema.js';
import { distillSchema } from '../dist/distill/config.js';
import { runDistill } from '../dist/distill/index.js';
import { writeLlamaGguf } from '../dist/formats/gguf-llama.js';
import { readLlama2cCheckpoint } from '../dist/formats/llama2c.js';
import { readLlama2cTokenizer } from '../dist/formats/llama2c-tokenizer.js';
import { readTargetRows } from '../dist/formats/targets-schema.js';
import { runIngest } from '../dist/ingest/index.js';
import { tokenizerIdentity } from '../dist/tokenizer/identity.js';
import { loadTokenizer } from '../dist/tokenizer/load.js';

/** Writes `<work>/stories260K.gguf` and ingests `promptCount` ShareGPT openings (returned) into `<work>/dataset`. */
export async function distillWorkload(shared, work, promptCount) {
  const weights = readLlama2cCheckpoint(join(shared, 'models/stories260K/stories260K.bin'));
  const vocabulary = readLlama2cTokenizer(join(shared, 'models/stories260K/tok512.bin'), weights.config.vocabSize);
  const gguf = join(work, 'stories260K.gguf');
  writeLlamaGguf(gguf, weights, vocabulary, { name: 'stories260K' });
  const tokenizer = await loadTokenizer(gguf);
  const sharegpt = JSON.parse(
    readFileSync(join(shared, 'data/sharegpt_prompts/ShareGPT_V3_filtered_500.json'), 'utf8'),
  );
  const prompts = sharegpt
    .slice(0, promptCount)
    .map((c) => c.conversations[0].value.split(/\s+/).slice(0, 8).join(' '));
  writeFileSync(join(work, 'prompts.jsonl'), `${prompts.map((prompt) => JSON.stringify({ prompt })).join('\n')}\n`);
  const dataset = join(work, 'dataset');
  await runIngest(configSchema.parse({ ingest: { inputs: [join(work, 'prompts.jsonl')], out: dataset, heldout: 0 } }));
  return { gguf, tokenizer, dataset, prompts };
}

let outCount = 0;

/**
 * One distill run of the workload through an open engine (greedy, no chat template), timed; fails unless
 * every row is ok. Returns the seconds, the summary and the rows (its output folder is removed).
 */
export async function timedDistill(workload, work, engine, { maxTokens, topLogprobs, concurrency, promptCount }) {
  const { gguf, tokenizer, dataset } = workload;
  const distill = distillSchema.parse({
    max_tokens: maxTokens,
    top_logprobs: topLogprobs,
    concurrency,
    chat_template: 'none',
  });
  const out = join(work, `targets-${outCount++}`);
  const started = performance.now();
  const summary = await runDistill(
    { dataset, out, distill, resolvedConfig: { distill } },
    {
      tokenizer,
      tokenizerIdentity: { source: gguf, identity: tokenizerIdentity(tokenizer) },
      openEngine: async () => engine,
      progress: () => {},
    },
  );
  const seconds = (performance.now() - started) / 1000;
  if (summary.counts.ok !== promptCount) throw new Error(`distill: ${summary.counts.ok} of ${promptCount} rows ok`);
  const rows = [];
  for await (const row of readTargetRows(join(out, 'train.arrow'))) rows.push(row);
  rmSync(out, { recursive: true, force: true });
  return { seconds, summary, rows };
}
