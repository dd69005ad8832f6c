/** Shared pieces of the reliability tests: a temp folder per file, the bundled inputs, a spawned CLI to signal. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/shared.js';

export const exampleTraces = join(repoRoot, 'datasets/example-traces.jsonl');
export const demoTarget = join(repoRoot, 'datasets/demo-target.gguf');

/** A fresh temp folder; `cleanup()` removes it. */
export function scratch(prefix: string): { dir: string; at(...parts: string[]): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), `fireopt-${prefix}-`));
  return { dir, at: (...parts) => join(dir, ...parts), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Every file under `dir` with its bytes, to prove a command left a folder exactly as it was. */
export function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (path: string, rel: string): void => {
    if (!statSync(path).isDirectory()) files[rel] = readFileSync(path).toString('base64');
    else for (const name of readdirSync(path)) walk(join(path, name), rel ? `${rel}/${name}` : name);
  };
  walk(dir, '');
  return files;
}

/** A spawned CLI process, its stderr so far and its exit code. */
export interface SpawnedCli {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** A spawned bin/fireopt whose stderr is collected and whose exit code resolves `exited`. */
export function spawnCli(args: string[], cwd = repoRoot): SpawnedCli {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/fireopt'), ...args], {
    cwd,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  child.stdin?.on('error', () => {}); // EPIPE once the child has exited: expected in these tests
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => void (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

/** Wait until `check()` holds (polling every 20 ms, at most `timeoutMs`); returns whether it did. */
export async function waitFor(check: () => boolean, timeoutMs = 20_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}
