/** Sample generations during training (`eval.prompts`), appended to samples.jsonl for the report. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainConfig } from '../config/index.js';
import { GENERATION_TEMPLATES, type GenerationTemplate } from '../data/templates.js';
import type { LossEngine } from '../engine/engine.js';
import { generateText, generationBudget } from '../generate/generate.js';
import { InputError } from '../io/errors.js';
import type { ModelConfig } from '../models/config.js';
import { SAMPLES_FILE } from '../report/run-report.js';
import { MetricsFile } from './progress.js';

/** The fixed sampling settings, recorded with every sample. */
export interface SampleSettings {
  readonly template: string;
  readonly max_new_tokens: number;
  readonly temperature: number;
  readonly top_p: number;
  readonly seed: number;
}

/** One line of samples.jsonl. */
export interface SampleLine {
  readonly step: number;
  /** the prompt as the user gave it (before the template wrapped it) */
  readonly prompt: string;
  readonly output: string;
  readonly settings: SampleSettings;
}

/** The prompts of `eval.prompts`: the list, or the non-blank lines of the file it names. */
export function readPrompts(prompts: readonly string[] | string): string[] {
  if (typeof prompts !== 'string') return [...prompts];
  let text: string;
  try {
    text = fs.readFileSync(prompts, 'utf8');
  } catch (err) {
    throw new InputError(`eval.prompts: cannot read ${prompts}: ${(err as Error).message}`);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) throw new InputError(`eval.prompts: ${prompts} holds no prompt (one per line)`);
  return lines;
}

export interface SampleTokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  readonly eosId: number;
}

/**
 * Generates every prompt at step 0 (before training), every `eval.every` steps and at the end, with
 * the training template and fixed, seeded settings, so a change between steps is the model's.
 */
export class SampleWriter {
  private readonly file: MetricsFile<SampleLine>;
  private readonly template: GenerationTemplate;
  private readonly every: number;
  /** each prompt wrapped in the template, with the new tokens that fit after it */
  private readonly wrapped: readonly { readonly prompt: string; readonly text: string; readonly maxNewTokens: number }[];
  readonly settings: SampleSettings;

  /** Checks every prompt against the model's length before training starts (a prompt too long for GPT-NeoX is an error). */
  constructor(runDir: string, prompts: readonly string[], config: TrainConfig, private readonly tokenizer: SampleTokenizer, model: ModelConfig, log: (message: string) => void) {
    this.file = new MetricsFile<SampleLine>(path.join(runDir, SAMPLES_FILE));
    this.template = GENERATION_TEMPLATES[config.data.format];
    const e = config.eval;
    this.every = e.every;
    this.settings = { template: this.template.name, max_new_tokens: e.max_new_tokens, temperature: e.temperature, top_p: e.top_p, seed: e.seed };
    this.wrapped = prompts.map((prompt, i) => {
      const text = this.template.wrap(prompt);
      let budget;
      try {
        budget = generationBudget(model, tokenizer.encode(text).length, e.max_new_tokens);
      } catch (err) {
        throw err instanceof InputError ? new InputError(`eval.prompts: prompt ${i + 1}: ${err.message}`) : err;
      }
      if (budget.warning !== undefined) log(`warning: eval.prompts: prompt ${i + 1}: ${budget.warning}`);
      return { prompt, text, maxNewTokens: budget.maxNewTokens };
    });
  }

  /** Whether samples are due after optimizer step `step` (0: before the first). */
  due(step: number, isLast: boolean): boolean {
    return this.wrapped.length > 0 && (step === 0 || isLast || step % this.every === 0);
  }

  async write(engine: LossEngine, step: number): Promise<void> {
    const s = this.settings;
    for (const w of this.wrapped) {
      const { text } = await generateText(engine, this.tokenizer, w.text, {
        maxNewTokens: w.maxNewTokens, temperature: s.temperature, topP: s.top_p, seed: s.seed,
        ...(this.template.stop !== undefined ? { stop: this.template.stop } : {}),
      });
      this.file.append({ step, prompt: w.prompt, output: text, settings: s });
    }
  }
}
