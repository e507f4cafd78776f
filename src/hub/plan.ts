/**
 * Which files of a repo to fetch. A plan looks at what the repo has through `has`/`read`: the hub's
 * listing online, the cached snapshot offline, so the same choice is made either way.
 */
import { InputError } from '../io/errors.js';
import { MODEL_SIDE_FILES } from '../io/model-folder.js';
import { parseWeightIndex, WEIGHT_LAYOUTS } from '../io/weight-index.js';
import { checkRepoPath } from './repo.js';

/** What a plan may look at: whether a repo path exists, a small file's text, and `where` (repo@revision) for messages. */
export interface PlanSource {
  has(path: string): Promise<boolean>;
  read(path: string): Promise<string>;
  readonly where: string;
}

/** Chooses the repo paths to fetch. */
export type FilePlan = (source: PlanSource) => Promise<string[]>;

/** The repo has none of the weight layouts; the message names what was looked for ("model weights (one of ...)"). */
export class NoWeightsError extends Error {}

const WEIGHT_CHOICES = WEIGHT_LAYOUTS.flatMap((l) => [l.single, l.index]).join(', ');

/** config.json, the tokenizer files there are, and the first weight layout there is (single file, else index + shards). */
export const modelFilePlan: FilePlan = async ({ has, read, where }) => {
  const files: string[] = ['config.json'];
  for (const f of MODEL_SIDE_FILES) if (await has(f)) files.push(f);
  for (const layout of WEIGHT_LAYOUTS) {
    if (await has(layout.single)) return [...files, layout.single];
    if (await has(layout.index)) {
      const at = `${where}/${layout.index}`;
      const index = parseWeightIndex(await read(layout.index), at);
      return [...files, layout.index, ...index.files.map((f) => checkRepoPath(f, at))];
    }
  }
  throw new NoWeightsError(`model weights (one of ${WEIGHT_CHOICES})`);
};

/** Exactly `files` (checked as repo paths, duplicates dropped); at least one. */
export function explicitPlan(files: readonly string[]): FilePlan {
  return async ({ where }) => {
    if (files.length === 0) throw new InputError(`${where}: no files asked for`);
    return [...new Set(files.map((f) => checkRepoPath(f, where)))];
  };
}
