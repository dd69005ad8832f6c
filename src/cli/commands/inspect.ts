/** `fireopt inspect <dir>`: the manifest, schema, counts and first rows of a traces dataset, targets or a draft. */
import type { Command } from 'commander';
import type { ContextGetter } from '../context.js';

interface InspectFlags {
  rows: number;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('inspect')
    .summary("print a dataset's, targets directory's or draft's manifest, schema, counts and a few rows")
    .argument('<dataset>', 'a folder fireopt wrote: a traces dataset (ingest), targets (distill) or a draft (train)')
    .option('-n, --rows <n>', 'rows to show from each split', (v) => Number.parseInt(v, 10), 3)
    .action(async (dataset: string, flags: InspectFlags) => {
      const ctx = context();
      const { inspectOutput } = await import('../../ingest/inspect.js');
      const report = await inspectOutput(dataset, Number.isFinite(flags.rows) ? Math.max(0, flags.rows) : 3);
      if (ctx.globals.json) {
        ctx.io.stdout(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      const m = report.manifest;
      const made = `made by fireopt ${m.fireopt_version} at ${m.created_at}`;
      const out: string[] = [`${dataset}: ${m.kind} v${m.schema_version}, ${made}`];
      if (report.kind === 'draft') {
        const model = report.manifest.model;
        out.push(
          `model: ${report.parameters} parameters; dim ${model.dim}, ${model.nLayers} layers, ` +
            `${model.nHeads} heads (${model.nKvHeads} kv${model.headDim ? `, size ${model.headDim}` : ''}), ` +
            `vocabulary ${model.vocabSize}` +
            `${report.manifest.reduced_vocab ? ` (reduced from ${report.manifest.target_vocab_size})` : ''}`,
          `training: ${JSON.stringify(report.manifest.training)}`,
          'files:',
          ...report.files.map((f) => `  ${f.name} (${f.bytes} bytes)`),
          'tensors:',
          ...report.tensors.map((t) => `  ${t.name}: ${t.dtype} [${t.shape.join(', ')}]`),
        );
        ctx.io.stdout(out.join('\n') + '\n');
        return;
      }
      if (report.kind === 'targets') {
        const { counts, tokens } = report.manifest;
        out.push(`counts: ${JSON.stringify(counts ?? {})}; tokens: ${JSON.stringify(tokens ?? {})}`);
      } else {
        const traces = report.manifest;
        out.push(
          `rows: ${traces.rows.train} train, ${traces.rows.heldout} held-out; ` +
            `duplicates removed ${traces.duplicates_removed}; rejected ${traces.rejected.count}`,
          `by format: ${Object.entries(traces.rows_by_format)
            .map(([f, n]) => `${f} ${n}`)
            .join(', ')}`,
          'inputs:',
          ...traces.inputs.map(
            (i) =>
              `  ${i.path} (${i.format ?? 'unknown'}, ${i.bytes} bytes, sha256 ${i.sha256.slice(0, 12)}…): ` +
              `${i.records} records, ${i.samples} samples, ${i.rejected} rejected`,
          ),
        );
      }
      out.push('schema:', ...report.schema.map((f) => `  ${f.name}: ${f.type}${f.nullable ? ' (nullable)' : ''}`));
      for (const split of ['train', 'heldout'] as const) {
        const rows: unknown[] = report.rows[split];
        out.push(`first ${rows.length} ${split} rows:`);
        for (const row of rows) out.push(`  ${JSON.stringify(row)}`);
      }
      ctx.io.stdout(out.join('\n') + '\n');
    });
}
