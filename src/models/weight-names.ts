/**
 * The checkpoint names of each architecture's weights outside its blocks, as transformers names them:
 * the one home of the embedding, the final norm and the output head, which the tfjs models, the
 * native engine, the quantization plan (models/load's checkpointLinears hands quant/ the head) and
 * the benchmark's random checkpoints all use.
 */
import type { Architecture } from './types.js';

export interface OuterWeightNames {
  /** the token embedding [vocab, hidden] */
  readonly embedding: string;
  /** the layer norm after the last block (its `.weight` and `.bias`) */
  readonly finalNorm: string;
  /** the output head's module path (its weight `${head}.weight`, [vocab, hidden]): a linear never quantized */
  readonly head: string;
}

export const WEIGHT_NAMES: Readonly<Record<Architecture, OuterWeightNames>> = {
  rwkv: { embedding: 'rwkv.embeddings.weight', finalNorm: 'rwkv.ln_out', head: 'head' },
  gpt_neox: { embedding: 'gpt_neox.embed_in.weight', finalNorm: 'gpt_neox.final_layer_norm', head: 'embed_out' },
};
