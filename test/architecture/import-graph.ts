/**
 * The import graph of src/, read from the source text: each module's relative imports (static
 * `import`/`export … from`, type-only ones included, and `import()` calls), resolved to files.
 * Written by hand because it is a regular expression and a strongly-connected-components pass;
 * madge or dependency-cruiser would be a dependency for that.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** Module (path relative to the root) → the modules it imports, in source order. */
export type ImportGraph = Map<string, string[]>;

// `from '…'` ends every static import and re-export; `import('…')` is a lazy one. A bare
// `import '…'` (side effects only) is covered by the second alternative.
const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g;

function typeScriptFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return typeScriptFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The graph of every .ts file under `root`, keyed by path relative to `root`. */
export function importGraph(root: string): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of typeScriptFiles(root)) {
    const source = readFileSync(file, 'utf8');
    const targets: string[] = [];
    for (const match of source.matchAll(SPECIFIER)) {
      const specifier = match[1];
      if (!specifier.startsWith('.')) continue; // packages and node: builtins cannot import us back
      targets.push(relative(root, resolve(dirname(file), specifier.replace(/\.js$/, '.ts'))));
    }
    graph.set(relative(root, file), targets);
  }
  return graph;
}

/**
 * Every import cycle, as the modules of one strongly connected component (Tarjan's algorithm),
 * sorted; a module that imports itself is a cycle of one.
 */
export function importCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const lowLink = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (module: string): void => {
    index.set(module, index.size);
    lowLink.set(module, index.get(module) as number);
    stack.push(module);
    onStack.add(module);
    for (const next of graph.get(module) ?? []) {
      if (!graph.has(next)) continue; // an unresolved path: tsc reports those
      if (!index.has(next)) {
        visit(next);
        lowLink.set(module, Math.min(lowLink.get(module) as number, lowLink.get(next) as number));
      } else if (onStack.has(next)) {
        lowLink.set(module, Math.min(lowLink.get(module) as number, index.get(next) as number));
      }
    }
    if (lowLink.get(module) !== index.get(module)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop() as string;
      onStack.delete(member);
      component.push(member);
    } while (member !== module);
    if (component.length > 1 || (graph.get(module) ?? []).includes(module)) cycles.push(component.sort());
  };
  for (const module of graph.keys()) if (!index.has(module)) visit(module);
  return cycles;
}
