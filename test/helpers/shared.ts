import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SHARED_DIR = path.resolve(REPO_ROOT, '../shared');

/** Path of a file in ../shared and whether it is there; warns once when it is missing. */
export function sharedPath(...parts: string[]): { path: string; present: boolean } {
  const p = path.join(SHARED_DIR, ...parts);
  const present = fs.existsSync(p);
  if (!present) console.warn(`SKIPPED: ${p} is missing (third-party data lives in ../shared beside the repo)`);
  return { path: p, present };
}
