/**
 * The demo's question/answer style, shared by scripts/demo-traces.mjs (the customer's traffic, about
 * `trafficPackages`) and scripts/demo-target.mjs (the target's instruction tuning, about other
 * packages, so the traffic's own prompts stay unseen by the target).
 */
export const systemPrompt = 'You answer questions about npm packages from their README.';

export const trafficPackages = [
  'commander',
  'yaml',
  'zod',
  'vitest',
  'typescript',
  'apache-arrow',
  'p-retry',
  'p-queue',
  'tinyglobby',
  'cli-progress',
  'chalk',
  'debug',
  'semver',
  'esbuild',
  'rollup',
  'picomatch',
  'undici',
  'ws',
  'ajv',
  'minimist',
  'glob',
  'rimraf',
  'mkdirp',
  'uuid',
  'dotenv',
];

export function camel(name) {
  return name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
}

/** Each entry maps a package name to [question, answer]. */
export const questions = [
  (p) => [
    `How do I install ${p}?`,
    `Install it with npm: \`npm install ${p}\`. Then import it in your code with \`import ${camel(p)} from '${p}'\`.`,
  ],
  (p) => [
    `What does ${p} do?`,
    `${p} is a small library for Node.js. Read the README for the full API; the usage section shows the common cases.`,
  ],
  (p) => [
    `Show me a short example of ${p}.`,
    `Here is a minimal example:\n\n\`\`\`js\nimport ${camel(p)} from '${p}';\n\n` +
      `const result = ${camel(p)}(options);\nconsole.log(result);\n\`\`\``,
  ],
  (p) => [
    `Which options does ${p} accept?`,
    `The options are passed as an object. The README lists each option with its type and default value.`,
  ],
  (p) => [
    `How do I use ${p} with TypeScript?`,
    `${p} ships its own type definitions, so \`import ${camel(p)} from '${p}'\` is typed with no extra package.`,
  ],
  (p) => [
    `What is the licence of ${p}?`,
    `${p} is released under the MIT License. See the LICENSE file in the package.`,
  ],
];

/** One OpenAI-chat conversation per (package, question). */
export function conversations(packages, idPrefix, model) {
  const lines = [];
  let n = 0;
  for (const p of packages) {
    for (const q of questions) {
      const [question, answer] = q(p);
      lines.push(
        JSON.stringify({
          id: `${idPrefix}-${String(n++).padStart(3, '0')}`,
          model,
          messages: [
            { role: 'system', content: systemPrompt },
            { role: 'user', content: question },
            { role: 'assistant', content: answer },
          ],
        }),
      );
    }
  }
  return lines;
}
