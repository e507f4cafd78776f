/** `json.dumps(value, indent=2, sort_keys=True)` as Python writes it, for files PEFT writes the same way. */
import { pythonJsonFloat } from '../quant/python-repr.js';

/** A number Python holds as a float (written "0.0", "0.05", "1e-05"). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyJson = null | boolean | number | string | PyFloat | readonly PyJson[] | { readonly [key: string]: PyJson };

/** Python's ensure_ascii: everything outside space..tilde as \uXXXX (lower-case hex). */
function pyString(s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Plain JS numbers are ints when integral, else floats. */
export function pythonJsonDumps(value: PyJson, indent = 2, level = 0): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return pyString(value);
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pythonJsonFloat(value);
  if (value instanceof PyFloat) return pythonJsonFloat(value.value);
  const pad = '\n' + ' '.repeat(indent * (level + 1));
  const end = '\n' + ' '.repeat(indent * level);
  if (Array.isArray(value)) {
    const items = (value as readonly PyJson[]).map((v) => pythonJsonDumps(v, indent, level + 1));
    return items.length === 0 ? '[]' : `[${pad}${items.join(`,${pad}`)}${end}]`;
  }
  const obj = value as { readonly [key: string]: PyJson };
  const keys = Object.keys(obj).sort();
  const items = keys.map((k) => `${pyString(k)}: ${pythonJsonDumps(obj[k]!, indent, level + 1)}`);
  return items.length === 0 ? '{}' : `{${pad}${items.join(`,${pad}`)}${end}}`;
}
