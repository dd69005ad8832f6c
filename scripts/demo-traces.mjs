#!/usr/bin/env node
/**
 * Writes datasets/demo-traces.jsonl: the demo's "production traffic", written for the project. A
 * developer-docs assistant answering short questions about npm packages (OpenAI chat format, one
 * conversation per line). The workload is narrow on purpose, as a customer's traffic usually is:
 * a draft adapted to it should beat a generic one. Deterministic: same file on every run.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const packages = ['commander', 'yaml', 'zod', 'vitest', 'typescript', 'apache-arrow', 'p-retry', 'p-queue', 'tinyglobby', 'cli-progress', 'chalk', 'debug', 'semver', 'esbuild', 'rollup', 'picomatch', 'undici', 'ws', 'ajv', 'minimist', 'glob', 'rimraf', 'mkdirp', 'uuid', 'dotenv'];
const questions = [
  (p) => [`How do I install ${p}?`, `Install it with npm: \`npm install ${p}\`. Then import it in your code with \`import ${camel(p)} from '${p}'\`.`],
  (p) => [`What does ${p} do?`, `${p} is a small library for Node.js. Read the README for the full API; the usage section shows the common cases.`],
  (p) => [`Show me a short example of ${p}.`, `Here is a minimal example:\n\n\`\`\`js\nimport ${camel(p)} from '${p}';\n\nconst result = ${camel(p)}(options);\nconsole.log(result);\n\`\`\``],
  (p) => [`Which options does ${p} accept?`, `The options are passed as an object. The README lists each option with its type and default value.`],
  (p) => [`How do I use ${p} with TypeScript?`, `${p} ships its own type definitions, so \`import ${camel(p)} from '${p}'\` is typed with no extra package.`],
  (p) => [`What is the licence of ${p}?`, `${p} is released under the MIT License. See the LICENSE file in the package.`],
];
function camel(name) {
  return name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}
const lines = [];
let n = 0;
for (const p of packages) {
  for (const q of questions) {
    const [question, answer] = q(p);
    lines.push(JSON.stringify({
      id: `docs-${String(n++).padStart(3, '0')}`,
      model: 'fireopt-demo-target',
      messages: [
        { role: 'system', content: 'You answer questions about npm packages from their README.' },
        { role: 'user', content: question },
        { role: 'assistant', content: answer },
      ],
    }));
  }
}
writeFileSync(join(root, 'datasets/demo-traces.jsonl'), lines.join('\n') + '\n');
console.log(`wrote datasets/demo-traces.jsonl: ${lines.length} conversations`);
