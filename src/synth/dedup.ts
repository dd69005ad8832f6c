/**
 * Exact and near-duplicate detection for short texts. Exact: equal after normalisation (Unicode
 * NFKC, lower case, punctuation and runs of spaces folded). Near: Jaccard similarity of the
 * normalised texts' character 4-gram sets, found through an inverted index from 4-gram to texts
 * (so a candidate is compared only with texts it shares a 4-gram with; exact, no hashing error).
 */

const SHINGLE = 4;

/** Text as compared for duplicates. */
export function normaliseText(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** The set of character 4-grams of normalised text (the whole text when shorter). */
export function shingles(normalised: string): Set<string> {
  const result = new Set<string>();
  if (normalised.length <= SHINGLE) {
    if (normalised) result.add(normalised);
    return result;
  }
  for (let i = 0; i + SHINGLE <= normalised.length; i++) result.add(normalised.slice(i, i + SHINGLE));
  return result;
}

export type DuplicateVerdict =
  | { kind: 'new' }
  | { kind: 'exact'; of: number }
  | { kind: 'near'; of: number; similarity: number };

/** Texts seen so far, for exact and near-duplicate checks. */
export class NearDuplicateIndex {
  private readonly exact = new Map<string, number>();
  private readonly postings = new Map<string, number[]>();
  private readonly sizes: number[] = [];

  constructor(private readonly threshold: number) {}

  get size(): number {
    return this.sizes.length;
  }

  /** Whether `text` duplicates an indexed text (and which, by insertion index). */
  check(text: string): DuplicateVerdict {
    const normalised = normaliseText(text);
    const exactOf = this.exact.get(normalised);
    if (exactOf !== undefined) return { kind: 'exact', of: exactOf };
    const grams = shingles(normalised);
    const overlaps = new Map<number, number>();
    for (const gram of grams)
      for (const id of this.postings.get(gram) ?? []) overlaps.set(id, (overlaps.get(id) ?? 0) + 1);
    let best: DuplicateVerdict = { kind: 'new' };
    let bestSimilarity = 0;
    for (const [id, shared] of overlaps) {
      const similarity = shared / (grams.size + this.sizes[id] - shared);
      if (similarity >= this.threshold && similarity > bestSimilarity) {
        bestSimilarity = similarity;
        best = { kind: 'near', of: id, similarity };
      }
    }
    return best;
  }

  /** Index `text`; returns its insertion index. */
  add(text: string): number {
    const normalised = normaliseText(text);
    const id = this.sizes.length;
    const grams = shingles(normalised);
    this.sizes.push(grams.size);
    if (!this.exact.has(normalised)) this.exact.set(normalised, id);
    for (const gram of grams) {
      const list = this.postings.get(gram);
      if (list) list.push(id);
      else this.postings.set(gram, [id]);
    }
    return id;
  }
}
