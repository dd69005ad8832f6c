/**
 * Tokenizer identity (issue 17 item 3): the targets, the draft and the run manifests record which
 * token table they were made with, and a stage handed another model's tokenizer refuses it (exit 2),
 * naming the first differing token. The other tokenizer is stories260K's own 512-token table with
 * the pieces of ids 259 ("▁t") and 260 ("he") exchanged: a real edit of a real vocabulary, since
 * ../shared holds no second 512-token one.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenizerIdentity } from '../../src/tokenizer/identity.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { runBin, runCli, ingestPrompts } from '../helpers/cli.js';
import { haveShared, STORIES260K, TOK512 } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';

const PROMPTS = ['Once upon a time', 'The little dog', 'She went to the park', 'Tom and his mom'];

describe.skipIf(!haveShared(STORIES260K, TOK512))('tokenizer identity', () => {
  let work: string;
  let target: StoriesGguf;
  let other: StoriesGguf;
  let dataset: string;
  let targets: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-identity-'));
    target = writeStoriesGguf();
    other = writeStoriesGguf({ swapPieces: [259, 260] });
    dataset = await ingestPrompts(work, PROMPTS);
    targets = join(work, 'targets');
    const distilled = await runCli([
      '--quiet',
      'distill',
      dataset,
      '--out',
      targets,
      '--target-model',
      target.path,
      '--max-tokens',
      '8',
    ]);
    expect(distilled.code, distilled.stderr).toBe(0);
  });

  afterAll(() => {
    target?.remove();
    other?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('hashes the token table: the two vocabularies differ, the same one read twice agrees', async () => {
    const a = tokenizerIdentity(await loadTokenizer(target.path));
    const b = tokenizerIdentity(await loadTokenizer(other.path));
    expect(a).toEqual(tokenizerIdentity(await loadTokenizer(target.path)));
    expect(a.vocab_size).toBe(512);
    expect(b.vocab_size).toBe(512);
    expect(a.sha256).not.toBe(b.sha256);
    expect([a.bos_id, a.eos_id]).toEqual([1, 2]);
  });

  it('records the identity in the targets manifest', async () => {
    const manifest = JSON.parse(readFileSync(join(targets, 'manifest.json'), 'utf8'));
    expect(manifest.tokenizer.source).toBe(target.path);
    expect(manifest.tokenizer.identity).toEqual(tokenizerIdentity(await loadTokenizer(target.path)));
  });

  it('distill --tokenizer <another vocabulary> is refused before any work, naming token 259 and both pieces', () => {
    const out = join(work, 'refused-targets');
    const result = runBin(['distill', dataset, '--out', out, '--target-model', target.path, '--tokenizer', other.path]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`distill.tokenizer ${other.path} differs from the target model's (${target.path})`);
    expect(result.stderr).toMatch(/token id 259: "▁t" expected, "he" here/);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(existsSync(out)).toBe(false);
  });

  it('train --target-model <another vocabulary> is refused before training, naming token 259', () => {
    const out = join(work, 'refused-run');
    const result = runBin([
      'train',
      targets,
      '--out',
      out,
      '--target-model',
      other.path,
      '--set',
      'train.select=off',
      '--max-steps',
      '2',
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`the tokenizer of ${other.path} differs from the targets' tokenizer`);
    expect(result.stderr).toMatch(/token id 259: "▁t" expected, "he" here/);
    expect(existsSync(join(out, 'draft'))).toBe(false);
  });

  // In-process (the refusals above are the spawned checks): a long spawnSync would stall vitest's worker.
  it(
    'train, eval and export record the identity; ' + 'eval refuses the draft on targets of the other vocabulary',
    async () => {
      const out = join(work, 'run');
      const result = await runCli([
        '--quiet',
        'train',
        targets,
        '--out',
        out,
        '--target-model',
        target.path,
        '--set',
        'train.select=off',
        '--set',
        'train.model.preset=draft-nano',
        '--max-steps',
        '2',
        '--set',
        'train.seq_len=16',
        '--set',
        'train.batch_size=2',
        '--set',
        'train.eval_every=2',
        '--backend',
        'cpu',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const identity = tokenizerIdentity(await loadTokenizer(target.path));
      const runManifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
      expect(runManifest.target.tokenizer.identity).toEqual(identity);
      const draftManifest = JSON.parse(readFileSync(join(out, 'draft', 'manifest.json'), 'utf8'));
      expect(draftManifest.target.tokenizer.identity).toEqual(identity);

      const report = join(work, 'report');
      const evaluated = await runCli([
        '--quiet',
        'eval',
        '--model',
        join(out, 'draft'),
        '--data',
        targets,
        '--out',
        report,
        '--set',
        'eval.backend=cpu',
      ]);
      expect(evaluated.code, evaluated.stderr).toBe(0);
      expect(JSON.parse(readFileSync(join(report, 'report.json'), 'utf8')).data.tokenizer).toEqual(identity);
      const exported = join(work, 'export');
      const exportResult = await runCli([
        '--quiet',
        'export',
        '--model',
        join(out, 'draft'),
        '--out',
        exported,
        '--target',
        target.path,
        '--format',
        'hf',
        '--set',
        'export.reference_prompts=0',
      ]);
      expect(exportResult.code, exportResult.stderr).toBe(0);
      expect(JSON.parse(readFileSync(join(exported, 'manifest.json'), 'utf8')).tokenizer.identity).toEqual(identity);

      // Targets of the other vocabulary (the swapped GGUF is a whole model): the draft is refused on them.
      const otherTargets = join(work, 'other-targets');
      const distilled = await runCli([
        '--quiet',
        'distill',
        dataset,
        '--out',
        otherTargets,
        '--target-model',
        other.path,
        '--max-tokens',
        '4',
      ]);
      expect(distilled.code, distilled.stderr).toBe(0);
      const refused = runBin([
        'eval',
        '--model',
        join(out, 'draft'),
        '--data',
        otherTargets,
        '--out',
        join(work, 'refused-report'),
        '--set',
        'eval.backend=cpu',
      ]);
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toContain(
        `the tokenizer of the draft ${join(out, 'draft')} differs from the targets' tokenizer`,
      );
      expect(refused.stderr).toMatch(/token id 259: "he" expected, "▁t" here/);
      expect(existsSync(join(work, 'refused-report'))).toBe(false);
    },
  );
});
