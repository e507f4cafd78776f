import type { ModelConfig } from '../models/config.js';

/** The wasm backend's heap cannot grow past 4 GiB (a 32-bit address space). */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;

/**
 * Bytes the autograd tape keeps for one training micro-batch without gradient checkpointing, as
 * measured with LoRA on the default targets: about 80 (RWKV-4) or 60 (GPT-NeoX, whose attention
 * recomputes its probabilities in backward) float32 [tokens, hidden] tensors per block.
 */
export function tapeBytes(config: ModelConfig, batch: number, blockSize: number): number {
  const perToken = config.model_type === 'rwkv' ? 80 : 60;
  return perToken * batch * blockSize * config.hidden_size * 4 * config.num_hidden_layers;
}
