#!/usr/bin/env node
/**
 * The decode and eval part of the GPU check: two real `fireopt` commands on a small fixed input, run
 * as users run them (bin/fireopt in a child process), compared with the same commands' wasm results:
 *   - `fireopt distill` with the tfjs target engine on stories260K: KV-cache decoding, greedy, top-4
 *     log-probabilities (16 prompts × 32 tokens);
 *   - `fireopt eval` of a draft (stories260K with its last layer dropped) on 64 rows of the carried
 *     training targets: the batched teacher-forced pass, τ for k = 1..8 and sampling acceptance.
 *
 *   node scripts/gpu/decode-check.mjs reference --prompts <jsonl> --model <stories260K.gguf> --targets <dir> \
 *       --out <dir>
 *       (here, at pack time, on wasm) writes <out>/{dataset/, draft/, stories260K.gguf, reference.json}
 *   node scripts/gpu/decode-check.mjs gpu --data <that dir> --targets <dir> --out <result.json>
 *       (on the GPU machine, backend auto: it must choose webgpu) compares with reference.json
 *
 * Greedy decoding can leave the wasm path at a near tie, so tokens are compared up to the first
 * difference in each row, log-probabilities over that common prefix.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeDraftCheckpoint } from '../../dist/formats/draft-checkpoint.js';
import { readLlamaGguf } from '../../dist/formats/gguf-llama.js';
import { readTargetRows } from '../../dist/formats/targets-schema.js';

const app = resolve(import.meta.dirname, '../..');
const [mode] = process.argv.slice(2, 3);
const { values } = parseArgs({
  args: process.argv.slice(3),
  options: {
    prompts: { type: 'string' },
    model: { type: 'string' },
    targets: { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string' },
  },
});
const log = (line) => console.error(`[decode-check] ${line}`);
const PROMPTS = 16;
const MAX_TOKENS = 32;
const EVAL_ROWS = 64;
// Pass criteria on the GPU: rows decoded identically, log-probability and τ agreement.
const MIN_IDENTICAL_ROWS = 0.9;
const MAX_LOGPROB_DIFF = 1e-3;
const MAX_TAU_REL_DIFF = 0.01;

/** Run bin/fireopt (not --quiet: the backend line is among its log lines); its stderr and wall time. */
function fireopt(args, cwd) {
  const started = performance.now();
  const run = spawnSync(process.execPath, [join(app, 'bin/fireopt'), ...args], {
    cwd,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (run.status !== 0)
    throw new Error(
      `fireopt ${args[0]} failed (exit ${run.status ?? run.signal}): ` +
        `${run.stderr.trim().split('\n').slice(-5).join(' | ')}`,
    );
  return { seconds: (performance.now() - started) / 1000, stderr: run.stderr };
}

/** Both commands on `backend`; their results in a comparable form. */
async function runCommands(data, targets, backend, work) {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  // The one line initBackend logs: what was chosen, and why the ones before it were not.
  const backendLine = (stderr) =>
    stderr
      .split('\n')
      .find((line) => line.startsWith('backend: '))
      ?.slice('backend: '.length)
      .trim() ?? null;
  const target = `target={engine: tfjs, model: ${join(data, 'stories260K.gguf')}, backend: ${backend}}`;
  const distill = fireopt(
    [
      'distill',
      join(data, 'dataset'),
      '--out',
      join(work, 'decoded'),
      '--set',
      target,
      '--max-tokens',
      String(MAX_TOKENS),
      '--top-logprobs',
      '4',
    ],
    work,
  );
  const decoded = {};
  for (const split of ['train', 'heldout']) {
    const file = join(work, 'decoded', `${split}.arrow`);
    if (!existsSync(file)) continue;
    for await (const row of readTargetRows(file))
      decoded[row.id] = {
        tokens: Array.from(row.completion_token_ids),
        logprobs: Array.from(row.token_logprobs ?? []),
      };
  }
  const evaluated = fireopt(
    [
      'eval',
      '--model',
      join(data, 'draft'),
      '--data',
      targets,
      '--split',
      'train',
      '--limit',
      String(EVAL_ROWS),
      '--cost-ratio',
      '0.1',
      '--set',
      `eval.backend=${backend}`,
      '--out',
      join(work, 'eval'),
    ],
    work,
  );
  const report = JSON.parse(readFileSync(join(work, 'eval', 'report.json'), 'utf8'));
  const [draft] = report.candidates;
  return {
    decode: { backend: backendLine(distill.stderr), seconds: round(distill.seconds, 2), rows: decoded },
    eval: {
      backend: backendLine(evaluated.stderr),
      seconds: round(evaluated.seconds, 2),
      rows: report.data.rows,
      tokens: report.data.tokens,
      tau_by_k: draft.by_k.map((entry) => entry.tau),
      sampling_lower: draft.sampling_acceptance?.lower ?? null,
    },
  };
}

const round = (value, digits) => Number(value.toFixed(digits));

function compare(got, reference) {
  let identical = 0;
  let rows = 0;
  let positions = 0;
  let worstLogprob = 0;
  for (const [id, expected] of Object.entries(reference.decode.rows)) {
    const row = got.decode.rows[id];
    rows++;
    if (!row) continue;
    let same = 0;
    while (same < Math.min(row.tokens.length, expected.tokens.length) && row.tokens[same] === expected.tokens[same])
      same++;
    if (same === expected.tokens.length && same === row.tokens.length) identical++;
    for (let t = 0; t < same && t < expected.logprobs.length; t++)
      worstLogprob = Math.max(worstLogprob, Math.abs(row.logprobs[t] - expected.logprobs[t]));
    positions += same;
  }
  const tauRel = Math.max(
    ...got.eval.tau_by_k.map((tau, i) => Math.abs(tau - reference.eval.tau_by_k[i]) / reference.eval.tau_by_k[i]),
  );
  const decodePass = rows > 0 && identical / rows >= MIN_IDENTICAL_ROWS && worstLogprob < MAX_LOGPROB_DIFF;
  const evalPass = got.eval.rows === reference.eval.rows && tauRel < MAX_TAU_REL_DIFF;
  return {
    decode: {
      rows,
      identical_rows: identical,
      compared_positions: positions,
      max_logprob_diff: worstLogprob,
      pass: decodePass,
    },
    eval: {
      rows: got.eval.rows,
      tau_k8: got.eval.tau_by_k[7],
      reference_tau_k8: reference.eval.tau_by_k[7],
      max_tau_rel_diff: tauRel,
      sampling_lower: got.eval.sampling_lower,
      reference_sampling_lower: reference.eval.sampling_lower,
      pass: evalPass,
    },
    pass: decodePass && evalPass,
  };
}

if (mode === 'reference') {
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });
  const prompts = readFileSync(values.prompts, 'utf8').trim().split('\n').slice(0, PROMPTS);
  writeFileSync(join(out, 'prompts.jsonl'), prompts.join('\n') + '\n');
  rmSync(join(out, 'dataset'), { recursive: true, force: true });
  fireopt(['--quiet', 'ingest', join(out, 'prompts.jsonl'), '--out', join(out, 'dataset'), '--heldout', '0'], out);
  copyFileSync(values.model, join(out, 'stories260K.gguf'));
  const { weights, vocabulary } = readLlamaGguf(values.model);
  const draftWeights = {
    ...weights,
    config: { ...weights.config, nLayers: weights.config.nLayers - 1 },
    layers: weights.layers.slice(0, -1),
  };
  rmSync(join(out, 'draft'), { recursive: true, force: true });
  writeDraftCheckpoint(
    join(out, 'draft'),
    {
      weights: draftWeights,
      vocabulary,
      target: { engine: 'llama-cpp', model: 'stories260K.gguf' },
      training: { made_by: 'scripts/gpu/decode-check.mjs: stories260K, last layer dropped' },
    },
    {},
  );
  const result = await runCommands(out, resolve(values.targets), 'wasm', join(out, 'runs.work'));
  rmSync(join(out, 'runs.work'), { recursive: true, force: true });
  writeFileSync(
    join(out, 'reference.json'),
    JSON.stringify({ machine: `${process.platform} ${process.arch}, node ${process.version}`, ...result }) + '\n',
  );
  log(
    `reference on wasm: decode ${Object.keys(result.decode.rows).length} rows in ${result.decode.seconds} s; ` +
      `eval τ(k=8) ${result.eval.tau_by_k[7].toFixed(3)} in ${result.eval.seconds} s`,
  );
} else if (mode === 'gpu') {
  const data = resolve(values.data);
  const reference = JSON.parse(readFileSync(join(data, 'reference.json'), 'utf8'));
  const result = { backend: null, decode: null, eval: null, comparison: null, error: null };
  try {
    const work = mkdtempSync(join(tmpdir(), 'fireopt-decode-check-'));
    const got = await runCommands(data, resolve(values.targets), 'auto', work);
    rmSync(work, { recursive: true, force: true });
    result.backend = { decode: got.decode.backend, eval: got.eval.backend };
    result.decode = { seconds: got.decode.seconds, reference_wasm_seconds: reference.decode.seconds };
    result.eval = { seconds: got.eval.seconds, reference_wasm_seconds: reference.eval.seconds };
    result.comparison = compare(got, reference);
    const c = result.comparison;
    log(`backend: ${got.decode.backend} (distill), ${got.eval.backend} (eval)`);
    log(
      `decode: ${c.decode.identical_rows}/${c.decode.rows} rows identical to wasm, ` +
        `max |Δ log p| ${c.decode.max_logprob_diff.toExponential(2)} over ${c.decode.compared_positions} positions, ` +
        `${got.decode.seconds} s (wasm here: ${reference.decode.seconds} s)`,
    );
    log(
      `eval: τ(k=8) ${c.eval.tau_k8.toFixed(4)} vs wasm ${c.eval.reference_tau_k8.toFixed(4)}, ` +
        `max relative Δτ ${c.eval.max_tau_rel_diff.toExponential(2)}, ` +
        `${got.eval.seconds} s (wasm here: ${reference.eval.seconds} s)`,
    );
    log(c.pass ? 'PASS' : 'FAIL');
  } catch (error) {
    result.error = String(error.message ?? error);
    log(`error: ${result.error}`);
  }
  writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n');
  const onWebGpu = /^webgpu/.test(result.backend?.decode ?? '') && /^webgpu/.test(result.backend?.eval ?? '');
  // 3: passed, but not on webgpu (no adapter)
  process.exitCode = result.error || !result.comparison.pass ? 1 : onWebGpu ? 0 : 3;
} else {
  console.error(
    'usage: decode-check.mjs reference --prompts <jsonl> --model <gguf> --targets <dir> --out <dir> | ' +
      'gpu --data <dir> --targets <dir> --out <json>',
  );
  process.exitCode = 2;
}
