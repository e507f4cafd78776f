/**
 * Rewrite the config reference section of README.md from the schema.
 *   npm run build && node dist/scripts/update-readme-reference.js
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configReferenceMarkdown } from '../src/config/index.js';

const readme = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../README.md');
const text = fs.readFileSync(readme, 'utf8');
const next = text.replace(/<!-- config-reference:start -->\n[\s\S]*\n<!-- config-reference:end -->/,
  `<!-- config-reference:start -->\n${configReferenceMarkdown(3).trimEnd()}\n<!-- config-reference:end -->`);
fs.writeFileSync(readme, next);
console.log(next === text ? 'README.md config reference already current' : 'README.md config reference updated');
