import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, parseTrainConfig } from '../../src/config/load.js';

const FILE = 'configs/x.yaml';
const MODEL = 'model:\n  name_or_path: RWKV/rwkv-4-169m-pile\n';
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();

function problems(text: string, overrides: string[] = []): readonly string[] {
  try {
    parseTrainConfig(text, FILE, overrides, { cwd: '/runs' });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

afterEach(() => {
  // Whatever a case did, Object.prototype must be as it was.
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTO_KEYS);
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
});

describe('config: keys named like Object.prototype members are plain (unknown) keys', () => {
  it.each([
    ['__proto__.polluted=1', /--set __proto__\.polluted=1: __proto__: unknown key; allowed top-level keys/],
    ['training.__proto__.polluted=1', /--set training\.__proto__\.polluted=1: training\.__proto__: unknown key; allowed keys in training/],
    ['constructor.prototype.polluted=1', /--set constructor\.prototype\.polluted=1: constructor: unknown key/],
    ['__proto__={polluted: 1}', /__proto__: unknown key/],
    ['training.toString=1', /training\.toString: unknown key/],
  ])('--set %s', (set, want) => {
    const all = problems(MODEL, [set]);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatch(want);
  });

  it('training.__proto__ in YAML is an unknown key, and sets nothing through the prototype', () => {
    const text = `${MODEL}training:\n  __proto__:\n    max_steps: 5\n    polluted: 1\n`;
    const all = problems(text);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatch(/^configs\/x\.yaml:4:3: training\.__proto__: unknown key; allowed keys in training/);
  });

  it('a top-level __proto__ and constructor in YAML are unknown keys', () => {
    const all = problems(`${MODEL}__proto__:\n  polluted: 1\nconstructor:\n  prototype:\n    polluted: 1\n`);
    expect(all.map((p) => p.replace(/;.*/, ''))).toEqual(['configs/x.yaml:3:1: __proto__: unknown key', 'configs/x.yaml:5:1: constructor: unknown key']);
  });

  it('a __proto__ override on a section does not reach the section’s values', () => {
    const all = problems(MODEL, ['training.__proto__={max_steps: 7}']);
    expect(all).toEqual([expect.stringMatching(/training\.__proto__: unknown key/)]);
  });
});

describe('config: many problems are reported quickly and summed up', () => {
  it('100,000 unknown keys: 20 listed, the rest counted, in seconds', () => {
    const keys = Array.from({ length: 100_000 }, (_, i) => `  bad_${i}: ${i}`).join('\n');
    const t0 = Date.now();
    const all = problems(`${MODEL}training:\n${keys}\n`);
    expect(Date.now() - t0).toBeLessThan(60_000); // quadratic before: over 3 minutes
    expect(all).toHaveLength(21);
    expect(all[0]).toMatch(/^configs\/x\.yaml:4:3: training\.bad_0: unknown key/);
    expect(all[20]).toMatch(/training: and 99980 more unknown keys$/);
  });

  it('more than 40 problems: 40 listed and a count', () => {
    const list = Array.from({ length: 60 }, (_, i) => `    - ${i}`).join('\n');
    const all = problems(`${MODEL}lora:\n  target_modules:\n${list}\n`);
    expect(all.length).toBe(41);
    expect(all[40]).toBe('configs/x.yaml: and 20 more problems');
  });
});
