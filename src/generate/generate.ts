import type { LossEngine } from '../engine/engine.js';
import { Rng } from './rng.js';
import { sampleToken, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  readonly maxNewTokens: number;
  readonly seed: number;
  /** generation stops after producing one of these ids (not yielded) */
  readonly stopIds: readonly number[];
}

/**
 * Yield new token ids one at a time. The prompt is consumed once; every later step feeds only the
 * new token (RWKV carries its recurrent state, GPT-NeoX its KV cache).
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
