import type { LossEngine } from '../engine/engine.js';
import { InputError } from '../io/errors.js';
import type { ModelConfig } from '../models/config.js';
import { Rng } from '../random/rng.js';
import { sampleToken, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens: number;
  readonly seed: number;
  /** generation stops after producing one of these ids (not yielded) */
  readonly stopIds: readonly number[];
}

/**
 * Yield new token ids one at a time. The prompt is consumed once; every later step feeds only the
 * new token (RWKV carries its recurrent state, GPT-NeoX its KV cache). Each token gives the event
 * loop a turn: an async generator alone resumes on microtasks only, so a SIGINT (a macrotask) would
 * wait for the whole generation.
 */
export async function* generateTokens(engine: LossEngine, promptIds: readonly number[], opts: GenerateOptions): AsyncGenerator<number> {
  if (promptIds.length === 0) throw new Error('generate needs at least one prompt token');
  const rng = new Rng(opts.seed);
  const decoder = engine.decoder();
  try {
    let logits = decoder.feed(promptIds);
    for (let i = 0; i < opts.maxNewTokens; i++) {
      const id = sampleToken(logits, opts, rng);
      if (opts.stopIds.includes(id)) return;
      yield id;
      await new Promise<void>((resolve) => { setImmediate(resolve); });
      logits = decoder.feed([id]);
    }
  } finally {
    decoder.dispose();
  }
}

/**
 * Turns a growing id sequence into text deltas, holding back output while the tail is an
 * incomplete UTF-8 sequence (decoded as U+FFFD) so multi-byte characters are never split. Each push
 * decodes only the ids since the last emitted delta plus the chunk before it (kept as context for
 * decoders that treat the start of a text specially), so streaming n tokens costs O(n), not O(n^2).
 */
export class TextStreamer {
  private readonly ids: number[] = [];
  /** ids[prefix, read) decoded to the text last emitted; ids[read, ...) are not emitted yet */
  private prefix = 0;
  private read = 0;

  constructor(private readonly decode: (ids: readonly number[]) => string) {}

  push(id: number): string {
    this.ids.push(id);
    const delta = this.pending();
    if (delta.endsWith('\uFFFD')) return '';
    this.advance();
    return delta;
  }

  flush(): string {
    const delta = this.pending();
    this.advance();
    return delta;
  }

  /** The text the ids after `read` add to the decoded context. */
  private pending(): string {
    const before = this.decode(this.ids.slice(this.prefix, this.read));
    return this.decode(this.ids.slice(this.prefix)).slice(before.length);
  }

  private advance(): void {
    this.prefix = this.read;
    this.read = this.ids.length;
  }
}

/**
 * Passes generated text through until `stop` appears, holding back a tail that could be the start of
 * it (and the whitespace before that); `done` once it has appeared (the stop text, the whitespace
 * before it and what follows are never emitted).
 */
export class StopText {
  private held = '';
  done = false;

  constructor(private readonly stop: string | undefined) {}

  push(delta: string): string {
    if (this.done) return '';
    if (this.stop === undefined || this.stop === '') return delta;
    const text = this.held + delta;
    const at = text.indexOf(this.stop);
    if (at >= 0) {
      this.done = true;
      this.held = '';
      return text.slice(0, at).trimEnd();
    }
    let keep = Math.min(this.stop.length - 1, text.length);
    while (keep > 0 && !this.stop.startsWith(text.slice(text.length - keep))) keep--;
    // whitespace before the stop text is cut with it, so it waits for what follows too
    let end = text.length - keep;
    while (end > 0 && /\s/.test(text[end - 1]!)) end--;
    this.held = text.slice(end);
    return text.slice(0, end);
  }

  flush(): string {
    const rest = this.held;
    this.held = '';
    return this.done ? '' : rest;
  }
}

/**
 * How many new tokens fit after a prompt of `promptTokens`: GPT-NeoX cannot go past
 * max_position_embeddings (an error when the prompt fills it, else `maxNewTokens` is clamped with a
 * warning); RWKV has no hard limit, but past its context_length it runs on lengths it was not trained on.
 */
export function generationBudget(config: ModelConfig, promptTokens: number, maxNewTokens: number): { maxNewTokens: number; warning?: string } {
  const total = promptTokens + maxNewTokens;
  if (config.model_type === 'gpt_neox') {
    const limit = config.max_position_embeddings;
    if (promptTokens >= limit) {
      throw new InputError(`the prompt is ${promptTokens} tokens; this GPT-NeoX model takes at most ${limit} (max_position_embeddings) in all, prompt and new tokens`);
    }
    if (total <= limit) return { maxNewTokens };
    return {
      maxNewTokens: limit - promptTokens,
      warning: `max new tokens lowered from ${maxNewTokens} to ${limit - promptTokens}: the prompt's ${promptTokens} tokens plus the new ones may not exceed the model's ${limit} positions (max_position_embeddings)`,
    };
  }
  if (total <= config.context_length) return { maxNewTokens };
  return {
    maxNewTokens,
    warning: `the prompt's ${promptTokens} tokens plus ${maxNewTokens} new ones go past the ${config.context_length} tokens this RWKV model was trained on (context_length); the text may degrade past that point`,
  };
}

export interface TextGeneration {
  readonly text: string;
  readonly tokens: number;
}

/**
 * The continuation of `prompt` as text, ended by EOS, `maxNewTokens` or `stop` (cut off). For the
 * samples during training; `ditty generate` streams the same way.
 */
export async function generateText(
  engine: LossEngine, tokenizer: { encode(text: string): number[]; decode(ids: readonly number[]): string; readonly eosId: number },
  prompt: string, opts: Omit<GenerateOptions, 'stopIds'> & { readonly stop?: string },
): Promise<TextGeneration> {
  const ids = tokenizer.encode(prompt);
  const streamer = new TextStreamer((x) => tokenizer.decode(x));
  const stop = new StopText(opts.stop);
  let text = '';
  let tokens = 0;
  for await (const id of generateTokens(engine, ids, { ...opts, stopIds: [tokenizer.eosId] })) {
    tokens++;
    text += stop.push(streamer.push(id));
    if (stop.done) break;
  }
  text += stop.push(streamer.flush()) + stop.flush();
  return { text, tokens };
}
