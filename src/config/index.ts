/** The `ditty train` config: schema, loading with located errors, and the generated reference. */
export { loadTrainConfig, resolvedConfigYaml } from './load.js';
export { configReferenceMarkdown } from './reference.js';
export { resolveTargetModules, type TrainConfig } from './schema.js';
