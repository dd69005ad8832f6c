/**
 * A SuffixDecoding-style speculator (Oliaro et al. 2024): a frequency-counted trie of every
 * substring (up to `maxDepth` tokens) of earlier completions — here, the training split's — plus
 * the request's own context. For a context it finds the longest suffix that occurs in the trie
 * (up to `maxPattern` tokens) and proposes the most frequent continuation, token by token, while
 * each token's empirical probability given the path stays ≥ `minTokenProbability`.
 *
 * Written by hand: no maintained JS library offers a counted token-sequence trie. The trie is
 * depth-limited and stores a path that only one position has taken so far as a reference into that
 * completion (a tail), made into nodes only when a later position shares it: nodes grow with the
 * branching points, not with tokens × depth (a node per token and depth ran a 1.6M-token train split
 * out of Node's 4 GB heap).
 */
import { NgramIndex } from './prompt-lookup.js';
import type { Proposer, ProposerSession } from './proposer.js';

export interface SuffixTreeOptions {
  /** Longest context suffix matched. */
  maxPattern: number;
  /** Depth of the trie: pattern plus proposal tokens. */
  maxDepth: number;
  /** Stop proposing when the next token's share of its parent's count falls below this. */
  minTokenProbability: number;
}

export const DEFAULT_SUFFIX_TREE: SuffixTreeOptions = { maxPattern: 8, maxDepth: 16, minTokenProbability: 0.1 };

interface TrieNode {
  count: number;
  children?: Map<number, TrieNode>;
  /**
   * The path below this node that every position through it has taken so far, not yet made into
   * nodes: tokens `tailPos` … `tailEnd` − 1 of completion `tailRow`, each taken `tailCount` times. A
   * node has children or a tail, never both.
   */
  tailRow: number;
  tailPos: number;
  tailEnd: number;
  tailCount: number;
  /** The most frequent child (cached after building). */
  best?: { token: number; node: TrieNode };
}

const newNode = (): TrieNode => ({ count: 0, tailRow: -1, tailPos: 0, tailEnd: 0, tailCount: 0 });

/** Where a walk down the trie stands: at a node, or `pos` tokens into a tail (with that tail's count). */
type Cursor =
  | { node: TrieNode; row?: undefined }
  | { node?: undefined; row: Int32Array; pos: number; end: number; count: number };

export class SuffixTreeProposer implements Proposer {
  readonly name = 'suffix';
  private readonly root = newNode();
  /** The indexed completions, which tails point into. */
  private readonly rows: Int32Array[] = [];
  private sequences = 0;
  private tokens = 0;
  private nodes = 1;
  private finalized = true;

  constructor(readonly options: SuffixTreeOptions = DEFAULT_SUFFIX_TREE) {
    if (!(options.maxPattern >= 1 && options.maxDepth > options.maxPattern))
      throw new Error('suffix tree needs 1 ≤ max_pattern < max_depth');
  }

  /** Index one earlier completion (token ids). */
  add(tokenIds: ArrayLike<number>): void {
    const row = Int32Array.from(tokenIds);
    const rowIndex = this.rows.push(row) - 1;
    const depth = this.options.maxDepth;
    for (let start = 0; start < row.length; start++) {
      const end = Math.min(row.length, start + depth);
      let node = this.root;
      node.count++;
      for (let i = start; i < end; i++) {
        if (node.tailRow >= 0) this.split(node);
        let child = node.children?.get(row[i]);
        if (!child) {
          // A path no earlier position took: one node, and the rest of it as a tail.
          child = newNode();
          child.count = 1;
          if (i + 1 < end) Object.assign(child, { tailRow: rowIndex, tailPos: i + 1, tailEnd: end, tailCount: 1 });
          node.children ??= new Map();
          node.children.set(row[i], child);
          this.nodes++;
          break;
        }
        child.count++;
        node = child;
      }
    }
    this.sequences++;
    this.tokens += row.length;
    this.finalized = false;
  }

  /** Make the first token of `node`'s tail a child node, which keeps the rest of the tail. */
  private split(node: TrieNode): void {
    const child = newNode();
    child.count = node.tailCount;
    if (node.tailPos + 1 < node.tailEnd)
      Object.assign(child, {
        tailRow: node.tailRow,
        tailPos: node.tailPos + 1,
        tailEnd: node.tailEnd,
        tailCount: node.tailCount,
      });
    node.children = new Map([[this.rows[node.tailRow][node.tailPos], child]]);
    node.tailRow = -1;
    this.nodes++;
  }

  /** Trie nodes made so far (for memory checks: tails are not counted). */
  get nodeCount(): number {
    return this.nodes;
  }

  /** Sequences and tokens indexed. */
  get size(): { sequences: number; tokens: number } {
    return { sequences: this.sequences, tokens: this.tokens };
  }

  async open(promptIds: readonly number[]): Promise<ProposerSession> {
    const session = this.openMatched(promptIds);
    return { ...session, propose: async (k) => session.proposeMatched(k).tokens };
  }

  /**
   * A session whose proposals also say how long a context suffix they matched (in the trie or in the
   * request's own context): a hybrid speculator trusts the tree only where that match is long enough.
   */
  openMatched(promptIds: readonly number[]): Omit<ProposerSession, 'propose'> & {
    proposeMatched(k: number): { tokens: number[]; matched: number };
  } {
    if (!this.finalized) this.finalize();
    // The request's own context (prompt and what has been generated) is searched as in prompt lookup.
    const local = new NgramIndex(promptIds, { maxNgram: this.options.maxPattern, minNgram: 1 });
    const context = [...promptIds];
    return {
      proposeMatched: (k) => {
        const global = this.proposeFrom(context, k);
        const own = local.proposeWithMatch(k);
        return own.matched > global.matched ? own : global;
      },
      append: async (tokenIds) => {
        for (const token of tokenIds) context.push(token);
        local.append(tokenIds);
      },
      dispose: () => {},
    };
  }

  /** The longest matching context suffix and its most frequent continuation. */
  proposeFrom(context: readonly number[], k: number): { tokens: number[]; matched: number } {
    if (!this.finalized) this.finalize();
    for (let length = Math.min(this.options.maxPattern, context.length); length >= 1; length--) {
      let cursor: Cursor | undefined = { node: this.root };
      for (let i = context.length - length; i < context.length && cursor; i++) cursor = this.step(cursor, context[i]);
      if (!cursor) continue;
      const tokens: number[] = [];
      for (let depth = length; tokens.length < k && depth < this.options.maxDepth; depth++) {
        const next = this.best(cursor);
        if (!next || next.count < this.options.minTokenProbability * this.countAt(cursor)) break;
        tokens.push(next.token);
        cursor = next.cursor;
      }
      return { tokens, matched: length };
    }
    return { tokens: [], matched: 0 };
  }

  private countAt(cursor: Cursor): number {
    return cursor.node ? cursor.node.count : cursor.count;
  }

  /** The cursor one token further down, if the trie has that path. */
  private step(cursor: Cursor, token: number): Cursor | undefined {
    if (!cursor.node) {
      const { row, pos, end, count } = cursor;
      return pos < end && row[pos] === token ? { row, pos: pos + 1, end, count } : undefined;
    }
    const node = cursor.node;
    if (node.tailRow >= 0) {
      const row = this.rows[node.tailRow];
      if (row[node.tailPos] !== token) return undefined;
      return { row, pos: node.tailPos + 1, end: node.tailEnd, count: node.tailCount };
    }
    const child = node.children?.get(token);
    return child && { node: child };
  }

  /** The most frequent next token below a cursor, its count and the cursor after it. */
  private best(cursor: Cursor): { token: number; count: number; cursor: Cursor } | undefined {
    if (!cursor.node) {
      const { row, pos, end, count } = cursor;
      return pos < end ? { token: row[pos], count, cursor: { row, pos: pos + 1, end, count } } : undefined;
    }
    const node = cursor.node;
    if (node.tailRow >= 0) {
      const row = this.rows[node.tailRow];
      const count = node.tailCount;
      return { token: row[node.tailPos], count, cursor: { row, pos: node.tailPos + 1, end: node.tailEnd, count } };
    }
    const best = node.best;
    return best && { token: best.token, count: best.node.count, cursor: { node: best.node } };
  }

  private finalize(): void {
    const stack: TrieNode[] = [this.root];
    while (stack.length) {
      const node = stack.pop() as TrieNode;
      node.best = undefined;
      for (const [token, child] of node.children ?? []) {
        if (!node.best || child.count > node.best.node.count) node.best = { token, node: child };
        stack.push(child);
      }
    }
    this.finalized = true;
  }
}
