/** `ditty export --adapter`: the PEFT files of a checkpoint, copied into a folder of their own. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADAPTER_CONFIG } from '../lora/adapter-config.js';
import { readAdapter } from '../lora/adapter-files.js';
import { resolveAdapterPath } from '../runtime/run-folder.js';
import { checkOutputFolder, copyFileDurable, writeFolderAtomic } from '../io/output-folder.js';

const README = 'README.md';

export interface AdapterExportResult {
  /** the adapter folder the files came from (a run folder resolves to its latest checkpoint) */
  readonly source: string;
  readonly folder: string;
  /** file names written, with their sizes */
  readonly files: readonly { readonly name: string; readonly bytes: number }[];
  readonly modules: number;
}

/**
 * Copies adapter_config.json, the adapter weights (adapter_model.safetensors, or adapter_model.bin
 * when that is all there is) and README.md when present from the adapter at `source` into `out`,
 * which appears complete or not at all. The adapter is read first, so a broken one is refused.
 */
export async function exportAdapter(source: string, out: string, options: { readonly force?: boolean } = {}): Promise<AdapterExportResult> {
  const dir = resolveAdapterPath(source);
  const adapter = await readAdapter(dir);
  checkOutputFolder(out, options.force ?? false, [dir]);
  const weights = path.basename(adapter.weightsFile);
  const names = [ADAPTER_CONFIG, weights, ...(fs.existsSync(path.join(dir, README)) ? [README] : [])];
  const files = await writeFolderAtomic(out, async (tmp) => {
    const written: { name: string; bytes: number }[] = [];
    for (const name of names) written.push({ name, bytes: await copyFileDurable(path.join(dir, name), path.join(tmp, name)) });
    return written;
  });
  return { source: dir, folder: out, files, modules: adapter.modules.size };
}
