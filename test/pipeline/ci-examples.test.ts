/**
 * examples/ci: the GitHub Actions workflow and the Kubernetes CronJob parse as YAML, run on a
 * schedule, and every fireopt command they run is accepted by the real commander program (its
 * subcommand exists and every flag is known), without running it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { loadConfig } from '../../src/config/load.js';
import { repoRoot } from '../helpers/shared.js';

/** The fireopt invocations in a shell script: `fireopt ...` or `npx fireopt ...`, up to `>`, `|` or `&&`. */
function fireoptCommands(script: string): string[][] {
  const commands: string[][] = [];
  for (const match of script.matchAll(/(?:^|[\s;(])(?:npx )?fireopt ([^\n|&>;]*)/g)) {
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
  const unknown = command.parseOptions(argv.slice(at + 1)).unknown.filter((word) => word.startsWith('-') && !program.options.some((o) => o.long === word || o.short === word));
  expect(unknown, `unknown flags in: fireopt ${argv.join(' ')}`).toEqual([]);
  return command.name();
}

describe('examples/ci', () => {
  it('the GitHub Actions workflow runs on a cron schedule, caches, uploads the report and runs real fireopt commands', () => {
    const workflow = parse(readFileSync(join(repoRoot, 'examples/ci/fireopt-retrain.yml'), 'utf8')) as {
      on: { schedule: Array<{ cron: string }> };
      jobs: Record<string, { steps: Array<{ uses?: string; run?: string; with?: { path?: string } }> }>;
    };
    expect(workflow.on.schedule[0].cron.split(' ')).toHaveLength(5);
    const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
    expect(steps.some((s) => s.uses?.startsWith('actions/cache@'))).toBe(true);
    const upload = steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    expect(upload?.with?.path).toMatch(/report\.md/);
    expect(upload?.with?.path).toMatch(/\.svg/);
    const names = steps.flatMap((s) => fireoptCommands(s.run ?? '')).map(checkCommand);
    expect(names).toEqual(['drift', 'run']);
    // failing loudly: any exit code other than the documented outcomes ends the step with it
    expect(steps.map((s) => s.run ?? '').join('\n')).toMatch(/::error::fireopt run failed/);
  });

  it('the Kubernetes CronJob runs on a schedule and runs real fireopt commands', () => {
    const cronJob = parse(readFileSync(join(repoRoot, 'examples/ci/fireopt-cronjob.yaml'), 'utf8')) as {
      kind: string;
      spec: { schedule: string; jobTemplate: { spec: { template: { spec: { containers: Array<{ args: string[] }> } } } } };
    };
    expect(cronJob.kind).toBe('CronJob');
    expect(cronJob.spec.schedule.split(' ')).toHaveLength(5);
    const script = cronJob.spec.jobTemplate.spec.template.spec.containers[0].args.join('\n');
    expect(fireoptCommands(script).map(checkCommand)).toEqual(['drift', 'run']);
  });

  it('the config both use validates', () => {
    const config = loadConfig({ file: join(repoRoot, 'configs/pipeline.yaml') });
    expect(config.run.dir).toBe('runs/current');
    expect(config.promotion.release).toBe('release');
    expect(config.retention.enabled).toBe(false);
  });
});
