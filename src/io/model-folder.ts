/** Hugging Face model folders written by ditty (quantize, export --merged): weights, config.json and the side files. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeBytesAtomic } from './atomic.js';
import { copyFileDurable, writeFolderAtomic } from './output-folder.js';

/** The tokenizer and generation files a model folder carries beside its weights and config.json: fetched with a hub model, copied into the folders ditty writes. */
export const MODEL_SIDE_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json',
  'vocab.json', 'merges.txt', 'added_tokens.json',
] as const;

export interface WrittenModelFolder<T> {
  /** what `writeWeights` returned */
  readonly weights: T;
  /** the side files copied from the base folder */
  readonly copied: readonly string[];
}

/**
 * Writes the model folder `out` whole or not at all: `writeWeights` fills a temporary folder, then
 * config.json and each side file that `base` has are added, and the folder is renamed into place.
 */
export async function writeModelFolder<T>(
  out: string, base: string, configJson: string, writeWeights: (tmp: string) => Promise<T>,
): Promise<WrittenModelFolder<T>> {
  const copied = MODEL_SIDE_FILES.filter((f) => fs.existsSync(path.join(base, f)));
  const weights = await writeFolderAtomic(out, async (tmp) => {
    const written = await writeWeights(tmp);
    await writeBytesAtomic(path.join(tmp, 'config.json'), configJson);
    for (const f of copied) await copyFileDurable(path.join(base, f), path.join(tmp, f));
    return written;
  });
  return { weights, copied };
}
