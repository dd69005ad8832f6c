/** `--key value` and bare `--flag` (→ 'true') command-line options of a bench script, as a Map. */
export function benchArgs(argv = process.argv.slice(2)) {
  const args = new Map();
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) args.set(key, argv[++i]);
    else args.set(key, 'true');
  }
  return args;
}
