/**
 * A SuffixDecoding-style speculator (Oliaro et al. 2024): a frequency-counted trie of every
 * substring (up to `maxDepth` tokens) of earlier completions — here, the training split's — plus
 * the request's own context. For a context it finds the longest suffix that occurs in the trie
 * (up to `maxPattern` tokens) and proposes the most frequent continuation, token by token, while
 * each token's empirical probability given the path stays ≥ `minTokenProbability`.
 *
 * Written by hand: no maintained JS library offers a counted token-sequence trie. The trie is
 * depth-limited (not a compressed suffix tree), so memory grows with tokens × distinct paths;
 * repetitive traffic — where this speculator matters — shares most paths.
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
  children: Map<number, TrieNode>;
  /** The most frequent child (cached after building). */
  best?: { token: number; node: TrieNode };
}

const newNode = (): TrieNode => ({ count: 0, children: new Map() });

export class SuffixTreeProposer implements Proposer {
  readonly name = 'suffix';
  private readonly root = newNode();
  private sequences = 0;
  private tokens = 0;
  private finalized = true;

  constructor(readonly options: SuffixTreeOptions = DEFAULT_SUFFIX_TREE) {
    if (!(options.maxPattern >= 1 && options.maxDepth > options.maxPattern))
      throw new Error('suffix tree needs 1 ≤ max_pattern < max_depth');
  }

  /** Index one earlier completion (token ids). */
  add(tokenIds: ArrayLike<number>): void {
    const depth = this.options.maxDepth;
    for (let start = 0; start < tokenIds.length; start++) {
      let node = this.root;
      node.count++;
      for (let i = start; i < Math.min(tokenIds.length, start + depth); i++) {
        let child = node.children.get(tokenIds[i]);
        if (!child) {
          child = newNode();
          node.children.set(tokenIds[i], child);
        }
        child.count++;
        node = child;
      }
    }
    this.sequences++;
    this.tokens += tokenIds.length;
    this.finalized = false;
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
      let node: TrieNode | undefined = this.root;
      for (let i = context.length - length; i < context.length && node; i++) node = node.children.get(context[i]);
      if (!node) continue;
      const tokens: number[] = [];
      for (let depth = length; tokens.length < k && depth < this.options.maxDepth && node.best; depth++) {
        if (node.best.node.count < this.options.minTokenProbability * node.count) break;
        tokens.push(node.best.token);
        node = node.best.node;
      }
      return { tokens, matched: length };
    }
    return { tokens: [], matched: 0 };
  }

  private finalize(): void {
    const stack: TrieNode[] = [this.root];
    while (stack.length) {
      const node = stack.pop() as TrieNode;
      node.best = undefined;
      for (const [token, child] of node.children) {
        if (!node.best || child.count > node.best.node.count) node.best = { token, node: child };
        stack.push(child);
      }
    }
    this.finalized = true;
  }
}
