/**
 * bitsandbytes 4-bit checkpoints as transformers saves them: how config.json declares them, and
 * reading one stored linear back into an NF4 state without re-quantizing.
 */
import * as z from 'zod';
import { InputError } from '../io/errors.js';
import { checkJson, expecting, flag, isAbsent, shown, withDefault } from '../io/json.js';
import type { TensorSource } from '../io/tensor-source.js';
import { fromBnbTensors, QUANT_STATE_SUFFIX, type QuantStateDtype } from './bnb-format.js';
import type { Nf4State } from './nf4.js';

/** The key whose presence marks `${path}` as a stored 4-bit linear. */
export function quantStateKey(path: string): string {
  return `${path}.weight.${QUANT_STATE_SUFFIX}`;
}

const FP4_SUFFIX = 'quant_state.bitsandbytes__fp4';
const BNB_PARTS = [QUANT_STATE_SUFFIX, 'absmax', 'quant_map', 'nested_absmax', 'nested_quant_map'];

/** transformers' BitsAndBytesConfig as saved in config.json, as far as ditty reads it. */
const BnbConfigSchema = z.object({
  quant_method: withDefault(z.literal('bitsandbytes', {
    error: (issue) => `${shown(issue.input)} is not supported (ditty reads bitsandbytes 4-bit NF4 checkpoints)`,
  }), 'bitsandbytes'),
  load_in_8bit: withDefault(z.literal(false, {
    error: (issue) => (issue.input === true
      ? 'bitsandbytes 8-bit checkpoints are not supported; ditty reads 4-bit NF4 ones'
      : `must be true or false, found ${shown(issue.input)}`),
  }), false),
  load_in_4bit: withDefault(flag(), false),
  /** read only for a 4-bit config; absent or null: bitsandbytes' default, fp4 */
  bnb_4bit_quant_type: z.string(expecting('a string')).nullish(),
}, { error: (issue) => `must be a JSON object, found ${shown(issue.input)}` }).check((ctx) => {
  const { load_in_4bit: fourBit, bnb_4bit_quant_type: type } = ctx.value;
  if (fourBit && type !== 'nf4') {
    const found = isAbsent(type) ? 'missing, which means fp4 (bitsandbytes\' default)' : `${shown(type)} is not supported`;
    ctx.issues.push({ code: 'custom', path: ['bnb_4bit_quant_type'], input: type, message: `${found}; ditty reads NF4 only` });
  }
});

/** The key of config.json that declares a quantized checkpoint; absent or null: none. */
const QuantizationConfigSchema = z.object({ quantization_config: BnbConfigSchema.nullish() });

/**
 * Checks config.json's `quantization_config`: true for a bitsandbytes NF4 checkpoint, false when the
 * config declares no 4-bit quantization. Anything ditty cannot read (8-bit, FP4, other methods) is an
 * InputError "<file>: quantization_config.<key>: <problem>".
 */
export function isBnb4bitConfig(raw: Readonly<Record<string, unknown>>, file: string): boolean {
  return checkJson(QuantizationConfigSchema, raw, file).quantization_config?.load_in_4bit === true;
}

/** A stored NF4 linear, with the names of every tensor it was read from. */
export interface StoredNf4 {
  readonly state: Nf4State & { dtype: QuantStateDtype };
  readonly tensors: readonly string[];
}

/**
 * The NF4 state of the linear at `path` when the checkpoint stores it in bitsandbytes 4-bit form
 * (`${path}.weight` with its quant-state, absmax, ... tensors), else undefined. Errors name the
 * malformed or missing key.
 */
export function readStoredNf4(source: TensorSource, path: string, shape: readonly [number, number]): StoredNf4 | undefined {
  const weight = `${path}.weight`;
  const where = source.location;
  if (source.has(`${weight}.${FP4_SUFFIX}`)) {
    throw new InputError(`${where}: tensor "${weight}.${FP4_SUFFIX}": FP4 4-bit weights are not supported; ditty reads NF4 only`);
  }
  // Any of the bitsandbytes companion tensors marks the weight as 4-bit, so a missing one is named.
  if (!BNB_PARTS.some((part) => source.has(`${weight}.${part}`))) return undefined;
  const read: string[] = [];
  let state: StoredNf4['state'];
  try {
    state = fromBnbTensors(path, (name) => {
      if (!source.has(name)) return undefined;
      read.push(name);
      const info = source.info(name);
      return { dtype: info.dtype, shape: info.shape, bytes: source.readBytes(name) };
    });
  } catch (err) {
    if (err instanceof InputError) throw new InputError(`${where}: ${err.message}`);
    throw err;
  }
  if (state.shape.length !== 2 || state.shape[0] !== shape[0] || state.shape[1] !== shape[1]) {
    throw new InputError(`${where}: tensor "${quantStateKey(path)}": shape [${state.shape.join(', ')}], expected [${shape.join(', ')}] from the model config`);
  }
  return { state, tensors: read };
}
