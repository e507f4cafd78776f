/** The `ditty train` config: schema, loading with located errors, and the generated reference. */
export { ConfigError, loadTrainConfig, parseTrainConfig, resolvedConfigYaml, type ParseOptions } from './load.js';
export { configReferenceMarkdown, describeConfigSchema, type ConfigKeyInfo, type ConfigSectionInfo } from './reference.js';
export {
  BACKENDS, COMPUTE_DTYPES, DATA_FORMATS, LR_SCHEDULERS, ON_BAD_ROW, TRAIN_ON,
  TrainConfigSchema, resolveTargetModules, type TrainConfig,
} from './schema.js';
