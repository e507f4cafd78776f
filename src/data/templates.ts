import { DATA_DEFAULTS, type DataSection } from '../config/schema.js';
import type { FieldSpec, Row } from './rows.js';

// The strings of Dolly's training prompt (databrickslabs/dolly training/consts.py).
export const DOLLY_INTRO =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.';
export const INSTRUCTION_KEY = '### Instruction:';
export const INPUT_KEY = 'Input:';
export const RESPONSE_KEY = '### Response:';
export const END_KEY = '### End';

/**
 * Dolly's prompt up to and including "### Response:\n": what generation is given and what the
 * response-only loss leaves out. The "Input:" section appears only for a non-empty context.
 */
export function dollyPrompt(instruction: string, context = ''): string {
  const input = context !== '' ? `${INPUT_KEY}\n${context}\n\n` : '';
  return `${DOLLY_INTRO}\n\n${INSTRUCTION_KEY}\n${instruction}\n\n${input}${RESPONSE_KEY}\n`;
}

/** What follows the prompt in training: the response and the end key (both are labelled). */
export function dollyCompletion(response: string): string {
  return `${response}\n\n${END_KEY}`;
}

/** A row split where the loss starts: `prompt + completion` is the full training text. */
export interface PromptParts {
  prompt: string;
  completion: string;
}

export type DataFormat = DataSection['format'];

export interface Template {
  readonly fields: FieldSpec;
  render(row: Row): PromptParts;
}

/** Dolly rows: instruction and response required, context optional, other keys (category) ignored. */
export const dollyTemplate: Template = {
  fields: { required: ['instruction', 'response'], optional: ['context'] },
  render: (row) => ({
    prompt: dollyPrompt(row['instruction']!, row['context'] ?? ''),
    completion: dollyCompletion(row['response']!),
  }),
};

/** Plain text from one field: no prompt, the whole text is the completion. */
export function textTemplate(field = DATA_DEFAULTS.text_field): Template {
  return {
    fields: { required: [field], optional: [] },
    render: (row) => ({ prompt: '', completion: row[field]! }),
  };
}

export function templateFor(format: DataFormat, textField = DATA_DEFAULTS.text_field): Template {
  return format === 'dolly' ? dollyTemplate : textTemplate(textField);
}

/** How generation wraps a prompt so the model sees what training showed it, and where its answer ends. */
export interface GenerationTemplate {
  readonly name: DataFormat;
  wrap(prompt: string): string;
  /** text that ends a response (cut from the output), as training rendered it */
  readonly stop?: string;
}

export const GENERATION_TEMPLATES: Readonly<Record<DataFormat, GenerationTemplate>> = {
  dolly: { name: 'dolly', wrap: (prompt) => dollyPrompt(prompt), stop: END_KEY },
  text: { name: 'text', wrap: (prompt) => prompt },
};
