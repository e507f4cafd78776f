export { hubSettings, type HubSettings } from './env.js';
export {
  cachedSnapshot,
  hasCachedFile,
  repoCacheFolder,
  repoFolderName,
  readRef,
  type CachedSnapshot,
} from './cache.js';
export {
  downloadModel,
  downloadRepoFiles,
  resolveModelFolder,
  OPTIONAL_MODEL_FILES,
  type DownloadOptions,
  type ModelFolderOptions,
  type RepoFilesRequest,
  type SnapshotResult,
} from './download.js';
export { HubError } from './http.js';
export { consoleProgress, silentProgress, type FileProgress, type ProgressReporter } from './progress.js';
export { isCommitHash, repoIdProblem, type RepoRef, type RepoType } from './repo.js';
