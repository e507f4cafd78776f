/** Config problems: what is wrong with which key, in words, from zod's issues and our own checks. */
import type * as z from 'zod';
import { shown } from '../io/json.js';
import { allowedText, keysAt, nodeAt } from './describe.js';
import { suggestKey, suggestValue } from './suggest.js';

export type KeyPath = readonly (string | number)[];

/** Unknown keys of one section reported one by one. */
const MAX_UNKNOWN_KEYS = 20;

export interface Problem {
  readonly path: KeyPath;
  /** what follows "<path>: " in the message */
  readonly message: string;
  /** point at the key itself (unknown or missing keys) rather than its value */
  readonly atKey?: boolean;
  /** list it after the others (a count of problems not listed) */
  readonly last?: boolean;
}

export function dotted(path: KeyPath): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string': return 'a string';
    case 'number': return Number.isNaN(value) ? 'not a number' : Number.isFinite(value) ? 'a number' : 'infinite';
    case 'boolean': return 'a boolean';
    case 'object': return 'a mapping';
    default: return typeof value;
  }
}

export function expected(path: KeyPath): string {
  const node = nodeAt(path);
  return node === undefined ? 'a known key' : allowedText(node);
}

/** A hint for common YAML slips: quoted numbers, YAML 1.1 booleans. */
function typeHint(value: unknown): string {
  if (typeof value !== 'string') return '';
  if (value.trim() !== '' && Number.isFinite(Number(value))) return ' (remove the quotes to make it a number)';
  if (/^(yes|no|on|off|y|n)$/i.test(value)) return ' (YAML 1.2: write true or false)';
  return '';
}

function valueAt(root: unknown, path: KeyPath): unknown {
  let v = root;
  for (const k of path) v = v !== null && typeof v === 'object' && Object.prototype.hasOwnProperty.call(v, k) ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

function unknownKey(section: KeyPath, key: string): Problem {
  const sectionPath = section.filter((k): k is string => typeof k === 'string');
  const allowed = keysAt(sectionPath);
  const where = sectionPath.length === 0 ? 'top-level keys' : `keys in ${dotted(section)}`;
  const nested = key.split('.');
  const suggestion = nested.length > 1 && nodeAt([...sectionPath, ...nested]) !== undefined
    ? ` (write dotted keys nested: "${nested[0]}:" with "${nested.slice(1).join('.')}:" indented under it)`
    : ((s) => (s === undefined ? '' : ` (did you mean "${s}"?)`))(suggestKey(sectionPath, key));
  return { path: [...section, key], atKey: true, message: `unknown key; allowed ${where}: ${allowed.join(', ')}${suggestion}` };
}

/** A missing key; for a missing section, its required keys (model -> model.name_or_path). */
function missing(path: KeyPath): Problem[] {
  const required = nodeAt(path)?.required ?? [];
  if (required.length > 0) return required.flatMap((key) => missing([...path, key]));
  return [{ path, atKey: true, message: `required key is missing; expected ${expected(path)}` }];
}

/** The problems one zod issue stands for (an unrecognized_keys issue names several keys). */
export function issueProblems(issue: z.core.$ZodIssue, input: unknown): Problem[] {
  const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
  const value = valueAt(input, path);
  const valueText = shown(value);
  const allowed = expected(path);
  const problem = (message: string, atKey = false): Problem[] => [{ path, message, atKey }];
  switch (issue.code) {
    case 'unrecognized_keys': {
      // Each is located and matched against the allowed keys; a flood of them is summed up instead.
      const listed = issue.keys.slice(0, MAX_UNKNOWN_KEYS).map((key) => unknownKey(path, key));
      const more = issue.keys.length - listed.length;
      if (more > 0) listed.push({ path, atKey: true, message: `and ${more} more unknown keys`, last: true });
      return listed;
    }
    case 'invalid_type':
      if (value === undefined) return missing(path);
      if (issue.expected === 'int' && typeof value === 'number') {
        return problem(`${valueText} is ${Number.isInteger(value) ? 'too large' : 'not an integer'}; expected ${allowed}`);
      }
      return problem(`${valueText} is ${typeName(value)}; expected ${allowed}${typeHint(value)}`);
    case 'too_small':
      if (Array.isArray(value)) return problem(`${valueText} is an empty list; expected ${allowed}`);
      if (typeof value === 'string') return problem(`"" is empty; expected ${allowed}`);
      return problem(`${valueText} is too small; expected ${allowed}`);
    case 'too_big':
      return problem(`${valueText} is too large; expected ${allowed}`);
    case 'invalid_value': {
      const options = issue.values.map(String);
      const near = typeof value === 'string' ? suggestValue(value, options) : undefined;
      return problem(`${valueText} is not allowed; expected ${allowed}${near === undefined ? '' : ` (did you mean "${near}"?)`}`);
    }
    case 'custom':
      return problem(`${valueText} ${issue.message}; expected ${allowed}`);
    default:
      return problem(`${valueText} is not allowed: ${issue.message}; expected ${allowed}`);
  }
}
