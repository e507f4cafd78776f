/**
 * Which linears of a model are held in NF4, following transformers + bitsandbytes: every linear of
 * the blocks except the output head and the user's skip list. Embeddings, layer norms and the RWKV
 * time_* parameters are not linears, so they are never quantized. quant/ knows no architecture: the
 * model's linears and its head come from models/ (models/load.ts checkpointLinears).
 */
import { QUANTIZATION_DEFAULTS } from '../config/schema.js';
import { InputError } from '../io/errors.js';
import { describeLinears, matchesName } from '../io/module-names.js';
import { validateBlocksize } from './nf4.js';

export interface QuantizationOptions {
  /** 4: NF4 linears; 16: plain float linears (a 4-bit checkpoint is dequantized). */
  readonly bits: 4 | 16;
  /** Quantize the absmax values to 8 bits (bitsandbytes compress_statistics). */
  readonly doubleQuant: boolean;
  /** Values per absmax block: a power of two in 32..4096. */
  readonly blocksize: number;
  /** Linears kept in float: a module path, or a name matching a path suffix after "." (like LoRA targets). */
  readonly skipModules: readonly string[];
}

/** The config's quantization defaults (config/schema.ts) as options. */
export const DEFAULT_QUANTIZATION: QuantizationOptions = {
  bits: QUANTIZATION_DEFAULTS.bits, doubleQuant: QUANTIZATION_DEFAULTS.double_quant,
  blocksize: QUANTIZATION_DEFAULTS.blocksize, skipModules: QUANTIZATION_DEFAULTS.skip_modules,
};

/** A model's linear layers as quantization sees them. */
export interface ModelLinears {
  /** every linear's module path, the head's included */
  readonly paths: readonly string[];
  /** the output head's module path, which transformers never quantizes */
  readonly head: string;
}

/**
 * Checks `options` against the model's linears and returns the predicate "this linear is held in
 * NF4". Errors: a bad blocksize, or a skip entry that matches no linear (listing them).
 */
export function quantizedLinearSelector(linears: ModelLinears, options: QuantizationOptions): (path: string) => boolean {
  const linearPaths = linears.paths;
  if (options.bits !== 4 && options.bits !== 16) throw new InputError(`quantization bits must be 4 or 16, got ${String(options.bits)}`);
  try {
    validateBlocksize(options.blocksize);
  } catch (err) {
    throw new InputError((err as Error).message);
  }
  const unmatched = options.skipModules.filter((entry) => !linearPaths.some((p) => matchesName(p, entry)));
  if (unmatched.length > 0) {
    const list = unmatched.map((e) => JSON.stringify(e)).join(', ');
    throw new InputError(`skip module${unmatched.length > 1 ? 's' : ''} ${list} match${unmatched.length > 1 ? '' : 'es'} no linear layer; ${describeLinears(linearPaths, { inline: true, maxExamples: Infinity })}`);
  }
  if (options.bits === 16) return () => false;
  return (path) => path !== linears.head && !options.skipModules.some((entry) => matchesName(path, entry));
}
