/** `fireopt synth` reads its settings from the config's `synth` section; flags override it. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { runBin } from '../helpers/cli.js';

let work: string;
let configFile: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'fireopt-synth-config-'));
  writeFileSync(join(work, 'seeds.txt'), 'Write a haiku about rain\nExplain recursion to a child\n');
  configFile = join(work, 'synth.yaml');
  writeFileSync(
    configFile,
    [
      'synth:',
      `  seed_prompts: ${JSON.stringify(join(work, 'seeds.txt'))}`,
      '  n: 0',
      '  temperature: 0.7',
      `  out: ${JSON.stringify(join(work, 'out'))}`,
      '',
    ].join('\n'),
  );
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the synth config section', () => {
  it('parses with its defaults, and the file sets its values', () => {
    expect(loadConfig({}).synth).toMatchObject({ examples_per_request: 6, temperature: 1, max_completions: 0 });
    expect(() => loadConfig({ file: configFile })).toThrow(/synth\.n/);
    const synth = loadConfig({ file: configFile, flags: { 'synth.n': 3 } }).synth;
    expect(synth).toMatchObject({ seed_prompts: join(work, 'seeds.txt'), n: 3, temperature: 0.7, top_p: 0.95 });
  });

  it('-c file.yaml sets synth options: a bad value there is reported with its path (exit 2)', () => {
    const result = runBin(['-c', configFile, 'synth']);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('synth.n');
  });

  it('flags override the section: --n replaces the bad value, and the run goes on to need a target', () => {
    const result = runBin(['-c', configFile, 'synth', '--n', '3']);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).not.toContain('synth.n');
    expect(result.stderr).toContain('synth needs a target');
  });

  it('names the missing count when neither the file nor a flag gives it', () => {
    const result = runBin(['synth', '--seed-prompts', join(work, 'seeds.txt'), '--out', join(work, 'out')]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain('synth: no count given (--n or synth.n)');
  });
});
