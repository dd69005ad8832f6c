/**
 * Python references for tests (an independent numpy safetensors reader, a hand-written PyTorch
 * forward pass): finding an interpreter that has the modules, and running a script that prints
 * one JSON object per line.
 */
import { spawnSync } from 'node:child_process';
import { repoRoot } from './shared.js';

/**
 * The first Python that can import `modules`: the image's pyenv python3 has numpy; PyTorch comes
 * from Debian's python3-torch for /usr/bin/python3 (.ci/run installs it).
 */
export function pythonWith(modules: string): string | undefined {
  return ['python3', '/usr/bin/python3'].find(
    (candidate) => spawnSync(candidate, ['-c', `import ${modules}`]).status === 0,
  );
}

/** Run a Python script from the repository root; its stdout lines that start with `{` parsed as JSON. */
export function runPython(
  interpreter: string,
  args: string[],
): { code: number; json: Array<Record<string, unknown>>; stderr: string } {
  const run = spawnSync(interpreter, args, { encoding: 'utf8', cwd: repoRoot });
  const json = run.stdout
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { code: run.status ?? 1, json, stderr: run.stderr };
}
