/**
 * The pipeline's export step: `runExport` (src/export) on the new draft, with the pipeline's paths.
 * The target defaults to the distill target's GGUF (llama-cpp engine) or train.target_model, so the
 * export's preflight checks the draft against the model it will be served beside.
 */
import type { FireoptConfig } from '../config/schema.js';
import type { ProgressSink } from '../progress.js';

export interface ExportOutcome {
  out: string;
  files: string[];
  notes: string[];
}

/** Write the serving artifacts of the draft checkpoint `draftDir` into `out` (replaced atomically by runExport). */
export async function exportDraft(
  config: FireoptConfig,
  draftDir: string,
  out: string,
  progress: ProgressSink,
): Promise<ExportOutcome> {
  const { runExport } = await import('../export/index.js');
  const target =
    config.export.target ?? (config.target?.engine === 'llama-cpp' ? config.target.model : config.train.target_model);
  const result = await runExport(
    {
      export: {
        ...config.export,
        model: draftDir,
        out,
        ...(target && { target }),
        name: config.export.name ?? config.name,
      },
      resolvedConfig: config,
    },
    { progress },
  );
  const files = [result.hfDir, result.gguf].filter((f): f is string => Boolean(f));
  return {
    out: result.out,
    files,
    notes: [...result.plan.warnings, ...result.servingCommands.map((c) => `${c.engine}: ${c.command}`)],
  };
}
