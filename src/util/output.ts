/**
 * Claiming an output, the one place every command goes through before any work: an output may
 * replace only an earlier output of the same kind (what its manifest says), never an input of the
 * same command, the current folder or a folder above an input or the current folder. Anything else
 * already at the path is refused (exit 2) unless the user passes --force. A claimed output is then
 * locked against a second fireopt process writing it at the same time.
 *
 * The lock is a small file `.<name>.lock` beside the output holding the owner's pid: a lock whose
 * process is gone (kill -9, power loss) is stale and taken over at once, without the fixed stale
 * timeout and the keep-alive timer a lock library such as proper-lockfile needs.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, parse, relative, resolve, sep } from 'node:path';
import { OutputLockedError, OutputRefusedError } from '../errors.js';
import { processAlive } from './atomic.js';

/** What a command writes; each kind says how an earlier output of it is recognised. */
export type OutputKind =
  | 'traces'
  | 'targets'
  | 'train-run'
  | 'eval-report'
  | 'export'
  | 'pipeline-run'
  | 'release'
  | 'drift-work'
  | 'gguf-file'
  | 'hf-folder'
  | 'prompts-file';

interface KindSpec {
  /** Used in messages: "… is not <what>". */
  what: string;
  shape: 'folder' | 'file';
  /** Whether the existing path is an earlier output of this kind. */
  isEarlier(path: string, claim: OutputClaim): boolean;
}

/** The `kind` field of a JSON file, or undefined when it is missing or unreadable. */
function jsonKind(path: string): unknown {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { kind?: unknown }).kind;
  } catch {
    return undefined;
  }
}

const manifestKind =
  (kind: string) =>
  (dir: string): boolean =>
    jsonKind(join(dir, 'manifest.json')) === kind;

/** A pipeline run folder: run.json at the end, a stage record in each stage folder from the start. */
function isPipelineRun(dir: string): boolean {
  if (jsonKind(join(dir, 'run.json')) === 'pipeline-run') return true;
  return readdirSync(dir).some((name) => jsonKind(join(dir, name, 'stage.json')) === 'pipeline-stage');
}

const KINDS: Record<OutputKind, KindSpec> = {
  traces: { what: 'a traces dataset (manifest.json kind traces)', shape: 'folder', isEarlier: manifestKind('traces') },
  targets: {
    what: 'a targets folder (manifest.json kind targets)',
    shape: 'folder',
    isEarlier: manifestKind('targets'),
  },
  'train-run': {
    what: 'a train run folder (manifest.json kind train-run, or a saved training state)',
    shape: 'folder',
    // A run killed before its manifest still has untrained.json (written first), its state or candidates/.
    isEarlier: (dir) =>
      manifestKind('train-run')(dir) ||
      ['untrained.json', join('state', 'state.json'), 'candidates'].some((name) => existsSync(join(dir, name))),
  },
  'eval-report': {
    what: 'an eval report folder (report.json kind eval-report)',
    shape: 'folder',
    isEarlier: (dir) => jsonKind(join(dir, 'report.json')) === 'eval-report',
  },
  export: { what: 'an export folder (manifest.json kind export)', shape: 'folder', isEarlier: manifestKind('export') },
  'pipeline-run': {
    what: 'a fireopt run directory (run.json or stage records)',
    shape: 'folder',
    isEarlier: isPipelineRun,
  },
  release: {
    what: 'a release folder (promotion.json kind promotion)',
    shape: 'folder',
    isEarlier: (dir) => jsonKind(join(dir, 'promotion.json')) === 'promotion',
  },
  'drift-work': {
    what: 'a drift work folder (dataset/, targets/, report/)',
    shape: 'folder',
    isEarlier: (dir) => readdirSync(dir).every((name) => ['dataset', 'targets', 'report'].includes(name)),
  },
  'gguf-file': { what: 'a GGUF file', shape: 'file', isEarlier: (path) => startsWith(path, 'GGUF') },
  'hf-folder': {
    what: 'a Hugging Face model folder (config.json + model.safetensors)',
    shape: 'folder',
    isEarlier: (dir) => existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'model.safetensors')),
  },
  'prompts-file': {
    what: 'the prompts file of an earlier synth run into the same dataset',
    shape: 'file',
    isEarlier: (path, claim) => {
      if (!claim.writtenFor) return false;
      try {
        const manifestText = readFileSync(join(claim.writtenFor, 'manifest.json'), 'utf8');
        const manifest = JSON.parse(manifestText) as { inputs?: Array<{ path?: string }> };
        const isThisFile = (input: { path?: string }): boolean =>
          input.path !== undefined && resolve(input.path) === resolve(path);
        return manifest.inputs?.some(isThisFile) ?? false;
      } catch {
        return false;
      }
    },
  },
};

function startsWith(path: string, magic: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(magic.length);
    return readSync(fd, head, 0, magic.length, 0) === magic.length && head.toString('latin1') === magic;
  } finally {
    closeSync(fd);
  }
}

/** One output a command is about to write or replace. */
export interface OutputClaim {
  /** Undefined when the config names none: the stage reports that. */
  path: string | undefined;
  kind: OutputKind;
  /** The flag or config key that named it, for messages: `--out`, `train.out`. */
  option: string;
  /** For a prompts file: the dataset folder it is ingested into (whose manifest lists it). */
  writtenFor?: string;
}

/** What a command claims: its outputs, its inputs (files, folders or globs; never replaced) and --force. */
export interface OutputRequest {
  command: string;
  outputs: OutputClaim[];
  inputs: Array<string | undefined>;
  force?: boolean;
}

/** `a` is `b` or a folder above it. */
function isSameOrAncestor(a: string, b: string): boolean {
  const rel = relative(a, b);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && parse(rel).root === '');
}

/** The part of a glob before its first wildcard: every match lies under it. */
function literalPrefix(pattern: string): string {
  const wildcard = pattern.search(/[*?[{]/);
  if (wildcard < 0) return pattern;
  const cut = pattern.slice(0, wildcard);
  return cut.endsWith('/') || cut.endsWith(sep) ? cut : dirname(cut);
}

interface Refusal {
  why: string;
  /** --force may override it (never for inputs, the current folder and its parents). */
  forceable: boolean;
}

function refusal(claim: OutputClaim & { path: string }, request: OutputRequest): Refusal | undefined {
  const path = resolve(claim.path);
  const cwd = process.cwd();
  if (path === parse(path).root) return { why: 'is the root of the file system', forceable: false };
  if (isSameOrAncestor(path, cwd)) {
    const why = path === cwd ? 'is the current directory' : 'is a folder above the current directory';
    return { why, forceable: false };
  }
  for (const input of request.inputs) {
    if (!input || input === '-') continue;
    const inputPath = resolve(literalPrefix(input));
    if (!existsSync(inputPath)) continue; // nothing there to lose (or a method name such as prompt-lookup)
    if (path === inputPath) return { why: `is an input of this ${request.command}`, forceable: false };
    if (isSameOrAncestor(path, inputPath)) {
      return { why: `holds ${input}, an input of this ${request.command}`, forceable: false };
    }
  }
  const spec = KINDS[claim.kind];
  if (!existsSync(path)) return undefined;
  const stats = statSync(path);
  if ((spec.shape === 'folder') !== stats.isDirectory()) {
    const [found, wanted] = stats.isDirectory() ? ['folder', 'file'] : ['file', 'folder'];
    return { why: `is a ${found}, and ${request.command} writes a ${wanted} there`, forceable: true };
  }
  if (spec.shape === 'folder' && readdirSync(path).length === 0) return undefined;
  if (spec.shape === 'file' && stats.size === 0) return undefined;
  if (spec.isEarlier(path, claim)) return undefined;
  const found = stats.isDirectory() ? 'is a non-empty folder' : 'exists';
  return { why: `${found} and is not ${spec.what}`, forceable: true };
}

/** Locks this process holds: released on exit, however it exits. */
const heldLocks = new Map<string, string>();
let exitHookInstalled = false;

function lockPathOf(output: string): string {
  return join(dirname(output), `.${basename(output)}.lock`);
}

interface LockOwner {
  pid: number;
  command: string;
  token: string;
  started_at: string;
}

function readOwner(path: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
  } catch {
    return undefined; // being written, or not ours: treated as held
  }
}

/** Create the lock file atomically (link fails when it exists); false when another owner holds it. */
function tryCreateLock(lockPath: string, owner: LockOwner): boolean {
  const temp = `${lockPath}.${owner.token}`;
  writeFileSync(temp, JSON.stringify(owner) + '\n');
  try {
    linkSync(temp, lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Remove a lock whose process is gone; renamed aside first so a live lock taken meanwhile is put back. */
function breakStaleLock(lockPath: string, stale: LockOwner): void {
  const aside = `${lockPath}.stale-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(lockPath, aside);
  } catch {
    return; // someone else broke it first
  }
  const taken = readOwner(aside);
  if (taken && taken.token !== stale.token) {
    try {
      linkSync(aside, lockPath); // a live owner's lock: put it back (unless a third owner took the path)
    } catch {
      // the path was taken again meanwhile; that owner's lock stands
    }
  }
  unlinkSync(aside);
}

function acquireLock(output: string, command: string): void {
  const lockPath = lockPathOf(output);
  try {
    mkdirSync(dirname(lockPath), { recursive: true });
  } catch {
    // A file where a parent folder goes: no process can write this output, and the stage's own
    // write reports why (a path under a file destroys nothing, so it is not refused here).
    return;
  }
  const token = randomBytes(8).toString('hex');
  const owner: LockOwner = { pid: process.pid, command, token, started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreateLock(lockPath, owner)) {
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.on('exit', releaseOutputs);
      }
      heldLocks.set(lockPath, owner.token);
      return;
    }
    const holder = readOwner(lockPath);
    if (holder && holder.pid !== process.pid && !processAlive(holder.pid)) {
      breakStaleLock(lockPath, holder);
      continue;
    }
    const who = holder
      ? `fireopt ${holder.command} (pid ${holder.pid}, since ${holder.started_at})`
      : 'another fireopt process';
    throw new OutputLockedError(
      `${output}: ${who} is writing this output right now`,
      `HINT: wait for it to finish, or choose another output; the lock is ${lockPath} ` +
        '(removed when that process exits)',
    );
  }
  throw new OutputLockedError(`${output}: could not take the lock ${lockPath}: other processes keep taking it`);
}

/**
 * Check every output of a command before any work, then lock them. Throws OutputRefusedError
 * (exit 2) naming the path and why, or OutputLockedError when another process writes it.
 */
export function claimOutputs(request: OutputRequest): void {
  const outputs = request.outputs.filter((claim): claim is OutputClaim & { path: string } => claim.path !== undefined);
  for (const claim of outputs) {
    const problem = refusal(claim, request);
    if (!problem) continue;
    if (problem.forceable && request.force) continue;
    const forceHint = problem.forceable ? `, or pass --force to replace it (its content is deleted)` : '';
    throw new OutputRefusedError(
      `${request.command} ${claim.option} ${claim.path}: refusing to write there: it ${problem.why}`,
      `HINT: choose another ${claim.option}${forceHint}`,
    );
  }
  for (const claim of outputs) acquireLock(resolve(claim.path), request.command);
}

/** Release the locks this process holds (the top-level handler calls it when a command ends). */
export function releaseOutputs(): void {
  for (const [lockPath, token] of heldLocks) {
    if (readOwner(lockPath)?.token === token) rmSync(lockPath, { force: true });
  }
  heldLocks.clear();
}
