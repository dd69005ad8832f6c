/**
 * The generated parts of the reference docs: the config keys (from the zod config schema and the
 * descriptions on it), the Arrow columns of the traces and targets datasets (from their `doc`
 * strings) and the fields of report.json (from its zod schema). Each part replaces the text between
 * its markers in a hand-written page, so the prose around the tables stays editable and the tables
 * never drift from the code. `npm run docs` writes them; test/docs.test.ts fails when a committed
 * page differs from what this module renders. Output is deterministic: schema order, no timestamps.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { configSchema } from '../config/schema.js';
import { reportSchema, REPORT_SCHEMA_VERSION } from '../evaluate/report-schema.js';
import { targetsColumns, TARGETS_SCHEMA_VERSION } from '../formats/targets-schema.js';
import { messageColumns, tracesColumns, TRACES_SCHEMA_VERSION } from '../formats/traces-schema.js';
import { writeFileAtomic } from '../util/atomic.js';

/** A JSON Schema node as `z.toJSONSchema` writes it (the parts the tables use). */
interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  format?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema | JsonSchema[];
  prefixItems?: JsonSchema[];
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  minItems?: number;
}

/** One table row: a dotted key path and what the schema says about it. */
interface FieldRow {
  path: string;
  type: string;
  defaultText: string;
  description: string;
}

// Zod writes Number.MAX_SAFE_INTEGER as the bound of every `.int()`; it says nothing to a reader.
const NO_BOUND = Number.MAX_SAFE_INTEGER;

const code = (text: string): string => `\`${text}\``;
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function valueText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function boundsText(node: JsonSchema): string {
  const parts: string[] = [];
  if (node.exclusiveMinimum !== undefined) parts.push(`> ${node.exclusiveMinimum}`);
  if (node.minimum !== undefined && node.minimum !== -NO_BOUND) parts.push(`≥ ${node.minimum}`);
  if (node.maximum !== undefined && node.maximum !== NO_BOUND) parts.push(`≤ ${node.maximum}`);
  if (node.exclusiveMaximum !== undefined) parts.push(`< ${node.exclusiveMaximum}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** A short type for a JSON Schema node: `integer (≥ 1)`, `auto \| off`, `list of string`, … */
function typeText(node: JsonSchema): string {
  if (node.const !== undefined) return code(valueText(node.const));
  if (node.enum) return node.enum.map((value) => code(valueText(value))).join(' | ');
  const variants = node.anyOf ?? node.oneOf;
  if (variants) return variants.map(typeText).join(' or ');
  if (node.type === 'array') {
    if (Array.isArray(node.prefixItems)) return `[${node.prefixItems.map(typeText).join(', ')}]`;
    const items = Array.isArray(node.items) ? node.items[0] : node.items;
    return items ? `list of ${items.type === 'object' ? 'objects' : typeText(items)}` : 'list';
  }
  if (node.type === 'string' && node.format === 'uri') return 'URL';
  if (Array.isArray(node.type)) return node.type.join(' or ');
  if (node.type === undefined) return 'any';
  return `${node.type}${boundsText(node)}`;
}

/** `X | null` as zod writes it (`anyOf: [X, {type: null}]`): X, else undefined. */
function nullableInner(node: JsonSchema): JsonSchema | undefined {
  const variants = node.anyOf ?? node.oneOf;
  if (variants?.length !== 2) return undefined;
  const others = variants.filter((variant) => variant.type !== 'null');
  return others.length === 1 ? others[0] : undefined;
}

/**
 * Flatten an object schema into rows, depth first in declaration order. Nested objects give their
 * own row (when described) and then their keys; arrays of objects list their items' keys as `key[].x`.
 */
function flatten(outer: JsonSchema, prefix: string, required: boolean, rows: FieldRow[], missing: string[]): void {
  const inner = nullableInner(outer);
  const node = inner ?? outer;
  const description = outer.description ?? node.description;
  const items = Array.isArray(node.items) ? undefined : node.items;
  const nested = node.properties ? node : items?.properties ? items : undefined;
  if (prefix) {
    if (!description) missing.push(prefix);
    const isObject = node.type === 'object';
    const defaultValue = outer.default ?? node.default;
    const defaultText = defaultValue !== undefined ? code(valueText(defaultValue)) : required ? 'required' : '—';
    // An undescribed object is only a namespace (its default is {}): its keys' rows say it all.
    if (!(isObject && !description)) {
      rows.push({
        path: prefix,
        type: `${isObject ? 'object' : typeText(node)}${inner ? ' or null' : ''}`,
        defaultText: isObject ? '' : defaultText,
        description: description ?? '',
      });
    }
  }
  if (!nested?.properties) return;
  const childPrefix = prefix === '' ? '' : nested === node ? `${prefix}.` : `${prefix}[].`;
  for (const [key, child] of Object.entries(nested.properties)) {
    flatten(child, `${childPrefix}${key}`, nested.required?.includes(key) ?? false, rows, missing);
  }
}

function fieldTable(rows: FieldRow[], withDefault: boolean): string {
  const head = withDefault
    ? '| key | type | default | meaning |\n|---|---|---|---|'
    : '| field | type | meaning |\n|---|---|---|';
  const body = rows.map((row) =>
    withDefault
      ? `| ${code(row.path)} | ${cell(row.type)} | ${cell(row.defaultText)} | ${cell(row.description)} |`
      : `| ${code(row.path)} | ${cell(row.type)} | ${cell(row.description)} |`,
  );
  return [head, ...body].join('\n');
}

function failOnMissing(what: string, missing: string[]): void {
  if (missing.length) {
    throw new Error(`${what}: no description on ${missing.join(', ')} (add .describe('…') to the schema)`);
  }
}

/** The config reference: one table per top-level section, one per target engine. */
export function renderConfigReference(): string {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const missing: string[] = [];
  const sections: string[] = [];
  const topLevel: FieldRow[] = [];
  for (const [key, node] of Object.entries(root.properties ?? {})) {
    const variants = node.oneOf ?? node.anyOf;
    if (variants) {
      // The `target` section: one strict object per engine, chosen by its `engine` key.
      if (!node.description) missing.push(key);
      sections.push(`### \`${key}\`\n\n${node.description ?? ''}`);
      for (const variant of variants) {
        const engine = variant.properties?.engine?.const;
        const rows: FieldRow[] = [];
        for (const [childKey, child] of Object.entries(variant.properties ?? {})) {
          if (childKey === 'engine') continue;
          flatten(child, `${key}.${childKey}`, variant.required?.includes(childKey) ?? false, rows, missing);
        }
        sections.push(`#### \`${key}.engine: ${valueText(engine)}\`\n\n${fieldTable(rows, true)}`);
      }
    } else if (node.properties) {
      const rows: FieldRow[] = [];
      for (const [childKey, child] of Object.entries(node.properties)) {
        flatten(child, `${key}.${childKey}`, node.required?.includes(childKey) ?? false, rows, missing);
      }
      sections.push(`### \`${key}\`\n\n${fieldTable(rows, true)}`);
    } else {
      flatten(node, key, false, topLevel, missing);
    }
  }
  failOnMissing('config schema', missing);
  return [`### Top level\n\n${fieldTable(topLevel, true)}`, ...sections].join('\n\n');
}

/** An Arrow column as the docs name it: `Utf8`, `List<Int32>`, `List<Struct>` (its fields listed apart). */
function arrowTypeText(type: { toString(): string }): string {
  return String(type).replace(/Struct<\{.*\}>/, 'Struct');
}

type ColumnDocs = Record<string, { type: { toString(): string }; nullable: boolean; doc: string }>;

function columnTable(columns: ColumnDocs): string {
  const rows = Object.entries(columns).map(
    ([name, spec]) =>
      `| ${code(name)} | ${code(arrowTypeText(spec.type))}${spec.nullable ? ', nullable' : ''} | ${cell(spec.doc)} |`,
  );
  return ['| column | type | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** The traces dataset's columns, then the fields of one `messages` entry. */
export function renderTracesColumns(): string {
  return [
    `Schema version ${TRACES_SCHEMA_VERSION}.`,
    columnTable(tracesColumns),
    'One entry of `messages`:',
    columnTable(messageColumns),
  ].join('\n\n');
}

/** The targets dataset's columns. */
export function renderTargetsColumns(): string {
  return [`Schema version ${TARGETS_SCHEMA_VERSION}.`, columnTable(targetsColumns)].join('\n\n');
}

/** The fields of report.json, flattened (`candidates[].by_k[].tau`). */
export function renderReportFields(): string {
  const root = z.toJSONSchema(reportSchema, { io: 'output', unrepresentable: 'any' }) as JsonSchema;
  const rows: FieldRow[] = [];
  const missing: string[] = [];
  for (const [key, child] of Object.entries(root.properties ?? {})) {
    flatten(child, key, false, rows, missing);
  }
  failOnMissing('report schema', missing);
  return [`Schema version ${REPORT_SCHEMA_VERSION}.`, fieldTable(rows, false)].join('\n\n');
}

/** Each generated part: the page it lives in and its marker name. */
export const GENERATED_PARTS: ReadonlyArray<{ page: string; name: string; render: () => string }> = [
  { page: 'docs/config.md', name: 'config', render: renderConfigReference },
  { page: 'docs/formats.md', name: 'traces-columns', render: renderTracesColumns },
  { page: 'docs/formats.md', name: 'targets-columns', render: renderTargetsColumns },
  { page: 'docs/formats.md', name: 'report-fields', render: renderReportFields },
];

/** Replace the text between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` in a page. */
export function replaceGenerated(page: string, pageText: string, name: string, content: string): string {
  const begin = `<!-- generated:${name} (npm run docs; do not edit by hand) -->`;
  const end = `<!-- /generated:${name} -->`;
  const start = pageText.indexOf(begin);
  const stop = pageText.indexOf(end);
  if (start < 0 || stop < start) throw new Error(`${page}: markers for "${name}" not found (${begin} … ${end})`);
  return `${pageText.slice(0, start + begin.length)}\n\n${content}\n\n${pageText.slice(stop)}`;
}

/** Every page with generated parts, as it should read: path relative to `root` → text. */
export function renderPages(root: string): Map<string, string> {
  const pages = new Map<string, string>();
  for (const part of GENERATED_PARTS) {
    const text = pages.get(part.page) ?? readFileSync(join(root, part.page), 'utf8');
    pages.set(part.page, replaceGenerated(part.page, text, part.name, part.render()));
  }
  return pages;
}

/** Write the generated parts into the pages under `root`; returns the pages that changed. */
export function writePages(root: string): string[] {
  const changed: string[] = [];
  for (const [page, text] of renderPages(root)) {
    if (readFileSync(join(root, page), 'utf8') !== text) {
      writeFileAtomic(join(root, page), text);
      changed.push(page);
    }
  }
  return changed;
}
