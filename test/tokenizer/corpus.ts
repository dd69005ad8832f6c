/**
 * 1,000 real strings from ../shared/data for tokenizer agreement tests: model outputs, user
 * prompts, code, maths, dialogue and non-English text, plus edge cases built from real strings
 * (whitespace runs, newlines, digits, emoji, special-token text). Deterministic: fixed strides.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { sharedPath } from '../helpers/shared.js';

export interface CorpusString {
  source: string;
  text: string;
}

type JsonRecord = Record<string, unknown>;

const ALPACA_GENERATORS = [
  'Meta-Llama-3-8B-Instruct',
  'Mistral-7B-Instruct-v0.2',
  'gpt-3.5-turbo-1106',
  'gpt-4-turbo-2024-04-09',
];
/** The ../shared files `tokenizerCorpus` reads (for `haveShared`). */
export const CORPUS_FILES = [
  ...ALPACA_GENERATORS.map((generator) => `alpaca_eval_outputs/${generator}.json`),
  'sharegpt_prompts/ShareGPT_V3_filtered_500.json',
  'sharegpt_prompts/sg_90k_part1_html_cleaned_lang_first_sampled_sorted.json',
  'humaneval/HumanEval.jsonl.gz',
  'mbpp/mbpp.jsonl',
  'gsm8k/test.jsonl',
  'gsm8k/example_model_solutions.jsonl',
  'taskmaster4_coffee/data_00.json',
  'hh_rlhf_harmless_test/test.jsonl.gz',
].map((path) => `data/${path}`);

const dataPath = (path: string): string => sharedPath('data', path);
const readJson = (path: string): unknown => JSON.parse(readFileSync(dataPath(path), 'utf8'));
const readJsonl = (path: string): JsonRecord[] => {
  const bytes = readFileSync(dataPath(path));
  const text = path.endsWith('.gz') ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as JsonRecord);
};
const field = (record: unknown, key: string): string => {
  const value = (record as JsonRecord)[key];
  if (typeof value !== 'string') throw new Error(`corpus: expected string field '${key}'`);
  return value;
};
/** Every `stride`-th item starting at `offset`, at most `count`. */
const every = <T>(items: readonly T[], count: number, stride: number, offset = 0): T[] => {
  const out: T[] = [];
  for (let i = offset; i < items.length && out.length < count; i += stride) out.push(items[i]);
  return out;
};
/** At most `maxChars` UTF-16 units, never splitting a surrogate pair. */
const truncate = (text: string, maxChars: number): string => {
  if (text.length <= maxChars) return text;
  const end = /[\uD800-\uDBFF]/.test(text[maxChars - 1]) ? maxChars - 1 : maxChars;
  return text.slice(0, end);
};
const firstHumanTurn = (conversation: unknown): string | undefined => {
  const turns = (conversation as JsonRecord).conversations;
  if (!Array.isArray(turns) || turns.length === 0) return undefined;
  const value = (turns[0] as JsonRecord).value;
  return typeof value === 'string' && value !== '' ? value : undefined;
};
const NON_ASCII = /[^\x00-\x7F]/;
const EMOJI = /\p{Extended_Pictographic}/u;

let cached: CorpusString[] | undefined;

export function tokenizerCorpus(): CorpusString[] {
  if (cached) return cached;
  const strings: CorpusString[] = [];
  const add = (source: string, texts: string[], maxChars = 3000): void => {
    for (const text of texts) strings.push({ source, text: truncate(text, maxChars) });
  };

  const alpacaOutputs: string[] = [];
  ALPACA_GENERATORS.forEach((generator, g) => {
    const rows = readJson(`alpaca_eval_outputs/${generator}.json`) as unknown[];
    const outputs = rows.map((row) => field(row, 'output'));
    add(`alpaca_eval/${generator}`, every(outputs, 60, 13, g));
    alpacaOutputs.push(...outputs);
  });

  const shareGpt = (readJson('sharegpt_prompts/ShareGPT_V3_filtered_500.json') as unknown[])
    .map(firstHumanTurn)
    .filter((t): t is string => !!t);
  add('sharegpt', every(shareGpt, 160, 3));

  const shareGptMultilingual = (
    readJson('sharegpt_prompts/sg_90k_part1_html_cleaned_lang_first_sampled_sorted.json') as unknown[]
  )
    .map(firstHumanTurn)
    .filter((t): t is string => !!t);
  add(
    'sharegpt/non-ascii',
    every(
      shareGptMultilingual.filter((t) => NON_ASCII.test(t) && !EMOJI.test(t)),
      80,
      4,
    ),
    2000,
  );
  const withEmoji = [...shareGptMultilingual, ...alpacaOutputs].filter((t) => EMOJI.test(t));
  add('emoji', every(withEmoji, 20, 1), 2000);

  const humanEval = readJsonl('humaneval/HumanEval.jsonl.gz');
  add(
    'humaneval',
    every(humanEval, 60, 2).map((row) => field(row, 'prompt') + field(row, 'canonical_solution')),
  );
  const mbpp = readJsonl('mbpp/mbpp.jsonl');
  add(
    'mbpp',
    every(mbpp, 80, 11).map((row, i) =>
      i % 2 === 0 ? field(row, 'code') : `${field(row, 'text')}\n${field(row, 'code')}`,
    ),
  );

  const gsm8kTest = readJsonl('gsm8k/test.jsonl');
  add(
    'gsm8k/question',
    every(gsm8kTest, 60, 21).map((row) => field(row, 'question')),
  );
  const gsm8kSolutions = readJsonl('gsm8k/example_model_solutions.jsonl');
  add(
    'gsm8k/6b-solution',
    every(gsm8kSolutions, 60, 19).map((row) => field(row['6b_finetuning'], 'solution')),
  );

  const dialogues = readJson('taskmaster4_coffee/data_00.json') as unknown[];
  const utterances: string[] = [];
  for (const dialogue of dialogues) {
    const turns = (dialogue as JsonRecord).utterances;
    if (Array.isArray(turns)) for (const turn of turns) utterances.push(field(turn, 'text'));
  }
  add('taskmaster', every(utterances, 140, 11));

  const harmless = readJsonl('hh_rlhf_harmless_test/test.jsonl.gz');
  add(
    'hh_rlhf',
    every(harmless, 40, 57).map((row) => field(row, 'chosen')),
    2000,
  );

  // Edge cases, each built from a real string above (or a fixed character class llama.cpp treats specially).
  const base = (i: number): string => strings[(i * 97) % strings.length].text.slice(0, 200);
  const edges: string[] = [
    '',
    ' ',
    '  ',
    '   ',
    '\n',
    '\n\n',
    '\t',
    '\r\n',
    ' \n ',
    '\n \n',
    '\t\tx',
    'x\t\t',
    '  \n\n  ',
    '0',
    '12',
    '123',
    '1234',
    '1234567890',
    '3.14159',
    '-42',
    '1,000,000',
    '$2.50',
    '10%',
    '٣٤٥',
    '①②',
    '<s>',
    '</s>',
    '<unk>',
    '<|endoftext|>',
    '<|user|>',
    '<|end|>',
    '<|assistant|>\n',
    'Hi <s> there',
    ' </s> ',
    'a<|endoftext|>b',
    '[PAD32011]',
    '<0x41>',
    '\u2581',
    '\u2581\u2581x',
    'x\u2581',
    '\uFEFFbom',
    'nbsp\u00A0x',
    'nel\u0085x',
    'ideo\u3000x',
    'zw\u200Bj',
    'e\u0301',
    '👨‍👩‍👧‍👦',
    '🇫🇷',
    '😀😀',
    'héllo wörld',
    '日本語のテキスト',
    'Привет, мир',
    'مرحبا',
    "it's I'M we'LL they've",
    " ' ",
    'a . b , c ! d ?',
    "I 'm sure they 're here , and we 've 'd it 's fine ' ok",
  ];
  const derived = (i: number): string => {
    const text = base(i);
    switch (i % 6) {
      case 0:
        return `  ${text}`;
      case 1:
        return `${text}   `;
      case 2:
        return text.replaceAll(' ', '  ');
      case 3:
        return `\n\n${text}\n`;
      case 4:
        return text.replaceAll('\n', '\r\n');
      default:
        return `\t${text.replaceAll(' ', '\t')}`;
    }
  };
  const needed = 1000 - strings.length;
  const edgeTexts = edges.slice(0, needed);
  for (let i = 0; edgeTexts.length < needed; i++) edgeTexts.push(derived(i));
  for (const text of edgeTexts) strings.push({ source: 'edge', text });
  if (strings.length !== 1000) throw new Error(`corpus has ${strings.length} strings, expected 1000`);
  cached = strings;
  return strings;
}
