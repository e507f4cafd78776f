import { buildModuleTree, findLinears } from './module-tree.js';
import type { TensorSource } from '../io/tensor-source.js';
import { isBnb4bitConfig } from '../quant/bnb-checkpoint.js';
import { quantizedLinearSelector, type ModelLinears, type QuantizationOptions } from '../quant/options.js';
import { readModelConfig, type ModelConfig } from './config.js';
import { GptNeoXModel } from './gpt-neox.js';
import type { BlockwiseCausalLM } from './model.js';
import { RwkvModel } from './rwkv4.js';
import type { Architecture } from './types.js';
import { WEIGHT_NAMES } from './weight-names.js';
import type { WeightLoaderOptions } from './weights.js';

export interface BuildModelOptions {
  /**
   * bits 4: quantize the linears of the blocks to NF4 while reading them (not the output head, nor
   * `skipModules`); linears a checkpoint stores in 4-bit are kept as stored. bits 16: every linear is
   * float32, stored 4-bit ones are dequantized (with a warning). Absent: the checkpoint as it is.
   */
  readonly quantization?: QuantizationOptions;
}

/** The linears a checkpoint holds (float or bitsandbytes 4-bit), and its output head. */
export function checkpointLinears(source: TensorSource, architecture: Architecture): ModelLinears {
  const tree = buildModuleTree(source.names().map((n) => source.info(n)));
  return { paths: findLinears(tree, architecture).map((l) => l.path), head: WEIGHT_NAMES[architecture].head };
}

/** What the weight loader of any engine quantizes on load, for `config`'s checkpoint in `source`. */
export function weightLoaderOptions(config: ModelConfig, source: TensorSource, q: QuantizationOptions | undefined): WeightLoaderOptions {
  isBnb4bitConfig(config.raw, config.file); // refuses quantization formats ditty cannot read
  return q === undefined ? {} : {
    quantization: {
      quantizes: quantizedLinearSelector(checkpointLinears(source, config.model_type), q),
      blocksize: q.blocksize,
      doubleQuant: q.doubleQuant,
    },
  };
}

/** Build the model `config` describes from the weights in `source` (any checkpoint format). */
export function buildModel(config: ModelConfig, source: TensorSource, options: BuildModelOptions = {}): BlockwiseCausalLM {
  const loader = weightLoaderOptions(config, source, options.quantization);
  switch (config.model_type) {
    case 'rwkv':
      return RwkvModel.load(config, source, loader);
    case 'gpt_neox':
      return GptNeoXModel.load(config, source, loader);
  }
}

/** Read config.json at `configPath` and build the model from `source`. */
export function loadModel(configPath: string, source: TensorSource, options: BuildModelOptions = {}): BlockwiseCausalLM {
  return buildModel(readModelConfig(configPath), source, options);
}
