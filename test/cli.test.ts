import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { runBin, runCli } from './helpers/cli.js';
import { repoRoot } from './helpers/shared.js';

const tmp = mkdtempSync(join(tmpdir(), 'fireopt-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const example = join(repoRoot, 'datasets/example-traces.jsonl');
const STACK_FRAME = /\n\s+at .+:\d+:\d+/;

/**
 * A module-resolution hook that fails any import of the named packages, so a spawned run that
 * loads one of them (directly or through any import chain) exits with that error.
 */
function forbidImports(packages: string[]): string {
  const hook = `export async function resolve(specifier, context, next) {
    const result = await next(specifier, context);
    for (const p of ${JSON.stringify(packages)}) {
      if (result.url.includes('/node_modules/' + p + '/')) throw new Error('forbidden import: ' + p);
    }
    return result;
  }`;
  const register =
    "import { register } from 'node:module'; " +
    `register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;
  return `data:text/javascript,${encodeURIComponent(register)}`;
}

function spawnWithHook(args: string[], packages: string[]) {
  const started = performance.now();
  const result = spawnSync(process.execPath, ['--import', forbidImports(packages), ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, ms: performance.now() - started };
}

describe('fireopt --help', () => {
  const heavy = [
    '@tensorflow/tfjs-core',
    '@tensorflow/tfjs-backend-cpu',
    '@tensorflow/tfjs-backend-wasm',
    '@tensorflow/tfjs-node',
    'apache-arrow',
    'node-llama-cpp',
  ];

  it('the import guard works: it fails a process that imports TensorFlow.js', () => {
    const run = spawnWithHook(['-e', "await import('@tensorflow/tfjs-core')", '--input-type=module'], heavy);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('forbidden import: @tensorflow/tfjs-core');
  });

  it.each([[['--help']], [['ingest', '--help']], [['inspect', '--help']]])(
    '%j loads neither TensorFlow.js nor Arrow (so it starts in a fraction of a second)',
    (args) => {
      const run = spawnWithHook([join(repoRoot, 'bin/fireopt'), ...args], heavy);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('Usage: fireopt');
    },
  );

  it('lists the commands and their options', async () => {
    expect((await runCli(['--help'])).stdout).toMatch(/ingest[\s\S]*inspect/);
    const help = await runCli(['ingest', '--help']);
    for (const flag of ['--out', '--format', '--heldout', '--no-dedup', '--redact', '--max-rejected', '--batch-input'])
      expect(help.stdout).toContain(flag);
  });
});

describe('exit codes and error messages (spawned)', () => {
  it('0 on success, with a JSON summary on stdout for --json', () => {
    const out = join(tmp, 'ok');
    const run = runBin(['ingest', example, '--out', out, '--json', '--quiet']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as { rows: { total: number }; duplicates_removed: number };
    expect(summary.rows.total).toBe(34);
    expect(summary.duplicates_removed).toBe(1);
    expect(existsSync(join(out, 'train.arrow'))).toBe(true);
  });

  it(
    '2 for a missing input file, an unknown flag, a bad flag value and a missing argument; ' + 'never a stack trace',
    () => {
      const cases: Array<[string[], RegExp]> = [
        [['ingest', join(tmp, 'nope.jsonl'), '--out', join(tmp, 'x')], /nope\.jsonl: no such file/],
        [['ingest', example, '--out', join(tmp, 'x'), '--frobnicate'], /unknown option '--frobnicate'/],
        [['ingest', example, '--out', join(tmp, 'x'), '--format', 'csv'], /Allowed choices are auto, openai-chat/],
        [['ingest', example, '--out', join(tmp, 'x'), '--heldout', '2'], /ingest\.heldout: Too big/],
        [['ingest', example], /no output directory/],
        [['inspect'], /missing required argument 'dataset'/],
        [['inspect', tmp], /not a fireopt traces \(no manifest\.json\)[\s\S]*HINT: re-run `fireopt ingest/],
      ];
      for (const [args, message] of cases) {
        const run = runBin(args);
        expect({ args, code: run.code }).toEqual({ args, code: 2 });
        expect(run.stderr).toMatch(message);
        expect(run.stderr).not.toMatch(STACK_FRAME);
        expect(run.stdout).toBe('');
      }
    },
  );

  it('1 when too many lines are rejected, naming the worst offenders', () => {
    const bad = join(tmp, 'bad.jsonl');
    writeFileSync(bad, `${readFileSync(example, 'utf8')}not json\n{"messages": []}\nnot json either\n`);
    const run = runBin(['ingest', bad, '--out', join(tmp, 'bad-ds'), '--max-rejected', '2']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/3 of 26 records rejected .* above --max-rejected 2; no dataset written/);
    expect(run.stderr).toMatch(/bad\.jsonl: 2 × malformed-json \(e\.g\. line 24, 26/);
    expect(run.stderr).not.toMatch(STACK_FRAME);
    expect(existsSync(join(tmp, 'bad-ds'))).toBe(false);
  });
});

describe('config', () => {
  it('lists every problem with its path and the file name (exit 2)', async () => {
    const file = join(tmp, 'broken.yaml');
    writeFileSync(file, 'ingest:\n  heldout: 1.5\n  dedup: maybe\n  colour: blue\nextra: 1\n');
    const run = await runCli(['-c', file, 'ingest', example, '--out', join(tmp, 'y')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${file}: invalid config (4 problems)`);
    for (const path of [
      'ingest.heldout',
      'ingest.dedup',
      'ingest: Unrecognized key: "colour"',
      '(top level): Unrecognized key: "extra"',
    ]) {
      expect(run.stderr).toContain(path);
    }
    expect(run.stderr).not.toMatch(STACK_FRAME);
    const syntax = join(tmp, 'syntax.yaml');
    writeFileSync(syntax, 'ingest:\n  heldout: [0.1\n');
    const bad = await runCli(['-c', syntax, 'ingest', example, '--out', join(tmp, 'y')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/syntax\.yaml:\d+:\d+: YAML syntax error/);
  });

  it('--set overrides the file and the flags, and the resolved config is in the manifest', async () => {
    const file = join(tmp, 'base.yaml');
    writeFileSync(file, 'name: from-file\ningest:\n  heldout: 0.2\n  redact: true\n');
    const out = join(tmp, 'set-ds');
    const run = await runCli([
      '-c',
      file,
      '--set',
      'ingest.heldout=0.5',
      '--set',
      'ingest.split_salt=other',
      '--quiet',
      'ingest',
      example,
      '--out',
      out,
      '--heldout',
      '0.3',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as {
      config: { name: string; ingest: Record<string, unknown> };
    };
    expect(manifest.config.name).toBe('from-file');
    expect(manifest.config.ingest).toMatchObject({
      heldout: 0.5,
      split_salt: 'other',
      redact: true,
      dedup: true,
      out,
      inputs: [example],
    });
    expect(() => loadConfig({ sets: ['ingest.heldout'] })).toThrow(/expected key\.path=value/);
  });

  it('parses every file in configs/', () => {
    const files = readdirSync(join(repoRoot, 'configs')).filter((f) => /\.ya?ml$/.test(f));
    expect(files).toContain('ingest.yaml');
    for (const name of files) {
      const file = join(repoRoot, 'configs', name);
      let error: unknown;
      try {
        loadConfig({ file });
      } catch (e) {
        error = e;
      }
      expect({ file, error: error instanceof ConfigError ? error.message : error }).toEqual({ file, error: undefined });
    }
    expect(loadConfig({ file: join(repoRoot, 'configs/ingest.yaml') }).ingest.inputs).toEqual([
      'datasets/example-traces.jsonl',
    ]);
  });
});

describe('fireopt inspect', () => {
  it('prints the manifest, the schema and rows; --json for machines', async () => {
    const out = join(tmp, 'inspect-ds');
    expect((await runCli(['--quiet', 'ingest', example, '--out', out])).code).toBe(0);
    const text = await runCli(['inspect', out, '--rows', '2']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/traces v1, made by fireopt/);
    expect(text.stdout).toContain(
      'messages: List<Struct<{role:Utf8, content:Utf8, name:Utf8, tool_calls:Utf8, tool_call_id:Utf8}>>',
    );
    const json = await runCli(['--json', 'inspect', out, '--rows', '2']);
    const report = JSON.parse(json.stdout) as {
      manifest: { rows: { train: number } };
      rows: { train: Array<{ messages: unknown[]; split: string }> };
      schema: unknown[];
    };
    expect(report.manifest.rows.train).toBeGreaterThan(0);
    expect(report.rows.train).toHaveLength(2);
    expect(report.rows.train.every((r) => r.split === 'train' && r.messages.length > 0)).toBe(true);
    expect(report.schema).toHaveLength(13);
  });
});
