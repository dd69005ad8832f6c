import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/shared.js';
import { importCycles, importGraph, type ImportGraph } from './import-graph.js';

describe('import graph of src/', () => {
  it('has no import cycle (type-only and lazy imports included)', () => {
    const graph = importGraph(join(repoRoot, 'src'));
    expect(graph.size).toBeGreaterThan(100); // the walk found the tree, not an empty folder
    expect(importCycles(graph)).toEqual([]);
  });

  it('finds a cycle through type-only, re-export and lazy imports, and none in a tree', () => {
    const graph: ImportGraph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts', 'd.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', []],
      ['e.ts', ['e.ts']],
    ]);
    expect(importCycles(graph)).toEqual([['a.ts', 'b.ts', 'c.ts'], ['e.ts']]);
    expect(
      importCycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', []],
        ]),
      ),
    ).toEqual([]);
  });

  it('reads every kind of relative import from the source', () => {
    const graph = importGraph(join(repoRoot, 'src'));
    // import type … from (src/ingest/process.ts → blocks.ts), export … from and import('…').
    expect(graph.get('ingest/process.ts')).toContain('ingest/blocks.ts');
    expect(graph.get('cli/commands/eval.ts')).toContain('evaluate/index.ts');
    expect(graph.get('cli/commands.ts')).toContain('cli/context.ts');
  });
});
