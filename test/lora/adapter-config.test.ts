import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { adapterConfigJson, parseAdapterConfig } from '../../src/lora/adapter-config.js';
import { defaultLoraConfig, type LoraConfig } from '../../src/lora/config.js';

const RWKV_CONFIG: LoraConfig = defaultLoraConfig('rwkv');
const FILE = 'a/adapter_config.json';

/** adapter_config.json as PEFT 0.13 writes it, with `over` merged in (undefined deletes a key). */
const peftConfig = (over: Record<string, unknown> = {}): Record<string, unknown> => {
  const obj: Record<string, unknown> = {
    alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: 'RWKV/rwkv-4-169m-pile', bias: 'none', fan_in_fan_out: false,
    inference_mode: true, init_lora_weights: true, layer_replication: null, layers_pattern: null, layers_to_transform: null,
    loftq_config: {}, lora_alpha: 16, lora_dropout: 0.05, megatron_config: null, megatron_core: 'megatron.core',
    modules_to_save: null, peft_type: 'LORA', r: 8, rank_pattern: {}, revision: null, target_modules: ['key', 'value'],
    task_type: 'CAUSAL_LM', use_dora: false, use_rslora: false, ...over,
  };
  for (const [k, v] of Object.entries(obj)) if (v === undefined) delete obj[k];
  return obj;
};

const parse = (obj: unknown) => parseAdapterConfig(FILE, JSON.stringify(obj));

/** The one line parse throws for `obj`. */
function problem(obj: unknown): string {
  try {
    parse(obj);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as Error).message;
  }
  throw new Error(`no problem found in ${JSON.stringify(obj)}`);
}

describe('adapter_config.json', () => {
  it('is written like PEFT: sorted keys, indent 2, Python floats, no final newline', () => {
    const text = adapterConfigJson(RWKV_CONFIG, { baseModelNameOrPath: 'RWKV/rwkv-4-169m-pile' });
    expect(text).toBe(`{
  "alpha_pattern": {},
  "auto_mapping": null,
  "base_model_name_or_path": "RWKV/rwkv-4-169m-pile",
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 16,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "r": 8,
  "rank_pattern": {},
  "revision": null,
  "target_modules": [
    "key",
    "value",
    "receptance"
  ],
  "task_type": "CAUSAL_LM",
  "use_rslora": false
}`);
    const parsed = JSON.parse(adapterConfigJson({ ...RWKV_CONFIG, dropout: 0, targetModules: '.*key', rankPattern: { value: 4 } })) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(Object.keys(parsed).sort());
    expect(parsed).toMatchObject({ target_modules: '.*key', rank_pattern: { value: 4 }, base_model_name_or_path: null });
    expect(adapterConfigJson({ ...RWKV_CONFIG, dropout: 0 })).toContain('"lora_dropout": 0.0,');
    expect(adapterConfigJson(RWKV_CONFIG, { baseModelNameOrPath: 'é/x' })).toContain('"base_model_name_or_path": "\\u00e9/x"');
  });
});


describe('reading adapter_config.json', () => {
  it('reads back what ditty writes', () => {
    const config: LoraConfig = {
      ...RWKV_CONFIG, dropout: 0, useRslora: true, rankPattern: { value: 4 }, alphaPattern: { value: 2 },
      layersToTransform: [0, 1], layersPattern: 'blocks',
    };
    expect(parseAdapterConfig(FILE, adapterConfigJson(config, { baseModelNameOrPath: 'RWKV/x', revision: 'v1' }))).toEqual({
      config, targetsFromConfig: true, baseModelNameOrPath: 'RWKV/x', revision: 'v1',
    });
    expect(parse(JSON.parse(adapterConfigJson({ ...RWKV_CONFIG, targetModules: '.*key' })))).toMatchObject({
      config: { ...RWKV_CONFIG, targetModules: '.*key' }, baseModelNameOrPath: null, revision: null,
    });
  });

  it('takes PEFT\'s defaults for keys that are absent or null', () => {
    const minimal = { peft_type: 'LORA', r: 4, target_modules: ['key'] };
    // PEFT's LoraConfig: lora_alpha=8, lora_dropout=0.0, use_rslora=False, bias="none", fan_in_fan_out=False
    const expected: LoraConfig = {
      r: 4, alpha: 8, dropout: 0, useRslora: false,
      bias: 'none', fanInFanOut: false, targetModules: ['key'],
      rankPattern: undefined, alphaPattern: undefined, layersToTransform: undefined, layersPattern: undefined,
    };
    expect(parse(minimal)).toEqual({ config: expected, targetsFromConfig: true, baseModelNameOrPath: null, revision: null });
    const nulls = { ...minimal, lora_alpha: null, lora_dropout: null, use_rslora: null, bias: null, fan_in_fan_out: null, rank_pattern: null };
    expect(parse(nulls).config).toEqual(expected);
    expect(parse({ ...minimal, base_model_name_or_path: '', revision: '' })).toMatchObject({ baseModelNameOrPath: null, revision: null });
    // PEFT's r=8, where the file leaves it out (the weights' shapes are then checked against it)
    expect(parse({ ...minimal, r: undefined }).config.r).toBe(8);
    expect(parse({ ...minimal, r: null }).config.r).toBe(8);
  });

  it('leaves target_modules to the weight keys when it is null', () => {
    expect(parse(peftConfig({ target_modules: null }))).toMatchObject({ targetsFromConfig: false, config: { targetModules: [] } });
    expect(parse(peftConfig({ target_modules: undefined }))).toMatchObject({ targetsFromConfig: false });
  });

  it('passes keys it does not read, from any PEFT version, unchecked', () => {
    const later = peftConfig({
      use_qalora: false, qalora_group_size: 16, exclude_modules: null, eva_config: null, corda_config: null, lora_bias: false,
      target_parameters: [], trainable_token_indices: null, init_lora_weights: 'gaussian', runtime_config: { ephemeral_gpu_offload: false },
      a_key_from_the_future: [{ anything: 1 }],
    });
    expect(parse(later).config).toMatchObject({ r: 8, alpha: 16, targetModules: ['key', 'value'] });
  });

  it('refuses adapters other than LoRA and the PEFT features ditty does not implement', () => {
    expect(problem(peftConfig({ peft_type: 'IA3' }))).toBe(`${FILE}: peft_type: "IA3" adapters are not supported; ditty loads LORA adapters only`);
    expect(problem(peftConfig({ peft_type: undefined }))).toBe(`${FILE}: peft_type: missing; ditty loads LORA adapters only`);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ use_dora: true }, 'use_dora: true is not supported by ditty'],
      [{ modules_to_save: ['embed_out'] }, 'modules_to_save: ["embed_out"] is not supported by ditty'],
      [{ layer_replication: [[0, 4], [2, 6]] }, 'layer_replication: [[0,4],[2,6]] is not supported by ditty'],
      [{ lora_bias: true }, 'lora_bias: true is not supported by ditty'],
      [{ target_parameters: ['experts.gate_up_proj'] }, 'target_parameters: ["experts.gate_up_proj"] is not supported by ditty'],
      [{ trainable_token_indices: [0, 1] }, 'trainable_token_indices: [0,1] is not supported by ditty'],
      [{ bias: 'lora_only' }, 'bias: "lora_only" is not supported (only "none": biases stay frozen)'],
      [{ fan_in_fan_out: true }, 'fan_in_fan_out: true is not supported (RWKV and GPT-NeoX store weights [out, in])'],
      ...['pissa', 'pissa_niter_16', 'olora', 'corda'].map((init): [Record<string, unknown>, string] => [{ init_lora_weights: init },
        `init_lora_weights: "${init}" changes the base model's weights, and ditty applies adapters to the unchanged base; `
        + 'save it with PEFT\'s path_initial_model_for_weight_conversion, which turns it into a plain LoRA adapter of the original base']),
      [{ init_lora_weights: 'loftq' }, 'init_lora_weights: "loftq" changes the base model\'s weights, and ditty applies adapters to the unchanged base'],
    ];
    for (const [over, message] of cases) expect(problem(peftConfig(over))).toBe(`${FILE}: ${message}`);
    // Written but not used: accepted.
    expect(() => parse(peftConfig({ use_dora: false, modules_to_save: [], layer_replication: null, target_parameters: [] }))).not.toThrow();
    // initialisations that only choose the starting A and B
    for (const init of [true, false, null, 'gaussian', 'eva', 'orthogonal']) expect(() => parse(peftConfig({ init_lora_weights: init }))).not.toThrow();
  });

  it('names the key and the value of the wrong type, nested ones too', () => {
    const cases: Array<[unknown, string]> = [
      [[1, 2], 'the top level: must be a JSON object, found [1,2]'],
      [peftConfig({ r: 'eight' }), 'r: must be a positive integer, found "eight"'],
      [peftConfig({ lora_alpha: '16' }), 'lora_alpha: must be a positive number, found "16"'],
      [peftConfig({ lora_dropout: false }), 'lora_dropout: must be a number in [0, 1), found false'],
      [peftConfig({ use_rslora: 'true' }), 'use_rslora: must be true or false, found "true"'],
      [peftConfig({ fan_in_fan_out: 0 }), 'fan_in_fan_out: must be true or false, found 0'],
      [peftConfig({ target_modules: 5 }), 'target_modules: must be a string or a list of strings, found 5'],
      [peftConfig({ target_modules: ['key', 3] }), 'target_modules: must be a string or a list of strings, found ["key",3]'],
      [peftConfig({ layers_pattern: { blocks: 1 } }), 'layers_pattern: must be a string or a list of strings, found {"blocks":1}'],
      [peftConfig({ rank_pattern: ['value'] }), 'rank_pattern: must be an object mapping module names to numbers, found ["value"]'],
      [peftConfig({ rank_pattern: { value: '4' } }), 'rank_pattern.value: must be a positive integer, found "4"'],
      [peftConfig({ alpha_pattern: { 'blocks.0.attention.value': null } }), 'alpha_pattern.blocks.0.attention.value: missing; expected a positive number'],
      [peftConfig({ layers_to_transform: '0' }), 'layers_to_transform: must be an integer or a list of integers, found "0"'],
      [peftConfig({ layers_to_transform: [0, 1.5] }), 'layers_to_transform: must be an integer or a list of integers, found [0,1.5]'],
      [peftConfig({ base_model_name_or_path: 5 }), 'base_model_name_or_path: must be a string, found 5'],
      [peftConfig({ revision: ['main'] }), 'revision: must be a string, found ["main"]'],
    ];
    for (const [obj, message] of cases) expect(problem(obj)).toBe(`${FILE}: ${message}`);
  });

  it('holds the values to LoraConfig\'s ranges', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ r: 0 }, 'r: must be a positive integer, found 0'],
      [{ r: 2.5 }, 'r: must be a positive integer, found 2.5'],
      [{ lora_alpha: 0 }, 'lora_alpha: must be a positive number, found 0'],
      [{ lora_dropout: 1 }, 'lora_dropout: must be in [0, 1), found 1'],
      [{ target_modules: [] }, 'target_modules: must name at least one module, each a non-empty string'],
      [{ target_modules: '' }, 'target_modules: must not be an empty string'],
      [{ target_modules: '.*key', layers_to_transform: [0] }, 'layers_to_transform: cannot be used when target_modules is a regex string'],
      [{ rank_pattern: { value: 0 } }, 'rank_pattern["value"]: must be a positive integer, found 0'],
      [{ alpha_pattern: { value: -2 } }, 'alpha_pattern["value"]: must be a positive number, found -2'],
      [{ target_modules: null, r: -1 }, 'r: must be a positive integer, found -1'],
    ];
    for (const [over, message] of cases) expect(problem(peftConfig(over))).toBe(`${FILE}: ${message}`);
  });

  it('reports text that is not JSON', () => {
    expect(() => parseAdapterConfig(FILE, '{"r": 8,')).toThrow(/^a\/adapter_config\.json: not valid JSON/);
  });
});
