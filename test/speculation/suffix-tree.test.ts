/**
 * The suffix speculator's trie keeps a path only one position has taken as a reference into that
 * completion (a tail) until another position shares it. Checked against a reference trie with a node
 * per token and depth (the earlier implementation, written out here): the same proposals and matched
 * lengths for every context and k, on real text (tinyshakespeare, one token per character) and on a
 * repetitive random sequence; and far fewer nodes on text whose paths rarely repeat.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/model/index.js';
import { DEFAULT_SUFFIX_TREE, SuffixTreeProposer, type SuffixTreeOptions } from '../../src/speculation/suffix-tree.js';
import { haveShared, sharedPath } from '../helpers/shared.js';

interface ReferenceNode {
  count: number;
  children: Map<number, ReferenceNode>;
}

/** A node per token and depth, the most frequent child first seen on ties. */
class ReferenceTrie {
  private readonly root: ReferenceNode = { count: 0, children: new Map() };
  nodes = 1;

  constructor(private readonly options: SuffixTreeOptions) {}

  add(ids: number[]): void {
    for (let start = 0; start < ids.length; start++) {
      let node = this.root;
      node.count++;
      for (let i = start; i < Math.min(ids.length, start + this.options.maxDepth); i++) {
        let child = node.children.get(ids[i]);
        if (!child) {
          child = { count: 0, children: new Map() };
          node.children.set(ids[i], child);
          this.nodes++;
        }
        child.count++;
        node = child;
      }
    }
  }

  proposeFrom(context: number[], k: number): { tokens: number[]; matched: number } {
    for (let length = Math.min(this.options.maxPattern, context.length); length >= 1; length--) {
      let node: ReferenceNode | undefined = this.root;
      for (let i = context.length - length; i < context.length && node; i++) node = node.children.get(context[i]);
      if (!node) continue;
      const tokens: number[] = [];
      for (let depth = length; tokens.length < k && depth < this.options.maxDepth; depth++) {
        let best: [number, ReferenceNode] | undefined;
        for (const entry of node.children) if (!best || entry[1].count > best[1].count) best = entry;
        if (!best || best[1].count < this.options.minTokenProbability * node.count) break;
        tokens.push(best[0]);
        node = best[1];
      }
      return { tokens, matched: length };
    }
    return { tokens: [], matched: 0 };
  }
}

/** Both tries over `rows`; every context ending at each position of `queries`, k = 1…8, proposes alike. */
function expectSameProposals(rows: number[][], queries: number[][], options = DEFAULT_SUFFIX_TREE) {
  const tree = new SuffixTreeProposer(options);
  const reference = new ReferenceTrie(options);
  for (const row of rows) {
    tree.add(row);
    reference.add(row);
  }
  let compared = 0;
  for (const query of queries)
    for (let end = 1; end <= query.length; end++) {
      const context = query.slice(0, end);
      for (const k of [1, 3, 8]) {
        expect(tree.proposeFrom(context, k)).toEqual(reference.proposeFrom(context, k));
        compared++;
      }
    }
  return { tree, reference, compared };
}

describe('suffix tree with tails', () => {
  it('proposes exactly as a node-per-token trie on a repetitive random sequence', () => {
    const random = new SeededRandom(11);
    const phrases = Array.from({ length: 12 }, () => Array.from({ length: 6 }, () => random.nextUint32() % 40));
    const row = () => Array.from({ length: 30 }, () => phrases[random.nextUint32() % 12]).flat();
    const { tree, reference, compared } = expectSameProposals(
      Array.from({ length: 40 }, row),
      Array.from({ length: 8 }, row),
      { maxPattern: 4, maxDepth: 9, minTokenProbability: 0.2 },
    );
    expect(compared).toBeGreaterThan(4000);
    expect(tree.nodeCount).toBeLessThan(reference.nodes);
  });

  describe.skipIf(!haveShared('data/tinyshakespeare/input.txt'))('on real text', () => {
    it('proposes exactly as a node-per-token trie, with a fraction of its nodes', () => {
      const text = readFileSync(sharedPath('data/tinyshakespeare/input.txt'), 'utf8');
      const lines = text.split('\n\n').map((block) => Array.from(block, (c) => c.codePointAt(0) ?? 0));
      const { tree, reference, compared } = expectSameProposals(lines.slice(0, 2000), lines.slice(7000, 7012));
      expect(compared).toBeGreaterThan(5_000);
      // One node per branching point, against one per token and depth.
      expect(tree.nodeCount).toBeLessThan(reference.nodes / 3);
    });
  });
});
