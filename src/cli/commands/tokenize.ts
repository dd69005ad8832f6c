/**
 * `fireopt tokenize --tokenizer <file> [TEXT | -]`: the ids (and pieces) a tokenizer gives for a
 * text, like llama.cpp's `llama-tokenize`; `--decode` turns ids back into text. For debugging chat
 * templates and vocabulary mismatches between a draft and its target.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import type { Tokenizer } from '../../tokenizer/tokenizer.js';
import type { ContextGetter } from '../context.js';

interface TokenizeFlags {
  tokenizer: string;
  vocabSize?: number;
  special: boolean;
  decode: boolean;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('tokenize')
    .summary('print the token ids of a text (or, with --decode, the text of ids)')
    .description(
      'Tokenize TEXT (or standard input with -) as the target does: ' +
        'GGUF and llama2.c vocabularies through llama.cpp, ' +
        'tokenizer.json through Hugging Face tokenizers. BOS/EOS are added as the vocabulary asks. ' +
        'Prints one "id -> \'piece\'" line per token, or {"ids": [...]} with --json.',
    )
    .argument('[text]', 'the text, or - to read standard input; with --decode, ids separated by spaces or commas')
    .requiredOption('--tokenizer <file>', 'a GGUF (model or vocab-only), a tokenizer.json, or a llama2.c tokenizer.bin')
    .option('--vocab-size <n>', "a llama2.c tokenizer.bin's token count (the checkpoint's vocab_size)", parseCount)
    .option('--special', 'read special-token text (<|im_start|>, <s>) as those tokens; with --decode, print it', false)
    .option('--decode', 'TEXT is token ids: print their text', false)
    .action(async (text: string | undefined, flags: TokenizeFlags) => {
      const { io, globals } = context();
      if (text === undefined) {
        throw new UsageError('tokenize: give the TEXT to tokenize, or - to read it from standard input');
      }
      const input = text === '-' ? readFileSync(0, 'utf8') : text;
      const { loadTokenizer } = await import('../../tokenizer/load.js');
      const { tokenizer: path, vocabSize } = flags;
      const tokenizer = await loadTokenizer(vocabSize === undefined ? path : { kind: 'llama2c', path, vocabSize });
      if (flags.decode) {
        const decoded = tokenizer.decode(parseIds(input), { renderSpecial: flags.special });
        io.stdout(globals.json ? `${JSON.stringify({ text: decoded })}\n` : `${decoded}\n`);
        return;
      }
      const ids = tokenizer.encode(input, { parseSpecial: flags.special });
      const lines = ids.map((id) => `${pieceLine(tokenizer, id)}\n`).join('');
      io.stdout(globals.json ? `${JSON.stringify({ ids })}\n` : lines);
    });
}

/** llama-tokenize's line: the id right-aligned in six columns, then the text the token stands for. */
function pieceLine(tokenizer: Tokenizer, id: number): string {
  return `${String(id).padStart(6)} -> '${new TextDecoder().decode(tokenizer.tokenBytes(id))}'`;
}

function parseCount(value: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count <= 0) {
    throw new UsageError(`--vocab-size: '${value}' is not a positive integer`);
  }
  return count;
}

/** Ids written as `1 2 3`, `1,2,3` or `[1, 2, 3]` (what `--json` and llama-tokenize --ids print). */
function parseIds(text: string): number[] {
  const fields = text
    .replace(/^\s*\[|\]\s*$/g, '')
    .split(/[\s,]+/)
    .filter((field) => field !== '');
  return fields.map((field, index) => {
    const id = Number(field);
    if (!/^\d+$/.test(field) || !Number.isSafeInteger(id)) {
      throw new UsageError(`tokenize --decode: id ${index + 1} is '${field}', not a non-negative integer`);
    }
    return id;
  });
}
