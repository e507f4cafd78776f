export { repoFolderName } from './cache.js';
export { downloadRepoFiles, resolveModelFolder, OPTIONAL_MODEL_FILES } from './download.js';
export type { ProgressReporter } from './progress.js';
export { repoIdProblem } from './repo.js';
