#!/usr/bin/env node
/**
 * Reproduces fireopt's demo target, datasets/demo-target.gguf, and the demo's generic draft,
 * datasets/demo-generic-draft/, with fireopt itself and nothing from the network:
 *
 *   1. corpus: the README.md of every package in node_modules (what `npm ci` installs from
 *      package-lock.json), split into paragraphs;
 *   2. tokenizer: a 512-token SentencePiece-style vocabulary (3 specials, 256 byte-fallback tokens,
 *      the corpus's characters, then BPE merges learned here) written as a vocab-only GGUF;
 *   3. target: `fireopt ingest` + `fireopt distill --mode traces` on the paragraphs, `fireopt train`
 *      (select off) of a Llama-architecture model (d128, 4 layers, 4 heads);
 *   3b. instruction tuning: the target becomes a docs assistant — it continues training on questions
 *      and answers in the demo's style (scripts/demo-qa.mjs) about *other* installed packages than the
 *      demo traffic's, mixed with README paragraphs — then `fireopt convert --to gguf --dtype f16`.
 *      Deployed targets are tuned for their use; this makes the demo's traffic specialised for it;
 *   4. generic draft: `fireopt distill` with that target (regenerate) over paragraph openings, then
 *      a draft-nano trained on them: a draft that knows the target but not any customer's traffic.
 *
 * Usage: npm run build && node scripts/demo-target.mjs [--steps 1500] [--tune-steps 500] [--draft-steps 400]
 *          [--work tmp/demo-target] [--reuse-pretrained]
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { conversations, trafficPackages } from './demo-qa.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '1500' },
    'tune-steps': { type: 'string', default: '500' },
    'draft-steps': { type: 'string', default: '400' },
    work: { type: 'string', default: join(root, 'tmp/demo-target') },
    // Reuse step 3 of an earlier run of this script in --work (its vocab.gguf and target-run/).
    'reuse-pretrained': { type: 'boolean', default: false },
  },
});
const work = resolve(values.work);
const { writeVocabOnlyGguf } = await import(join(root, 'dist/formats/gguf-llama.js'));
const { presetConfig } = await import(join(root, 'dist/model/presets.js'));

const VOCAB_SIZE = 512;
const SPACE = '\u2581';

function fireopt(...args) {
  console.log(`$ fireopt ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [join(root, 'bin/fireopt'), ...args], { stdio: 'inherit', cwd: root });
  if (result.status !== 0) throw new Error(`fireopt ${args[0]} failed (exit ${result.status})`);
}

/** 1. Paragraphs of the installed packages' READMEs, in a fixed order (sorted paths). */
function corpusParagraphs() {
  const modules = join(root, 'node_modules');
  const readmes = [];
  for (const name of readdirSync(modules).sort()) {
    const dirs = name.startsWith('@')
      ? readdirSync(join(modules, name))
          .sort()
          .map((n) => join(modules, name, n))
      : [join(modules, name)];
    for (const dir of dirs) {
      const file = ['README.md', 'readme.md', 'Readme.md'].map((f) => join(dir, f)).find((f) => existsSync(f));
      if (file) readmes.push(file);
    }
  }
  const paragraphs = [];
  for (const file of readmes) {
    const text = readFileSync(file, 'utf8')
      .replace(/\r/g, '')
      .replace(/<[^>]+>/g, '')
      .replace(/!\[[^\]]*\]\([^)]*\)/g, '');
    for (const block of text.split(/\n\s*\n/)) {
      const paragraph = block.replace(/\s+/g, ' ').trim();
      if (
        paragraph.length >= 40 &&
        paragraph.length <= 1200 &&
        /[a-z]{3}/.test(paragraph) &&
        !/[^\x20-\x7e]/.test(paragraph)
      )
        paragraphs.push(paragraph);
    }
  }
  return { readmes: readmes.length, paragraphs };
}

/** 2. BPE merges over space-prefixed words, turned into a SentencePiece vocabulary (score = −merge rank). */
function trainVocabulary(paragraphs) {
  const wordCounts = new Map();
  for (const p of paragraphs)
    for (const w of p.split(' ')) if (w) wordCounts.set(SPACE + w, (wordCounts.get(SPACE + w) ?? 0) + 1);
  const chars = new Map();
  for (const [w, n] of wordCounts) for (const c of w) chars.set(c, (chars.get(c) ?? 0) + n);
  const alphabet = [...chars.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([c]) => c);
  const words = [...wordCounts.entries()].map(([w, n]) => ({ symbols: [...w], n }));
  const merges = [];
  const budget = VOCAB_SIZE - 3 - 256 - alphabet.length;
  while (merges.length < budget) {
    const pairs = new Map();
    for (const { symbols, n } of words)
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i] + '\u0000' + symbols[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    let best;
    let bestCount = 0;
    for (const [key, count] of pairs)
      if (count > bestCount || (count === bestCount && key < best)) [best, bestCount] = [key, count];
    if (!best) break;
    const [left, right] = best.split('\u0000');
    merges.push(left + right);
    for (const word of words) {
      const s = word.symbols;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === left && s[i + 1] === right) s.splice(i, 2, left + right);
    }
  }
  const tokens = ['<unk>', '<s>', '</s>'];
  const scores = [0, 0, 0];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    scores.push(0);
    types.push(6);
  }
  merges.forEach((piece, rank) => {
    tokens.push(piece);
    scores.push(-rank);
    types.push(1);
  });
  alphabet.forEach((c, i) => {
    tokens.push(c);
    scores.push(-(merges.length + i));
    types.push(1);
  });
  return {
    model: 'llama',
    tokens,
    scores: Float32Array.from(scores),
    tokenTypes: Int32Array.from(types),
    bosId: 1,
    eosId: 2,
    unkId: 0,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
  };
}

if (!values['reuse-pretrained']) rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const { readmes, paragraphs } = corpusParagraphs();
console.log(
  `corpus: ${paragraphs.length} paragraphs from ${readmes} READMEs ` +
    `(${paragraphs.reduce((s, p) => s + p.length, 0)} characters)`,
);
const vocabGguf = join(work, 'vocab.gguf');
const model = `{preset: draft-tiny, n_layers: 4, n_heads: 4, n_kv_heads: 4}`;
// Training rows of the corpus: prompt = a paragraph's first words, completion = the rest.
const records = paragraphs.map((p) => {
  const cut = p.indexOf(' ', 24) > 0 ? p.indexOf(' ', 24) : 24;
  return JSON.stringify({ prompt: p.slice(0, cut), completion: p.slice(cut) });
});
if (!values['reuse-pretrained']) {
  const vocabulary = trainVocabulary(paragraphs);
  const targetConfig = presetConfig('draft-tiny', vocabulary.tokens.length, 512, {
    nLayers: 4,
    nHeads: 4,
    nKvHeads: 4,
  });
  writeVocabOnlyGguf(vocabGguf, targetConfig, vocabulary, { name: 'fireopt-demo-target' });
  // 3. The target: a language model of the corpus.
  writeFileSync(join(work, 'corpus.jsonl'), records.join('\n') + '\n');
  fireopt('--quiet', 'ingest', join(work, 'corpus.jsonl'), '--out', join(work, 'corpus'), '--heldout', '0.02');
  fireopt(
    '--quiet',
    'distill',
    join(work, 'corpus'),
    '--out',
    join(work, 'corpus-targets'),
    '--mode',
    'traces',
    '--tokenizer',
    vocabGguf,
    '--set',
    'distill.chat_template=none',
  );
  fireopt(
    '--quiet',
    'train',
    join(work, 'corpus-targets'),
    '--out',
    join(work, 'target-run'),
    '--max-steps',
    values.steps,
    '--set',
    'train.select=off',
    '--set',
    `train.model=${model}`,
    '--set',
    `train.tokenizer=${vocabGguf}`,
    '--set',
    'train.init=random',
    '--set',
    'train.seq_len=128',
    '--set',
    'train.batch_size=8',
    '--set',
    'train.lr=0.006',
    '--set',
    'train.warmup_steps=15',
    '--set',
    'train.loss={ce: 1, kl: 0, tv: 0}',
    '--set',
    `train.eval_every=${values.steps}`,
    '--set',
    'train.patience=0',
    '--set',
    'train.eval_rows=64',
  );
}

// 3b. Instruction tuning on Q&A about packages the demo traffic never asks about, plus README text.
const trafficSet = new Set(trafficPackages);
const tunePackages = readdirSync(join(root, 'node_modules'))
  .filter((n) => !n.startsWith('@') && !n.startsWith('.') && !trafficSet.has(n))
  .sort()
  .slice(0, 80);
writeFileSync(
  join(work, 'tune-qa.jsonl'),
  conversations(tunePackages, 'tune', 'fireopt-demo-target').join('\n') + '\n',
);
writeFileSync(join(work, 'tune-text.jsonl'), records.filter((_, i) => i % 4 === 0).join('\n') + '\n');
rmSync(join(work, 'tune-run'), { recursive: true, force: true });
fireopt(
  '--quiet',
  'ingest',
  join(work, 'tune-qa.jsonl'),
  join(work, 'tune-text.jsonl'),
  '--out',
  join(work, 'tune'),
  '--heldout',
  '0.05',
);
fireopt(
  '--quiet',
  'distill',
  join(work, 'tune'),
  '--out',
  join(work, 'tune-targets'),
  '--mode',
  'traces',
  '--tokenizer',
  vocabGguf,
  '--set',
  'distill.chat_template=none',
);
fireopt(
  '--quiet',
  'train',
  join(work, 'tune-targets'),
  '--out',
  join(work, 'tune-run'),
  '--max-steps',
  values['tune-steps'],
  '--set',
  'train.select=off',
  '--set',
  `train.model=${model}`,
  '--set',
  `train.tokenizer=${vocabGguf}`,
  '--set',
  'train.init=draft',
  '--set',
  `train.init_from=${join(work, 'target-run/draft')}`,
  '--set',
  'train.seq_len=128',
  '--set',
  'train.batch_size=8',
  '--set',
  'train.lr=0.003',
  '--set',
  'train.warmup_steps=10',
  '--set',
  'train.loss={ce: 1, kl: 0, tv: 0}',
  '--set',
  `train.eval_every=${values['tune-steps']}`,
  '--set',
  'train.patience=0',
  '--set',
  'train.eval_rows=64',
);
const targetGguf = join(root, 'datasets/demo-target.gguf');
fireopt(
  'convert',
  join(work, 'tune-run/draft'),
  '--to',
  'gguf',
  '--dtype',
  'f16',
  '--out',
  targetGguf,
  '--name',
  'fireopt-demo-target',
);

// 4. The generic draft: the target's own continuations of paragraph openings from every README.
const openings = paragraphs
  .filter((_, i) => i % 5 === 0)
  .slice(0, 600)
  .map((p) => JSON.stringify({ prompt: p.split(' ').slice(0, 8).join(' ') }));
writeFileSync(join(work, 'generic-prompts.jsonl'), openings.join('\n') + '\n');
fireopt('--quiet', 'ingest', join(work, 'generic-prompts.jsonl'), '--out', join(work, 'generic'), '--heldout', '0.1');
fireopt(
  '--quiet',
  'distill',
  join(work, 'generic'),
  '--out',
  join(work, 'generic-targets'),
  '--target-model',
  targetGguf,
  '--max-tokens',
  '48',
  '--top-logprobs',
  '4',
);
rmSync(join(work, 'generic-run'), { recursive: true, force: true });
fireopt(
  '--quiet',
  'train',
  join(work, 'generic-targets'),
  '--out',
  join(work, 'generic-run'),
  '--max-steps',
  values['draft-steps'],
  '--target-model',
  targetGguf,
  '--set',
  'train.select=off',
  '--set',
  'train.model={preset: draft-nano}',
  '--set',
  'train.seq_len=128',
  '--set',
  'train.batch_size=8',
  '--set',
  'train.lr=0.006',
  '--set',
  `train.eval_every=${values['draft-steps']}`,
);
const genericDraft = join(root, 'datasets/demo-generic-draft');
rmSync(genericDraft, { recursive: true, force: true });
cpSync(join(work, 'generic-run/draft'), genericDraft, { recursive: true });
console.log(`wrote ${targetGguf} and ${genericDraft}`);
