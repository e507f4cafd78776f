/** JSON and numbers as Python writes them, for files byte-identical to what PEFT, bitsandbytes and transformers write. */

/**
 * Python `repr(float(x))`: the shortest digits that round-trip, in fixed notation when the decimal
 * exponent is in -4..15 (with ".0" for integral values), otherwise as "d.ddde+XX" / "de-XX".
 */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() without an argument gives the shortest round-trip digits, like Python's repr.
  const [mantissa, expText] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const exp = Number(expText);
  if (exp < -4 || exp >= 16) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${digits[0]}${frac}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const fracPart = digits.slice(exp + 1);
  return `${sign}${intPart}.${fracPart === '' ? '0' : fracPart}`;
}

/** A float as Python's `json.dumps` writes it (NaN / Infinity / -Infinity for non-finite values). */
export function pythonJsonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  return pythonFloatRepr(x);
}


/** A number Python holds as a float (written "0.0", "0.05", "1e-05"). */
export class PyFloat {
  constructor(readonly value: number) {}
}

export type PyJson = null | boolean | number | string | PyFloat | readonly PyJson[] | { readonly [key: string]: PyJson };

/** Python's ensure_ascii: everything outside space..tilde as \uXXXX (lower-case hex). */
function pyString(s: string): string {
  return JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `json.dumps(value, indent=2, sort_keys=True)` as Python writes it; plain JS numbers are ints when integral, else floats. */
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
