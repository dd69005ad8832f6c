/** `fireopt tokenize`, spawned: ids and pieces as llama-tokenize prints them, --json, --decode, and its errors. */
import { describe, expect, it } from 'vitest';
import { runBinAsync as runBin } from '../helpers/cli.js';
import { haveShared, sharedPath, TOK512 } from '../helpers/shared.js';

const LLAMA_SPM = 'models/vocab/ggml-vocab-llama-spm.gguf';
const GPT2 = 'models/vocab/ggml-vocab-gpt-2.gguf';

describe.skipIf(!haveShared(LLAMA_SPM, GPT2, TOK512))('fireopt tokenize', () => {
  const spm = () => sharedPath(LLAMA_SPM);

  it("prints each id and its piece, with the vocabulary's BOS, special-token text read as text", async () => {
    const result = await runBin(['tokenize', '--tokenizer', spm(), 'Hello world <s>']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // Llama-2's well-known ids: <s>=1, ▁Hello=15043, ▁world=3186; "<s>" as text is ▁< s >.
    expect(result.stdout).toBe(
      [
        "     1 -> '<s>'",
        " 15043 -> ' Hello'",
        "  3186 -> ' world'",
        "   529 -> ' <'",
        " 29879 -> 's'",
        " 29958 -> '>'",
        '',
      ].join('\n'),
    );
  });

  it('--special turns special-token text into the token; --json prints the ids', async () => {
    const result = await runBin(['tokenize', '--json', '--special', '--tokenizer', spm(), 'Hello world <s>']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ ids: [1, 15043, 3186, 29871, 1] });
  });

  it('reads the text from standard input with -, and tokenizes byte-level BPE (GPT-2: no BOS)', async () => {
    const result = await runBin(['tokenize', '--json', '--tokenizer', sharedPath(GPT2), '-'], { input: 'Hello world' });
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ ids: [15496, 995] });
  });

  it('--decode goes back from ids to text, rendering control tokens only with --special', async () => {
    const plain = await runBin(['tokenize', '--decode', '--tokenizer', spm(), '1 15043 3186']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe(' Hello world\n');
    const special = await runBin([
      'tokenize',
      '--decode',
      '--special',
      '--json',
      '--tokenizer',
      spm(),
      '[1, 15043, 3186]',
    ]);
    expect(JSON.parse(special.stdout)).toEqual({ text: '<s> Hello world' });
  });

  it('reads a llama2.c tokenizer.bin given its vocabulary size', async () => {
    const llama2c = ['--tokenizer', sharedPath(TOK512), '--vocab-size', '512'];
    const result = await runBin(['tokenize', '--json', ...llama2c, 'Once upon a time']);
    expect(result.code).toBe(0);
    const { ids } = JSON.parse(result.stdout) as { ids: number[] };
    expect(ids[0]).toBe(1);
    const back = await runBin(['tokenize', '--decode', ...llama2c, ids.join(',')]);
    expect(back.stdout).toBe(' Once upon a time\n');
  });

  it('exits 2 with a message naming the problem for bad usage and input', async () => {
    const noText = await runBin(['tokenize', '--tokenizer', spm()]);
    expect(noText.code).toBe(2);
    expect(noText.stderr).toContain('give the TEXT');
    const badId = await runBin(['tokenize', '--decode', '--tokenizer', spm(), '1 x']);
    expect(badId.code).toBe(2);
    expect(badId.stderr).toContain("id 2 is 'x'");
    const outside = await runBin(['tokenize', '--decode', '--tokenizer', spm(), '32000']);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toContain('token id 32000 is outside the 32000-token vocabulary');
    const llama2c = await runBin(['tokenize', '--tokenizer', sharedPath(TOK512), 'hi']);
    expect(llama2c.code).toBe(2);
    expect(llama2c.stderr).toContain('--vocab-size');
    expect(llama2c.stderr).not.toMatch(/\n\s+at /);
  });
});
