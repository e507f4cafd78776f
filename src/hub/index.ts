export { repoFolderName } from './cache.js';
export { downloadRepoFiles, resolveModelFolder } from './download.js';
export type { ProgressReporter } from './progress.js';
export { repoIdProblem } from './repo.js';
