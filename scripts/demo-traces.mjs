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
import { conversations, trafficPackages } from './demo-qa.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const lines = conversations(trafficPackages, 'docs', 'fireopt-demo-target');
writeFileSync(join(root, 'datasets/demo-traces.jsonl'), lines.join('\n') + '\n');
console.log(`wrote datasets/demo-traces.jsonl: ${lines.length} conversations`);
