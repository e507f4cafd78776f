/**
 * What a merge needs to know about a base checkpoint without building the model: its linear layers
 * and their [out, in] shapes, whether some are bitsandbytes 4-bit, and their float32 weights.
 */
import { InputError } from '../io/errors.js';
import type { TensorInfo, TensorSource } from '../io/tensor-source.js';
import { buildModuleTree, findLinears } from '../models/module-tree.js';
import type { Architecture, LinearLayer } from '../models/types.js';
import { fromBnbTensors, parseQuantState, QUANT_STATE_SUFFIX } from '../quant/bnb-format.js';
import { dequantizeNf4 } from '../quant/nf4.js';

/** A linear known by its shape only: enough to check an adapter against, never applied. */
class ShapeOnlyLinear implements LinearLayer {
  constructor(readonly path: string, readonly outFeatures: number, readonly inFeatures: number, readonly hasBias: boolean) {}

  apply(): never {
    throw new Error(`${this.path}: a checkpoint description cannot run`);
  }

  dispose(): void {}
}

export interface BaseCheckpoint {
  readonly source: TensorSource;
  /** every linear of the checkpoint by module path, with its shape */
  readonly linears: Map<string, LinearLayer>;
  /** module paths of the bitsandbytes 4-bit linears */
  readonly quantized: ReadonlySet<string>;
  /** whether `name` is one of the bookkeeping tensors of a 4-bit weight (absmax, quant_map, ...) */
  isQuantState(name: string): boolean;
  /** the float32 weight [out, in] of the linear at `path` (dequantized when it is 4-bit) */
  weight(path: string): Float32Array;
}

const QUANT_STATE_KEY = `.weight.${QUANT_STATE_SUFFIX}`;

/** The [out, in] shape recorded in a bitsandbytes quant state. */
function quantizedShape(source: TensorSource, key: string): [number, number] {
  let shape: readonly number[];
  try {
    ({ shape } = parseQuantState(key, source.readBytes(key)));
  } catch (err) {
    throw err instanceof InputError ? new InputError(`${source.location}: ${err.message}`) : err;
  }
  if (shape.length !== 2 || !shape.every((d) => d > 0)) {
    throw new InputError(`${source.location}: tensor "${key}": "shape" must be [out, in], got ${JSON.stringify(shape)}`);
  }
  return [shape[0]!, shape[1]!];
}

/** Describes the checkpoint in `source` (of architecture `modelType`); the source stays open and owned by the caller. */
export function describeBase(source: TensorSource, modelType: Architecture): BaseCheckpoint {
  const names = source.names();
  const quantized = new Set(names.filter((n) => n.endsWith(QUANT_STATE_KEY)).map((n) => n.slice(0, -QUANT_STATE_KEY.length)));
  const isQuantState = (name: string): boolean => {
    const i = name.indexOf('.weight.');
    return i > 0 && quantized.has(name.slice(0, i));
  };
  const infos: TensorInfo[] = names.filter((n) => !isQuantState(n)).map((n) => source.info(n));
  const linears = new Map<string, LinearLayer>();
  for (const l of findLinears(buildModuleTree(infos), modelType)) {
    const [out, inp] = quantized.has(l.path) ? quantizedShape(source, `${l.path}${QUANT_STATE_KEY}`) : [l.out, l.in];
    linears.set(l.path, new ShapeOnlyLinear(l.path, out, inp, l.bias));
  }
  const stored = (name: string): { dtype: string; shape: readonly number[]; bytes: Uint8Array } | undefined => {
    if (!source.has(name)) return undefined;
    const { dtype, shape } = source.info(name);
    return { dtype, shape, bytes: source.readBytes(name) };
  };
  return {
    source,
    linears,
    quantized,
    isQuantState,
    weight(path: string): Float32Array {
      if (!quantized.has(path)) return source.readFloat32(`${path}.weight`);
      try {
        return dequantizeNf4(fromBnbTensors(path, stored));
      } catch (err) {
        if (err instanceof InputError) throw new InputError(`${source.location}: ${err.message}`);
        throw err;
      }
    },
  };
}
