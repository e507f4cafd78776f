import type { TensorSource } from '../io/tensor-source.js';
import { readModelConfig, type ModelConfig } from './config.js';
import { GptNeoXModel } from './gpt-neox.js';
import type { BlockwiseCausalLM } from './model.js';
import { RwkvModel } from './rwkv4.js';

/** Build the model `config` describes from the weights in `source` (any checkpoint format). */
export function buildModel(config: ModelConfig, source: TensorSource): BlockwiseCausalLM {
  switch (config.model_type) {
    case 'rwkv':
      return RwkvModel.load(config, source);
    case 'gpt_neox':
      return GptNeoXModel.load(config, source);
  }
}

/** Read config.json at `configPath` and build the model from `source`. */
export function loadModel(configPath: string, source: TensorSource): BlockwiseCausalLM {
  return buildModel(readModelConfig(configPath), source);
}
