/** `fireopt inspect <dataset>`: print a dataset's manifest, schema and first rows. */
import type { Command } from 'commander';
import type { ContextGetter } from '../context.js';

interface InspectFlags {
  rows: number;
}

export function register(program: Command, context: ContextGetter): void {
  program
    .command('inspect')
    .summary('print a dataset\'s manifest, schema and a few rows')
    .argument('<dataset>', 'a dataset directory written by fireopt ingest')
    .option('-n, --rows <n>', 'rows to show from each split', (v) => Number.parseInt(v, 10), 3)
    .action(async (dataset: string, flags: InspectFlags) => {
      const ctx = context();
      const { inspectTraces } = await import('../../ingest/inspect.js');
      const report = await inspectTraces(dataset, Number.isFinite(flags.rows) ? Math.max(0, flags.rows) : 3);
      if (ctx.globals.json) {
        ctx.io.stdout(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      const m = report.manifest;
      const out: string[] = [
        `${dataset}: ${m.kind} v${m.schema_version}, made by fireopt ${m.fireopt_version} at ${m.created_at}`,
        `rows: ${m.rows.train} train, ${m.rows.heldout} held-out; duplicates removed ${m.duplicates_removed}; rejected ${m.rejected.count}`,
        `by format: ${Object.entries(m.rows_by_format).map(([f, n]) => `${f} ${n}`).join(', ')}`,
        'inputs:',
        ...m.inputs.map((i) => `  ${i.path} (${i.format ?? 'unknown'}, ${i.bytes} bytes, sha256 ${i.sha256.slice(0, 12)}…): ${i.records} records, ${i.samples} samples, ${i.rejected} rejected`),
        'schema:',
        ...report.schema.map((f) => `  ${f.name}: ${f.type}${f.nullable ? ' (nullable)' : ''}`),
      ];
      for (const split of ['train', 'heldout'] as const) {
        out.push(`first ${report.rows[split].length} ${split} rows:`);
        for (const row of report.rows[split]) out.push(`  ${JSON.stringify(row)}`);
      }
      ctx.io.stdout(out.join('\n') + '\n');
    });
}
