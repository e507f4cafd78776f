import { InvalidArgumentError } from 'commander';
import { BACKENDS, type Backend } from '../engine/choice.js';
import { CHECKPOINTING, type Checkpointing } from '../engine/engine.js';

/** commander argument parsers that name the option and what is allowed. */
export function intOption(name: string, min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' up'}, got "${v}"`);
    }
    return n;
  };
}

export function floatOption(name: string, min: number, max: number, { minExclusive = false } = {}): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n > max || (minExclusive ? n <= min : n < min)) {
      throw new InvalidArgumentError(`${name} must be a number in ${minExclusive ? '(' : '['}${min}, ${max}], got "${v}"`);
    }
    return n;
  };
}

export function backendOption(v: string): Backend {
  if (!(BACKENDS as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`--backend must be one of ${BACKENDS.join(', ')}, got "${v}"`);
  }
  return v as Backend;
}

export function checkpointingOption(v: string): Checkpointing {
  if (!(CHECKPOINTING as readonly string[]).includes(v)) throw new InvalidArgumentError(`--checkpointing must be one of ${CHECKPOINTING.join(', ')}, got "${v}"`);
  return v as Checkpointing;
}
