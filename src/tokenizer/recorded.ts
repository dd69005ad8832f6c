/** A tokenizer as a manifest records it (`tokenizer: { source, sha256, identity }`), for later stages to check. */
import { existsSync } from 'node:fs';
import { readTokenizerFile } from '../formats/load-model.js';
import { parseTokenizerIdentity, type ExpectedTokenizer } from './identity.js';
import { loadTokenizer, tokenizerFromVocabulary } from './load.js';

/**
 * The expected tokenizer of a manifest's `tokenizer` record, labelled `${label}: <source>)` (the
 * label opens the parenthesis); undefined for manifests written before the record existed.
 */
export function recordedTokenizer(label: string, record: unknown): ExpectedTokenizer | undefined {
  const identity = parseTokenizerIdentity(record);
  if (!identity) return undefined;
  const source = (record as { source?: unknown }).source;
  const path = typeof source === 'string' ? source : undefined;
  return {
    identity,
    label: `${label}${path ? `: ${path}` : ''})`,
    load: async () => {
      if (!path || !existsSync(path)) return undefined;
      // Only to name the first differing token: a file that no longer reads leaves the hash comparison.
      try {
        if (path.endsWith('.json')) return await loadTokenizer(path);
        return await tokenizerFromVocabulary(readTokenizerFile(path, identity.vocab_size));
      } catch {
        return undefined;
      }
    },
  };
}
