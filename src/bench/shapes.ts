/** config.json contents of well-known model shapes, for benchmarks with random weights (no download). */
const rwkv = (hidden: number, layers: number) => ({
  architectures: ['RwkvForCausalLM'], model_type: 'rwkv', vocab_size: 50277, context_length: 1024,
  hidden_size: hidden, num_hidden_layers: layers, attention_hidden_size: hidden, intermediate_size: 4 * hidden,
  layer_norm_epsilon: 1e-5, bos_token_id: 0, eos_token_id: 0, rescale_every: 6, tie_word_embeddings: false,
});

const neox = (hidden: number, layers: number, heads: number, vocab: number, extra: Record<string, unknown> = {}) => ({
  architectures: ['GPTNeoXForCausalLM'], model_type: 'gpt_neox', vocab_size: vocab, hidden_size: hidden,
  num_hidden_layers: layers, num_attention_heads: heads, intermediate_size: 4 * hidden, hidden_act: 'gelu',
  rotary_pct: 0.25, rotary_emb_base: 10000, max_position_embeddings: 2048, layer_norm_eps: 1e-5,
  use_parallel_residual: true, tie_word_embeddings: false, bos_token_id: 0, eos_token_id: 0, ...extra,
});

export const MODEL_SHAPES: Readonly<Record<string, Record<string, unknown>>> = {
  'rwkv-169m': rwkv(768, 12),
  'rwkv-430m': rwkv(1024, 24),
  'rwkv-1b5': rwkv(2048, 24),
  'rwkv-3b': rwkv(2560, 32),
  'rwkv-7b': rwkv(4096, 32),
  'rwkv-14b': rwkv(5120, 40),
  'pythia-70m': neox(512, 6, 8, 50304),
  'pythia-160m': neox(768, 12, 12, 50304),
  'pythia-410m': neox(1024, 24, 16, 50304),
  'pythia-1b': neox(2048, 16, 8, 50304),
  'pythia-6.9b': neox(4096, 32, 32, 50432),
  'dolly-v2-12b': neox(5120, 36, 40, 50280, { rotary_pct: 0.25 }),
};

export function modelShapeNames(): string[] {
  return Object.keys(MODEL_SHAPES);
}
