export { assemble, Batcher, type Batch } from './batcher.js';
export type { Block } from './blocks.js';
export { prepareDataset, type PreparedDataset } from './prepare.js';
export { formatDataStats } from './stats.js';
