import type { ModelConfig } from '../models/config.js';

/** The wasm backend's heap cannot grow past 4 GiB (a 32-bit address space). */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;

/**
 * Bytes the autograd tape keeps for one training micro-batch without gradient checkpointing, as
 * measured with LoRA on the default targets: about 80 (RWKV-4) or 100 (GPT-NeoX) float32
 * [tokens, hidden] tensors per block, plus for GPT-NeoX about 20 [heads, T, T] attention tensors.
 */
export function tapeBytes(config: ModelConfig, batch: number, blockSize: number): number {
  const tokens = batch * blockSize;
  const perBlock = config.model_type === 'rwkv'
    ? 80 * tokens * config.hidden_size * 4
    : 100 * tokens * config.hidden_size * 4 + 20 * config.num_attention_heads * batch * blockSize * blockSize * 4;
  return perBlock * config.num_hidden_layers;
}
