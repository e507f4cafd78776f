import { describe, expect, it } from 'vitest';
import { dollyPrompt, dollyTemplate, textTemplate } from '../../src/data/templates.js';

const INTRO = 'Below is an instruction that describes a task. Write a response that appropriately completes the request.';

describe('Dolly template', () => {
  it('has the Input section only for a non-empty context', () => {
    expect(dollyTemplate.render({ instruction: 'Which is a fish? Tope or Rope', context: '', response: 'Tope' })).toEqual({
      prompt: `${INTRO}\n\n### Instruction:\nWhich is a fish? Tope or Rope\n\n### Response:\n`,
      completion: 'Tope\n\n### End',
    });
    expect(dollyTemplate.render({ instruction: 'Summarize.', context: 'Some text.', response: 'Short.' })).toEqual({
      prompt: `${INTRO}\n\n### Instruction:\nSummarize.\n\nInput:\nSome text.\n\n### Response:\n`,
      completion: 'Short.\n\n### End',
    });
  });

  it('gives generation the prompt up to "### Response:\\n"', () => {
    expect(dollyPrompt('Say hi')).toBe(`${INTRO}\n\n### Instruction:\nSay hi\n\n### Response:\n`);
    expect(dollyPrompt('Say hi', 'ctx')).toBe(`${INTRO}\n\n### Instruction:\nSay hi\n\nInput:\nctx\n\n### Response:\n`);
  });

  it('plain text mode uses one field as the completion', () => {
    expect(textTemplate('body').render({ body: 'abc' })).toEqual({ prompt: '', completion: 'abc' });
    expect(textTemplate().fields).toEqual({ required: ['text'], optional: [] });
  });
});
