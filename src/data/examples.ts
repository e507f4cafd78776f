import type { DataSection } from '../config/schema.js';
import type { PromptParts } from './templates.js';

/** Which tokens count in the loss: the completion (response + end key + EOS) or every token. */
export type TrainOn = DataSection['train_on'];

/** The tokenizer calls examples need (TextTokenizer has them). */
export interface Encoder {
  encode(text: string): number[];
  readonly eosId: number;
}

/** One tokenized row: `mask[i]` is 1 when token i is a loss target (predicted from the tokens before it). */
export interface Example {
  ids: number[];
  mask: Uint8Array;
}

/**
 * Tokenize prompt and completion separately (so the mask boundary falls exactly between them),
 * concatenate them and append EOS. With trainOn 'response' the prompt tokens are masked out.
 */
export function tokenizeExample(tok: Encoder, parts: PromptParts, trainOn: TrainOn): Example {
  const prompt = parts.prompt === '' ? [] : tok.encode(parts.prompt);
  const completion = tok.encode(parts.completion);
  const ids = [...prompt, ...completion, tok.eosId];
  const mask = new Uint8Array(ids.length).fill(1);
  if (trainOn === 'response') mask.fill(0, 0, prompt.length);
  return { ids, mask };
}
