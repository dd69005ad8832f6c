/**
 * A stand-in for the `aws` CLI in the CI-example test: `aws s3 sync` and `aws s3 cp` on a folder
 * that plays the bucket (s3://bucket/key → <root>/bucket/key). S3 cannot be reached from a test;
 * everything else the workflow runs is the real thing.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SCRIPT = String.raw`#!/usr/bin/env node
const fs = require('node:fs');
const path = require('node:path');
const root = process.env.FAKE_S3_ROOT;
const args = process.argv.slice(2);
const local = (uri) => (uri.startsWith('s3://') ? path.join(root, uri.slice(5)) : uri);
const excluded = [];
let remove = false;
const operands = [];
for (let i = 2; i < args.length; i++) {
  if (args[i] === '--delete') remove = true;
  else if (args[i] === '--exclude') excluded.push(args[++i]);
  else operands.push(args[i]);
}
const [from, to] = operands.map(local);
if (args[0] !== 's3' || operands.length !== 2) {
  console.error('fake aws: unsupported ' + args.join(' '));
  process.exit(252);
}
if (args[1] === 'cp') {
  if (!fs.existsSync(from)) { console.error('fatal error: ' + operands[0] + ' does not exist'); process.exit(1); }
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
} else if (args[1] === 'sync') {
  const files = (dir) =>
    !fs.existsSync(dir)
      ? []
      : fs.readdirSync(dir, { recursive: true }).filter((f) => fs.statSync(path.join(dir, f)).isFile());
  const keep = (file) => !excluded.includes(path.basename(file));
  const source = files(from).filter(keep);
  for (const file of source) {
    fs.mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    fs.copyFileSync(path.join(from, file), path.join(to, file));
  }
  if (remove) for (const file of files(to).filter(keep)) if (!source.includes(file)) fs.rmSync(path.join(to, file));
} else { console.error('fake aws: unsupported s3 ' + args[1]); process.exit(252); }
`;

/** Write the stand-in as `<binDir>/aws`; put binDir first on PATH and set FAKE_S3_ROOT. */
export function writeFakeAws(binDir: string): void {
  const file = join(binDir, 'aws');
  writeFileSync(file, SCRIPT);
  chmodSync(file, 0o755);
}
