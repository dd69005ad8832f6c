/** File names made from model or config names, kept inside the output folder. */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { InputError } from '../errors.js';

/**
 * A file name made from a free-form name: characters other than letters, digits, `.`, `_` and `-`
 * become `-`, leading dots and dashes go (no hidden files, no `..`, no option-like names), and it is
 * cut to 96 characters. Empty results become `fallback`.
 */
export function safeFileName(name: string, fallback = 'draft'): string {
  const cleaned = name
    .normalize('NFKC')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[.-]+/, '')
    .slice(0, 96)
    .replace(/[.-]+$/, '');
  return cleaned || fallback;
}

/** `dir/relativePath`, refusing any path that would land outside `dir`. */
export function pathInside(dir: string, relativePath: string): string {
  const base = resolve(dir);
  const full = resolve(base, relativePath);
  const rel = relative(base, full);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
    throw new InputError(`refusing to write '${relativePath}': it is not inside the output folder ${base}`);
  }
  return full;
}

/** True when `inner` is `outer` or lies inside it. */
export function isInside(outer: string, inner: string): boolean {
  const rel = relative(resolve(outer), resolve(inner));
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}
