/**
 * A tokenizer's identity: a hash of its token table and its special ids, recorded in every manifest
 * from distill on, so that a stage handed another model's tokenizer refuses it instead of training a
 * draft on the wrong ids. Built only from the public interface (pieces, special flags, BOS/EOS), so
 * every tokenizer implementation gets the same identity for the same table.
 */
import { createHash } from 'node:crypto';
import { InputError } from '../errors.js';
import type { Tokenizer } from './tokenizer.js';

export interface TokenizerIdentity {
  /** sha256 of the pieces in id order and of which ids are special (control, unknown). */
  sha256: string;
  vocab_size: number;
  bos_id: number | null;
  eos_id: number | null;
}

/** The identity of `tokenizer`'s token table. */
export function tokenizerIdentity(tokenizer: Tokenizer): TokenizerIdentity {
  const pieces = tokenizer.pieces();
  const hash = createHash('sha256');
  for (let id = 0; id < pieces.length; id++) {
    // Length-prefixed, so no two tables hash alike by shifting text between neighbouring pieces.
    const piece = Buffer.from(pieces[id], 'utf8');
    hash.update(`${piece.length}:${tokenizer.isSpecial(id) ? 's' : 'n'}:`).update(piece);
  }
  return {
    sha256: hash.digest('hex'),
    vocab_size: pieces.length,
    bos_id: tokenizer.bosId ?? null,
    eos_id: tokenizer.eosId ?? null,
  };
}

/** The first id whose piece or special flag differs, with both pieces (undefined when the tables agree). */
export function firstTokenDifference(
  expected: Tokenizer,
  actual: Tokenizer,
): { id: number; expected: string; actual: string } | undefined {
  const a = expected.pieces();
  const b = actual.pieces();
  for (let id = 0; id < Math.max(a.length, b.length); id++) {
    if (a[id] !== b[id] || (id < a.length && id < b.length && expected.isSpecial(id) !== actual.isSpecial(id))) {
      return { id, expected: a[id] ?? '(none)', actual: b[id] ?? '(none)' };
    }
  }
  return undefined;
}

/** The tokenizer a stage expects: its identity (as recorded) and, when still readable, the tokenizer itself. */
export interface ExpectedTokenizer {
  identity: TokenizerIdentity;
  /** Names it in messages: "the targets' tokenizer (out/targets/manifest.json: stories.gguf)". */
  label: string;
  /** Opens it, when its file still exists: lets the message name the first differing token. */
  load?: () => Promise<Tokenizer | undefined>;
}

/**
 * Refuse `actual` (named by `actualLabel`; a tokenizer, or only its recorded identity) when its identity
 * differs from the expected one: exit 2, naming the first differing token id and both pieces when both
 * tokenizers can be read.
 */
export async function checkSameTokenizer(
  expected: ExpectedTokenizer,
  actual: Tokenizer | TokenizerIdentity,
  actualLabel: string,
  hint: string,
): Promise<void> {
  const identity = 'sha256' in actual ? actual : tokenizerIdentity(actual);
  if (sameIdentity(expected.identity, identity)) return;
  throw new InputError(
    `${actualLabel} differs from ${expected.label}: ${await describeDifference(expected, actual, identity)}`,
    hint,
    'E_TOKENIZER_MISMATCH',
  );
}

function sameIdentity(a: TokenizerIdentity, b: TokenizerIdentity): boolean {
  return a.sha256 === b.sha256 && a.vocab_size === b.vocab_size && a.bos_id === b.bos_id && a.eos_id === b.eos_id;
}

async function describeDifference(
  recorded: ExpectedTokenizer,
  actual: Tokenizer | TokenizerIdentity,
  identity: TokenizerIdentity,
): Promise<string> {
  const expectedTokenizer = 'sha256' in actual ? undefined : await recorded.load?.();
  const bothReadable = expectedTokenizer && !('sha256' in actual);
  const difference = bothReadable ? firstTokenDifference(expectedTokenizer, actual) : undefined;
  if (difference) {
    const [expectedPiece, actualPiece] = [JSON.stringify(difference.expected), JSON.stringify(difference.actual)];
    return `first difference at token id ${difference.id}: ${expectedPiece} expected, ${actualPiece} here`;
  }
  const was = recorded.identity;
  const parts: string[] = [];
  if (was.vocab_size !== identity.vocab_size) parts.push(`${was.vocab_size} tokens there, ${identity.vocab_size} here`);
  if (was.bos_id !== identity.bos_id) parts.push(`BOS ${was.bos_id} there, ${identity.bos_id} here`);
  if (was.eos_id !== identity.eos_id) parts.push(`EOS ${was.eos_id} there, ${identity.eos_id} here`);
  if (parts.length === 0) {
    const [there, here] = [was.sha256.slice(0, 12), identity.sha256.slice(0, 12)];
    parts.push(`token tables differ (sha256 ${there}… there, ${here}… here)`);
  }
  return parts.join('; ');
}

/** Read a recorded identity from a manifest's `tokenizer` field (undefined for manifests written before it existed). */
export function parseTokenizerIdentity(value: unknown): TokenizerIdentity | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  const identity = record.identity as Record<string, unknown> | undefined;
  if (!identity || typeof identity.sha256 !== 'string' || typeof identity.vocab_size !== 'number') return undefined;
  const id = (v: unknown): number | null => (typeof v === 'number' ? v : null);
  return {
    sha256: identity.sha256,
    vocab_size: identity.vocab_size,
    bos_id: id(identity.bos_id),
    eos_id: id(identity.eos_id),
  };
}
