// A count-based reference for bench/fireoptimizer-table.mjs (its AlpacaEval rows): does the training data
// itself carry the adaptation? Fits greedy unigram, bigram and trigram (backing off to bigram, then unigram)
// predictors on each draft's training completions (the same targets the drafts train on; `generic` = the
// generic corpus) and scores them, like `fireopt eval`'s greedy hit rate, on every held-out Llama-3
// completion position. No training, seconds.
// Usage: node bench/train-alpaca-ngram.mjs <workdir of fireoptimizer-table.mjs>   (after npm run build)
import { join } from 'node:path';
import { readTargetRows } from '../dist/formats/targets-schema.js';

const work = process.argv[2];
if (!work) throw new Error('usage: node bench/train-alpaca-ngram.mjs <workdir of bench/fireoptimizer-table.mjs>');

async function sequences(path) {
  const rows = [];
  for await (const row of readTargetRows(path))
    rows.push({ prompt: Array.from(row.prompt_token_ids), completion: Array.from(row.completion_token_ids) });
  return rows;
}
const bump = (map, key, next) => {
  let counts = map.get(key);
  if (!counts) map.set(key, (counts = new Map()));
  counts.set(next, (counts.get(next) ?? 0) + 1);
};
const mostFrequent = (counts) => {
  let best = -1;
  let bestCount = -1;
  for (const [id, count] of counts)
    if (count > bestCount || (count === bestCount && id < best)) [best, bestCount] = [id, count];
  return best;
};

const test = await sequences(join(work, 'llama3-test-targets/heldout.arrow'));
const results = [];
for (const name of ['llama3', 'gpt4', 'generic']) {
  // Contexts run into the prompt (as a draft's do); only completion tokens are predicted and counted.
  const unigram = new Map();
  const bigram = new Map();
  const trigram = new Map();
  for (const { prompt, completion } of await sequences(join(work, `${name}-train-targets/train.arrow`))) {
    const ids = [...prompt, ...completion];
    for (let t = prompt.length; t < ids.length; t++) {
      bump(unigram, 0, ids[t]);
      bump(bigram, ids[t - 1], ids[t]);
      bump(trigram, `${ids[t - 2]},${ids[t - 1]}`, ids[t]);
    }
  }
  const top = mostFrequent(unigram.get(0));
  const bigramBest = new Map([...bigram].map(([key, counts]) => [key, mostFrequent(counts)]));
  const trigramBest = new Map([...trigram].map(([key, counts]) => [key, mostFrequent(counts)]));
  let positions = 0;
  const hits = { unigram: 0, bigram: 0, trigram: 0 };
  for (const { prompt, completion } of test) {
    const ids = [...prompt, ...completion];
    for (let t = prompt.length; t < ids.length; t++) {
      positions++;
      const fromBigram = bigramBest.get(ids[t - 1]) ?? top;
      const fromTrigram = trigramBest.get(`${ids[t - 2]},${ids[t - 1]}`) ?? fromBigram;
      if (top === ids[t]) hits.unigram++;
      if (fromBigram === ids[t]) hits.bigram++;
      if (fromTrigram === ids[t]) hits.trigram++;
    }
  }
  results.push({
    trained_on: name,
    positions,
    unigram: hits.unigram / positions,
    bigram: hits.bigram / positions,
    trigram_backoff: hits.trigram / positions,
  });
}
console.log(JSON.stringify(results, null, 2));
