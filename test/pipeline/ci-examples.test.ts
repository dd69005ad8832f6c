/**
 * examples/ci: the GitHub Actions workflow and the Kubernetes CronJob parse, run on a schedule and
 * run real fireopt commands (checked by the real commander program); the workflow's steps then run
 * in order, as a runner would, over two simulated nights with a release in between: the first night
 * has nothing deployed, the second reads the release back from the store and gates against it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { loadConfig } from '../../src/config/load.js';
import type { PipelineResult, PromotionRecord } from '../../src/pipeline/index.js';
import { haveShared, repoRoot } from '../helpers/shared.js';
import { writeStoriesGguf, type StoriesGguf } from '../targets/stories-gguf.js';
import { writeFakeAws } from './fake-aws.js';
import { writeAlpacaTraces, writeTaskmasterTraces } from './traces.js';

interface WorkflowStep {
  name?: string;
  id?: string;
  if?: string;
  uses?: string;
  run?: string;
  env?: Record<string, string>;
  with?: { path?: string };
}

interface Workflow {
  on: { schedule: Array<{ cron: string }> };
  env?: Record<string, string>;
  jobs: Record<string, { steps: WorkflowStep[] }>;
}

const workflowPath = join(repoRoot, 'examples/ci/fireopt-retrain.yml');
const readWorkflow = (): Workflow => parse(readFileSync(workflowPath, 'utf8')) as Workflow;

/** The fireopt invocations in a shell script: `fireopt ...` or `./bin/fireopt ...`, up to `>`, `|`, `;` or `&&`. */
function fireoptCommands(script: string): string[][] {
  const commands: string[][] = [];
  for (const match of script.matchAll(/(?:^|[\s;(])(?:\.\/bin\/)?fireopt ([^\n|&>;]*)/g)) {
    const words = match[1].trim().match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
    commands.push(words.map((w) => w.replace(/^['"]|['"]$/g, '')));
  }
  return commands;
}

/** Parse argv with the real program, without running the action: the subcommand and every flag must be known. */
function checkCommand(argv: string[]): string {
  const program = buildProgram({ stdout: () => {}, stderr: () => {} });
  const at = argv.findIndex((word) => program.commands.some((c: Command) => c.name() === word));
  expect(at, `no fireopt command in: fireopt ${argv.join(' ')}`).toBeGreaterThanOrEqual(0);
  const globals = program.parseOptions(argv.slice(0, at));
  expect([...globals.operands, ...globals.unknown], `global flags of: fireopt ${argv.join(' ')}`).toEqual([]);
  const command = program.commands.find((c: Command) => c.name() === argv[at]) as Command;
  // Global flags (--json, -c) may also follow the command, as commander allows.
  const unknown = command
    .parseOptions(argv.slice(at + 1))
    .unknown.filter(
      (word) => word.startsWith('-') && !program.options.some((o) => o.long === word || o.short === word),
    );
  expect(unknown, `unknown flags in: fireopt ${argv.join(' ')}`).toEqual([]);
  return command.name();
}

describe('examples/ci', () => {
  it(
    'the GitHub Actions workflow runs on a schedule, keeps the release in a ' +
      'named store, uploads the report and runs real fireopt commands',
    () => {
      const workflow = readWorkflow();
      expect(workflow.on.schedule[0].cron.split(' ')).toHaveLength(5);
      const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
      // the cache holds only the run directory; the release is read from and written to the store
      const cache = steps.find((s) => s.uses?.startsWith('actions/cache@'));
      expect(cache?.with?.path?.trim()).toBe('runs');
      expect(workflow.env?.RELEASE_URI).toMatch(/\$\{\{ vars\.\w+ \}\}/);
      expect(steps.some((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@'))).toBe(true);
      const upload = steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
      expect(upload?.with?.path).toMatch(/report\.md/);
      expect(upload?.with?.path).toMatch(/\.svg/);
      const scripts = steps.map((s) => s.run ?? '').join('\n');
      // one fireopt command: `run` checks drift itself, so the traces are distilled once; never `npx`
      expect(steps.flatMap((s) => fireoptCommands(s.run ?? '')).map(checkCommand)).toEqual(['run']);
      expect(scripts).not.toMatch(/\bnpx\b/);
      expect(scripts).toMatch(/date -u -d yesterday/);
      expect(scripts).toMatch(/::error::fireopt run failed/);
    },
  );

  it('the Kubernetes CronJob runs the image the Dockerfile builds, on a schedule, with real fireopt commands', () => {
    const cronJob = parse(readFileSync(join(repoRoot, 'examples/ci/fireopt-cronjob.yaml'), 'utf8')) as {
      kind: string;
      spec: {
        schedule: string;
        jobTemplate: { spec: { template: { spec: { containers: Array<{ image: string; args: string[] }> } } } };
      };
    };
    expect(cronJob.kind).toBe('CronJob');
    expect(cronJob.spec.schedule.split(' ')).toHaveLength(5);
    const container = cronJob.spec.jobTemplate.spec.template.spec.containers[0];
    const script = container.args.join('\n');
    expect(fireoptCommands(script).map(checkCommand)).toEqual(['run']);
    expect(script).toMatch(/date -u -d yesterday/);
    const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`docker build -t ${container.image} .`);
    expect(dockerfile).toMatch(/ln -s \/opt\/fireopt\/bin\/fireopt \/usr\/local\/bin\/fireopt/);
  });

  it('the config both use validates', () => {
    const config = loadConfig({ file: join(repoRoot, 'configs/pipeline.yaml') });
    expect(config.run.dir).toBe('runs/current');
    expect(config.promotion.release).toBe('release');
    expect(config.retention.enabled).toBe(false);
  });
});

interface ShardedStep extends WorkflowStep {
  with?: { path?: string; name?: string; pattern?: string };
}

interface ShardedWorkflow {
  on: { schedule: Array<{ cron: string }> };
  env: Record<string, string>;
  jobs: Record<
    string,
    { needs?: string; strategy?: { 'fail-fast'?: boolean; matrix: { shard: number[] } }; steps: ShardedStep[] }
  >;
}

describe('examples/ci/fireopt-sharded.yml', () => {
  const workflow = parse(readFileSync(join(repoRoot, 'examples/ci/fireopt-sharded.yml'), 'utf8')) as ShardedWorkflow;
  /** What GitHub Actions replaces with each matrix value. */
  const MATRIX_SHARD = /\$\{\{ matrix\.shard \}\}/g;
  const { ingest, distill, 'merge-train-gate': gate } = workflow.jobs;
  /** The fireopt argv of a job's steps, with `${{ matrix.shard }}` as `shard`. */
  const commandsOf = (steps: ShardedStep[], shard?: number): string[][] =>
    steps.flatMap((step) => fireoptCommands((step.run ?? '').replace(MATRIX_SHARD, String(shard))));
  const valueAfter = (argv: string[], word: string): string => argv[argv.indexOf(word) + 1];
  const artifact = (steps: ShardedStep[], action: 'upload' | 'download', shard?: number) =>
    steps
      .filter((step) => step.uses?.startsWith(`actions/${action}-artifact@`))
      .map((step) => {
        const expand = (text?: string) => text?.replace(MATRIX_SHARD, String(shard));
        return { name: expand(step.with?.name), pattern: step.with?.pattern, path: expand(step.with?.path) };
      });

  it('runs on a schedule: ingest, then one distill job per shard, then merge, train and the gate', () => {
    expect(workflow.on.schedule[0].cron.split(' ')).toHaveLength(5);
    expect(distill.needs).toBe('ingest');
    expect(gate.needs).toBe('distill');
    expect(distill.strategy?.['fail-fast']).toBe(false); // one shard's failure leaves the others' artifacts
    const scripts = Object.values(workflow.jobs)
      .flatMap((job) => job.steps.map((step) => step.run ?? ''))
      .join('\n');
    expect(scripts).not.toMatch(/\bnpx\b/);
    expect(scripts).toMatch(/date -u -d yesterday/);
    expect(scripts).toMatch(/::error::fireopt failed/);
    // every fireopt command but compare reads the fleet config
    const all = [...commandsOf(ingest.steps), ...commandsOf(distill.steps, 0), ...commandsOf(gate.steps)];
    for (const argv of all.filter((argv) => !argv.includes('compare')))
      expect(valueAfter(argv, '--config')).toBe('$CONFIG');
  });

  it('the config validates: a fleet of replicas, the API key from the secret the shard jobs pass', () => {
    const config = loadConfig({ file: join(repoRoot, workflow.env.CONFIG) });
    if (config.target?.engine !== 'openai') throw new Error('expected an openai target');
    expect(config.target.base_urls?.length).toBeGreaterThan(1);
    const distillStep = distill.steps.find((step) => commandsOf([step], 0).length > 0);
    expect(distillStep?.env?.[config.target.api_key_env ?? '']).toMatch(/^\$\{\{ secrets\.\w+ \}\}$/);
  });

  it('each matrix shard runs a real `distill --shard i/n` into its own artifact; merge reads them all', () => {
    const [ingestArgv] = commandsOf(ingest.steps);
    expect(checkCommand(ingestArgv)).toBe('ingest');
    const dataset = valueAfter(ingestArgv, '--out');
    expect(artifact(ingest.steps, 'upload')).toEqual([{ name: 'dataset', pattern: undefined, path: dataset }]);

    const shards = distill.strategy?.matrix.shard ?? [];
    expect(shards).toEqual(shards.map((_, index) => index));
    expect(shards.length).toBeGreaterThan(1);
    const uploaded: Array<{ name?: string; path?: string }> = [];
    for (const shard of shards) {
      const [argv, ...more] = commandsOf(distill.steps, shard);
      expect(more).toEqual([]);
      expect(checkCommand(argv)).toBe('distill');
      expect(valueAfter(argv, 'distill')).toBe(dataset);
      expect(valueAfter(argv, '--shard')).toBe(`${shard}/${shards.length}`);
      expect(artifact(distill.steps, 'download', shard)).toEqual([
        { name: 'dataset', pattern: undefined, path: dataset },
      ]);
      const [upload] = artifact(distill.steps, 'upload', shard);
      expect(upload.path).toBe(valueAfter(argv, '--out'));
      uploaded.push(upload);
    }
    expect(new Set(uploaded.map((upload) => upload.name)).size).toBe(shards.length);

    // download-artifact puts each artifact matching the pattern in <path>/<artifact name>/
    const [datasetDownload, shardDownload] = artifact(gate.steps, 'download');
    expect(datasetDownload).toEqual({ name: 'dataset', pattern: undefined, path: dataset });
    const [merge, train, ...gating] = commandsOf(gate.steps);
    expect([merge, train, ...gating].map(checkCommand)).toEqual(['merge', 'train', 'eval', 'compare', 'eval']);
    const mergeGlob = new RegExp(`^${valueAfter(merge, 'merge').replace('*', '[^/]+')}$`);
    const patternGlob = new RegExp(`^${shardDownload.pattern?.replace('*', '[^/]+')}$`);
    for (const upload of uploaded) {
      expect(upload.name).toMatch(patternGlob);
      expect(`${shardDownload.path}/${upload.name}`).toMatch(mergeGlob);
      expect(upload.path).toBe(`${shardDownload.path}/${upload.name}`); // the same folder names as the shard jobs
    }
    expect(valueAfter(merge, '--dataset')).toBe(dataset);

    // train reads merge's targets; eval the draft train writes; compare the deployed draft against it
    const targets = valueAfter(merge, '--out');
    expect(valueAfter(train, 'train')).toBe(targets);
    const [evalAgainstDeployed, compare, evalFirst] = gating;
    for (const evaluation of [evalAgainstDeployed, evalFirst]) {
      expect(valueAfter(evaluation, '--model')).toBe(valueAfter(train, '--out'));
      expect(valueAfter(evaluation, '--data')).toBe(targets);
    }
    expect(valueAfter(compare, 'compare')).toBe(`${valueAfter(evalAgainstDeployed, '--out')}/report.json`);
    expect(valueAfter(compare, '--candidate-a')).toBe(`draft:${valueAfter(evalAgainstDeployed, '--baseline')}`);
  });
});

interface PodSpec {
  containers: Array<{
    image: string;
    command?: string[];
    args: string[];
    env?: Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
    volumeMounts: Array<{ name: string; mountPath: string }>;
  }>;
  volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string }; configMap?: { name: string } }>;
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    completionMode?: string;
    completions?: number;
    parallelism?: number;
    backoffLimitPerIndex?: number;
    replicas?: number;
    selector?: unknown;
    ports?: Array<{ port: number }>;
    template: { spec: PodSpec };
  };
  data?: Record<string, string>;
}

describe('examples/k8s', () => {
  const k8sDir = join(repoRoot, 'examples/k8s');
  const read = (file: string): K8sObject[] =>
    parseAllDocuments(readFileSync(join(k8sDir, file), 'utf8')).map((doc) => doc.toJS() as K8sObject);
  const one = (file: string, kind: string): K8sObject => {
    const found = read(file).find((o) => o.kind === kind);
    expect(found, `${file} has no ${kind}`).toBeDefined();
    return found as K8sObject;
  };
  /**
   * The fireopt argv of a container: its args after the image's `fireopt` entrypoint,
   * or each one in its shell script.
   */
  const commandsOf = (pod: PodSpec, expand: (word: string) => string = (w) => w): string[][] =>
    pod.containers.flatMap((c) =>
      c.command?.[0] === '/bin/sh' ? fireoptCommands(c.args.join('\n')) : [c.args.map(expand)],
    );
  const configText = (): string => one('config.yaml', 'ConfigMap').data?.['fireopt.yaml'] ?? '';

  it('the config in the ConfigMap validates and reaches the vLLM Service with the key from the Secret', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fireopt-k8s-'));
    try {
      writeFileSync(join(dir, 'fireopt.yaml'), configText());
      const config = loadConfig({ file: join(dir, 'fireopt.yaml') });
      expect(config.target?.engine).toBe('openai');
      const service = one('target-vllm.yaml', 'Service');
      const deployment = one('target-vllm.yaml', 'Deployment');
      expect(config.target?.engine === 'openai' && config.target.base_url).toBe(
        `http://${service.metadata.name}:${service.spec.ports?.[0].port}/v1`,
      );
      const vllm = deployment.spec.template.spec.containers[0];
      expect(vllm.env?.find((e) => e.name === 'VLLM_API_KEY')?.valueFrom?.secretKeyRef?.name).toBe(
        'fireopt-target-api-key',
      );
      const distill = one('distill-shards-job.yaml', 'Job').spec.template.spec.containers[0];
      const apiKeyEnv = config.target?.engine === 'openai' ? config.target.api_key_env : undefined;
      expect(distill.env?.find((e) => e.name === apiKeyEnv)?.valueFrom?.secretKeyRef).toEqual({
        name: 'fireopt-target-api-key',
        key: 'api-key',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the Indexed Job runs one shard per completion index with real fireopt commands; merge and train follow', () => {
    const job = one('distill-shards-job.yaml', 'Job');
    expect(job.spec.completionMode).toBe('Indexed');
    const completions = job.spec.completions as number;
    expect(completions).toBeGreaterThan(1);
    expect(job.spec.parallelism).toBeLessThanOrEqual(completions);
    // What the kubelet does with $(JOB_COMPLETION_INDEX) in args: every index gives a valid shard i/n.
    const shardFolders = new Set<string>();
    for (let index = 0; index < completions; index++) {
      const [argv] = commandsOf(job.spec.template.spec, (w) => w.replaceAll('$(JOB_COMPLETION_INDEX)', String(index)));
      expect(checkCommand(argv)).toBe('distill');
      expect(argv[argv.indexOf('--shard') + 1]).toBe(`${index}/${completions}`);
      shardFolders.add(argv[argv.indexOf('--out') + 1]);
    }
    expect(shardFolders.size).toBe(completions);
    const mergeTrain = commandsOf(one('merge-train-job.yaml', 'Job').spec.template.spec);
    expect(mergeTrain.map(checkCommand)).toEqual(['merge', 'train']);
    // merge reads every shard folder the Indexed Job writes (the shell glob), and train reads merge's output
    const glob = new RegExp(`^${mergeTrain[0][mergeTrain[0].indexOf('merge') + 1].replace('*', '\\d+')}$`);
    for (const folder of shardFolders) expect(folder).toMatch(glob);
    const mergedOut = mergeTrain[0][mergeTrain[0].indexOf('--out') + 1];
    expect(mergeTrain[1][mergeTrain[1].indexOf('train') + 1]).toBe(mergedOut);
    const ingest = commandsOf(one('ingest-job.yaml', 'Job').spec.template.spec);
    expect(ingest.map(checkCommand)).toEqual(['ingest']);
    expect(ingest[0][ingest[0].indexOf('--out') + 1]).toBe(job.spec.template.spec.containers[0].args[3]);
  });

  it('every Job and the target share the volumes and run the image the Dockerfile builds', () => {
    const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
    for (const file of ['ingest-job.yaml', 'distill-shards-job.yaml', 'merge-train-job.yaml']) {
      const pod = one(file, 'Job').spec.template.spec;
      expect(dockerfile).toContain(`docker build -t ${pod.containers[0].image} .`);
      expect(pod.volumes.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName).toBe('fireopt-data');
      expect(pod.volumes.find((v) => v.name === 'config')?.configMap?.name).toBe('fireopt-config');
      expect(pod.containers[0].volumeMounts.map((m) => m.mountPath)).toEqual(
        expect.arrayContaining(['/data', '/config']),
      );
    }
  });
});

describe.skipIf(
  !haveShared(
    'models/stories260K/stories260K.bin',
    'data/taskmaster4_coffee/data_00.json',
    'data/alpaca_eval_outputs/Meta-Llama-3-8B-Instruct.json',
  ),
)('examples/ci/fireopt-retrain.yml, step by step over two nights', () => {
  let work: string;
  let gguf: StoriesGguf;
  const checkout = (): string => join(work, 'checkout');
  const bucket = (): string => join(work, 's3');
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const today = new Date().toISOString().slice(0, 10);
  const vars: Record<string, string> = {
    FIREOPT_TRACES_URI: 's3://acme/traces',
    FIREOPT_TARGET_MODEL_URI: 's3://acme/models/target.gguf',
    FIREOPT_RELEASE_URI: 's3://acme/fireopt/releases/nightly',
  };

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'fireopt-ci-'));
    gguf = writeStoriesGguf();
    // a fresh runner's checkout: this repository's built bin/ and the pipeline config (small, for a test)
    mkdirSync(join(checkout(), 'configs'), { recursive: true });
    symlinkSync(join(repoRoot, 'bin'), join(checkout(), 'bin'));
    writeFileSync(
      join(checkout(), 'configs', 'pipeline.yaml'),
      [
        'name: nightly',
        'ingest: { inputs: ["traces/*.jsonl"], heldout: 0.3 }',
        'distill: { mode: traces, tokenizer: models/target.gguf, chat_template: none }',
        'train: { target_model: models/target.gguf, backend: wasm, select: off, ' +
          'model: { preset: draft-nano }, lr: 0.02, max_steps: 40,',
        '  seq_len: 64, batch_size: 8, warmup_steps: 5, eval_every: 25, patience: 0 }',
        // a stated c and no model-free floor: the loop's mechanics with a toy draft (see scenario.test.ts)
        'eval: { bootstrap_samples: 500, margin: 0, cost: { engine: given }, cost_ratio: 0.02 }',
        'promotion: { release: release, beat_model_free: false }',
        'run: { dir: runs/current }',
      ].join('\n') + '\n',
    );
    mkdirSync(join(work, 'bin'));
    writeFakeAws(join(work, 'bin'));
    mkdirSync(join(bucket(), 'acme', 'models'), { recursive: true });
    writeFileSync(join(bucket(), 'acme', 'models', 'target.gguf'), readFileSync(gguf.path));
    // today's folder is still being written: the workflow must read yesterday's
    mkdirSync(join(bucket(), 'acme', 'traces', today), { recursive: true });
    writeFileSync(
      join(bucket(), 'acme', 'traces', today, 'partial.jsonl'),
      '{"messages": [{"role": "user", "content": "half a li',
    );
  });

  afterAll(() => {
    if (!process.env.KEEP) rmSync(work, { recursive: true, force: true });
    gguf?.remove();
  });

  /** Run the workflow's steps in order in the checkout, as a runner would; returns each run step's outputs. */
  function runNight(): Record<string, Record<string, string>> {
    const workflow = readWorkflow();
    const outputs: Record<string, Record<string, string>> = {};
    const substitute = (value: string): string =>
      value.replace(/\$\{\{ vars\.(\w+) \}\}/g, (_, name: string) => vars[name] ?? '');
    const env = Object.fromEntries(Object.entries(workflow.env ?? {}).map(([k, v]) => [k, substitute(v)]));
    for (const step of Object.values(workflow.jobs).flatMap((job) => job.steps)) {
      if (step.if && !condition(step.if, outputs)) continue;
      // actions (checkout, node, credentials, cache, upload) are the runner's; `npm ci` built this checkout already
      if (step.uses || step.run?.trim() === 'npm ci') continue;
      const outputFile = join(work, `output-${step.id ?? 'step'}`);
      writeFileSync(outputFile, '');
      const result = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', step.run ?? ''], {
        cwd: checkout(),
        env: {
          ...process.env,
          ...env,
          ...step.env,
          PATH: `${join(work, 'bin')}:${process.env.PATH}`,
          FAKE_S3_ROOT: bucket(),
          GITHUB_OUTPUT: outputFile,
        },
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      expect(result.status, `step "${step.name ?? step.run}" failed:\n${result.stdout}\n${result.stderr}`).toBe(0);
      if (step.id)
        outputs[step.id] = Object.fromEntries(
          readFileSync(outputFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => line.split('=', 2) as [string, string]),
        );
    }
    return outputs;
  }

  /** The workflow's `if:` conditions: `always()` and `steps.<id>.outputs.<key> == '<value>'`. */
  function condition(expression: string, outputs: Record<string, Record<string, string>>): boolean {
    if (expression === 'always()') return true;
    const match = /^steps\.(\w+)\.outputs\.(\w+) == '([^']*)'$/.exec(expression);
    expect(match, `the test does not know the condition ${expression}`).not.toBeNull();
    const [, id, key, value] = match as RegExpExecArray;
    return outputs[id]?.[key] === value;
  }

  const releaseInStore = (): string => join(bucket(), 'acme', 'fireopt', 'releases', 'nightly');
  const runJson = (): PipelineResult =>
    JSON.parse(readFileSync(join(checkout(), 'run.json'), 'utf8')) as PipelineResult;

  it('night 1 (nothing deployed yet) promotes and publishes the release; ' +
    'night 2 reads it back, measures drift against it and gates against it', () => {
    mkdirSync(join(bucket(), 'acme', 'traces', yesterday), { recursive: true });
    writeAlpacaTraces(join(bucket(), 'acme', 'traces', yesterday, 'alpaca.jsonl'), 50, 300);
    const night1 = runNight();
    expect(night1.run.exit_code).toBe('0');
    const first = runJson();
    expect(first.outcome).toBe('promoted');
    expect(first.deployed?.draft_sha256).toBeNull();
    const published = JSON.parse(readFileSync(join(releaseInStore(), 'promotion.json'), 'utf8')) as PromotionRecord;
    expect(published.previous_draft_sha256).toBeNull();
    expect(existsSync(join(releaseInStore(), 'draft', 'model.safetensors'))).toBe(true);

    // the next night: a fresh runner (no release folder), the cached run directory, new traffic
    rmSync(join(checkout(), 'release'), { recursive: true, force: true });
    rmSync(join(bucket(), 'acme', 'traces', yesterday), { recursive: true });
    mkdirSync(join(bucket(), 'acme', 'traces', yesterday), { recursive: true });
    writeTaskmasterTraces(join(bucket(), 'acme', 'traces', yesterday, 'coffee.jsonl'), 50);
    const night2 = runNight();
    const second = runJson();
    expect(second.deployed?.draft_sha256).toBe(published.draft_sha256);
    expect(second.drift?.recorded.source).toMatch(/promotion\.json$/);
    expect(second.drift?.retrain).toBe(true);
    expect(second.comparison?.a.candidate).toBe('draft:deployed-draft');
    expect(night2.run.exit_code).toBe(String(second.exit_code));
    expect(second.outcome).toBe('promoted');
    const republished = JSON.parse(readFileSync(join(releaseInStore(), 'promotion.json'), 'utf8')) as PromotionRecord;
    expect(republished.previous_draft_sha256).toBe(published.draft_sha256);
    expect(republished.draft_sha256).not.toBe(published.draft_sha256);
  }, 300_000);
});
