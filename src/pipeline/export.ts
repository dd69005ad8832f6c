/**
 * The pipeline's export step. `src/export` (`runExport`: Hugging Face and GGUF serving artifacts)
 * is being written beside this module; until it lands, the pipeline writes what the formats layer
 * already can: the draft's Hugging Face folder as it is and, for a full-vocabulary draft, one GGUF
 * file with the target tokenizer embedded. Swapping in `runExport` changes only this file.
 */
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readDraftCheckpoint } from '../formats/draft-checkpoint.js';
import { writeLlamaGguf } from '../formats/gguf-llama.js';
import type { ProgressSink } from '../progress.js';
import { StagedDir, writeFileAtomic } from '../util/atomic.js';

export interface ExportOutcome {
  out: string;
  files: string[];
  notes: string[];
}

/** Write the serving artifacts of the draft checkpoint `draftDir` into `out` (replaced atomically). */
export async function exportDraft(draftDir: string, out: string, name: string, progress: ProgressSink): Promise<ExportOutcome> {
  const staged = new StagedDir(out);
  try {
    const files: string[] = [];
    const notes: string[] = [];
    const hfDir = join(staged.path, 'hf');
    mkdirSync(hfDir);
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.gguf', 'draft_vocab.json', 'manifest.json']) {
      if (existsSync(join(draftDir, file))) {
        cpSync(join(draftDir, file), join(hfDir, file));
        files.push(`hf/${file}`);
      }
    }
    const checkpoint = readDraftCheckpoint(draftDir);
    if (checkpoint.draftVocabulary) {
      notes.push('reduced draft vocabulary: no GGUF (llama.cpp drafts must share the target vocabulary); serve the hf/ folder with draft_vocab.json');
    } else if (!checkpoint.vocabulary) {
      notes.push('the draft carries no tokenizer: no GGUF written');
    } else {
      writeLlamaGguf(join(staged.path, 'draft.gguf'), checkpoint.weights, checkpoint.vocabulary, { name });
      files.push('draft.gguf');
    }
    const readme = [
      `# ${name}: exported draft`,
      '',
      ...(files.includes('draft.gguf') ? ['llama.cpp: `llama-server -m <target.gguf> -md draft.gguf --draft-max 8`', ''] : []),
      'Hugging Face Llama folder: `hf/` (config.json, model.safetensors, tokenizer.gguf).',
      ...notes.map((n) => `- ${n}`),
      '',
    ].join('\n');
    writeFileAtomic(join(staged.path, 'README.md'), readme);
    files.push('README.md');
    staged.commit();
    progress({ kind: 'log', level: 'info', message: `export: ${files.join(', ')}` });
    return { out, files, notes };
  } catch (error) {
    staged.abort();
    throw error;
  }
}
