// Training throughput of `fireopt train` (wasm, 1 thread) beside PyTorch on the CPU for the identical
// architecture, batch and sequence length, in the same run. Needs built dist, targets from
// bench/train-stories.mjs (its workdir's targets/), and python3 with torch (Debian's python3-torch).
// Usage: node bench/train-throughput.mjs <targets-dir> [python]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..');
const targets = resolve(process.argv[2]);
const python = process.argv[3] ?? '/usr/bin/python3';
const shapes = [
  { name: 'd128 L2 vocab512', dim: 128, layers: 2, heads: 4, kv: 2, hidden: 352, vocab: 512, batch: 16, seq: 128 },
  {
    name: 'd256 L4 vocab512 (draft-small)',
    dim: 256,
    layers: 4,
    heads: 4,
    kv: 2,
    hidden: 704,
    vocab: 512,
    batch: 8,
    seq: 256,
  },
];
const steps = Number(process.env.STEPS ?? 30);
const rows = [];
for (const s of shapes) {
  const out = join(mkdtempSync(join(tmpdir(), 'fireopt-throughput-')), 'run');
  execFileSync(
    process.execPath,
    [
      join(repo, 'bin/fireopt'),
      '--quiet',
      'train',
      targets,
      '--out',
      out,
      '--set',
      'train.select=off',
      '--set',
      'train.backend=wasm',
      '--set',
      'train.loss={ce: 1, kl: 0, tv: 0}',
      '--set',
      `train.model={preset: draft-nano, dim: ${s.dim}, n_layers: ${s.layers}, n_heads: ${s.heads}, ` +
        `n_kv_heads: ${s.kv}, hidden_dim: ${s.hidden}}`,
      '--set',
      `train.seq_len=${s.seq}`,
      '--set',
      `train.batch_size=${s.batch}`,
      '--set',
      `train.max_steps=${steps + 3}`,
      '--set',
      `train.eval_every=100000`,
      '--set',
      'train.eval_rows=1',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  // Steady state: steps 4.. (the first steps pack XNNPACK operators), from the cumulative elapsed time.
  const train = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.type === 'train');
  const first = train[2];
  const last = train[train.length - 1];
  const fireoptTokensPerSec = (last.tokens - first.tokens) / (last.elapsed_s - first.elapsed_s);
  const torch = JSON.parse(
    execFileSync(
      python,
      [
        join(repo, 'bench/train_torch.py'),
        s.dim,
        s.layers,
        s.heads,
        s.kv,
        s.hidden,
        s.vocab,
        s.batch,
        s.seq,
        steps,
        1,
      ].map(String),
      { encoding: 'utf8' },
    ),
  );
  rows.push({
    shape: s.name,
    batch: s.batch,
    seq: s.seq,
    fireopt_wasm_1thread: Math.round(fireoptTokensPerSec),
    torch_cpu_1thread: Math.round(torch.tokens_per_s),
    ratio: +(fireoptTokensPerSec / torch.tokens_per_s).toFixed(2),
    torch: torch.torch,
  });
}
console.log(JSON.stringify(rows, null, 2));
