/**
 * Every output directory describes itself with `manifest.json`: what kind of output it is, the
 * schema version, the fireopt version, the resolved config that made it, and the inputs. A reader
 * that finds another kind or version fails with a hint naming the command to re-run.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { FIREOPT_VERSION } from '../version.js';
import { writeFileAtomic } from '../util/atomic.js';

export interface ManifestHeader {
  kind: string;
  schema_version: number;
  fireopt_version: string;
  created_at: string;
}

export type Manifest<Body extends object> = ManifestHeader & Body;

export function makeManifest<Body extends object>(kind: string, schemaVersion: number, body: Body): Manifest<Body> {
  return {
    kind,
    schema_version: schemaVersion,
    fireopt_version: FIREOPT_VERSION,
    created_at: new Date().toISOString(),
    ...body,
  };
}

export function writeManifest(dir: string, manifest: ManifestHeader): void {
  writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}

/** Read `dir/manifest.json`, checking its kind and schema version. */
export function readManifest<Body extends object>(
  dir: string,
  kind: string,
  schemaVersion: number,
  rerunHint: string,
): Manifest<Body> {
  const path = join(dir, 'manifest.json');
  if (!existsSync(dir)) {
    const hint = `HINT: check the path, or run \`${rerunHint}\``;
    throw new InputError(`${dir}: no such folder (expected a fireopt ${kind})`, hint, 'E_NOT_FOUND');
  }
  if (!statSync(dir).isDirectory()) {
    const hint = `HINT: give the folder \`${rerunHint}\` wrote`;
    throw new InputError(`${dir}: a file, not a fireopt ${kind} folder`, hint, 'E_MANIFEST');
  }
  if (!existsSync(path)) {
    throw new InputError(
      `${dir}: not a fireopt ${kind} (no manifest.json)`,
      `HINT: re-run \`${rerunHint}\``,
      'E_MANIFEST',
    );
  }
  let manifest: ManifestHeader;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8')) as ManifestHeader;
  } catch (error) {
    throw new InputError(
      `${path}: unreadable manifest (${(error as Error).message})`,
      `HINT: re-run \`${rerunHint}\``,
      'E_MANIFEST',
    );
  }
  if (manifest.kind !== kind) {
    throw new InputError(`${path}: expected a ${kind}, found a ${String(manifest.kind)}`, undefined, 'E_MANIFEST');
  }
  if (manifest.schema_version !== schemaVersion) {
    throw new InputError(
      `${path}: ${kind} schema version ${manifest.schema_version}, this fireopt reads version ${schemaVersion}`,
      `HINT: re-run \`${rerunHint}\` with fireopt ${FIREOPT_VERSION}`,
      'E_SCHEMA_VERSION',
    );
  }
  return manifest as Manifest<Body>;
}
