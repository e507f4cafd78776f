import type { ModelConfig } from '../models/config.js';

/** The wasm backend's heap cannot grow past 4 GiB (a 32-bit address space). */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;

/**
 * Bytes the autograd tape keeps for one training micro-batch without gradient checkpointing: about
 * 200 float32 [tokens, hidden] tensors per block (measured with LoRA on the default targets), plus the
 * GPT-NeoX attention probabilities [heads, T, T] several times over.
 */
export function tapeBytes(config: ModelConfig, batch: number, blockSize: number): number {
  const perBlock = 200 * batch * blockSize * config.hidden_size * 4
    + (config.model_type === 'gpt_neox' ? 4 * config.num_attention_heads * batch * blockSize * blockSize * 4 : 0);
  return perBlock * config.num_hidden_layers;
}
