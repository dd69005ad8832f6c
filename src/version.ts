import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** fireopt's own version, read once from package.json (recorded in every manifest). */
export const FIREOPT_VERSION: string = (
  JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string }
).version;
