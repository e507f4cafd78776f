/**
 * The config schema as plain data (zod's JSON Schema export), walked by key path to say what a key
 * allows, which keys a section has, and what each one means.
 */
import * as z from 'zod';
import { TrainConfigSchema, type KeyMeta } from './schema.js';

/** The parts of a JSON Schema node that the config schema uses. */
export interface SchemaNode extends Partial<KeyMeta> {
  readonly type?: string;
  readonly enum?: readonly unknown[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly minLength?: number;
  readonly minItems?: number;
  readonly items?: SchemaNode;
  readonly anyOf?: readonly SchemaNode[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly required?: readonly string[];
  readonly default?: unknown;
}

export const CONFIG_SCHEMA = z.toJSONSchema(TrainConfigSchema, { io: 'input' }) as SchemaNode;

/** The schema node at a key path, or undefined when the path names no key. */
export function nodeAt(path: readonly (string | number)[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = CONFIG_SCHEMA;
  for (const key of path) {
    const here: SchemaNode = withoutNull(node!);
    node = typeof key === 'string' ? here.properties?.[key] : here.items;
    if (node === undefined) return undefined;
  }
  return node;
}

/** A nullable node's non-null variant (null means "use the default" in a config). */
export function withoutNull(node: SchemaNode): SchemaNode {
  return node.anyOf?.find((n) => n.type !== 'null') ?? node;
}

/** The keys allowed in the section at `path` ([] for the top level). */
export function keysAt(path: readonly (string | number)[]): string[] {
  const node = nodeAt(path);
  return Object.keys(node === undefined ? {} : (withoutNull(node).properties ?? {}));
}

const SAFE_MAX = Number.MAX_SAFE_INTEGER;

function listWords(items: readonly string[]): string {
  return items.length === 2 ? `${items[0]} or ${items[1]}` : `one of ${items.join(', ')}`;
}

function bounds(node: SchemaNode): string {
  const lo = node.minimum !== undefined ? `≥ ${node.minimum}` : node.exclusiveMinimum !== undefined ? `> ${node.exclusiveMinimum}` : '';
  const hiMax = node.maximum !== undefined && node.maximum < SAFE_MAX ? node.maximum : undefined;
  if (node.minimum !== undefined && hiMax !== undefined) return `from ${node.minimum} to ${hiMax}`;
  const hi = hiMax !== undefined ? `≤ ${hiMax}` : node.exclusiveMaximum !== undefined ? `< ${node.exclusiveMaximum}` : '';
  return [lo, hi].filter((s) => s !== '').join(' and ');
}

/** What a key allows, in words: "an integer ≥ 1", "one of constant, linear, cosine", ... */
export function allowedText(node: SchemaNode): string {
  if (node.allowed !== undefined) return node.allowed;
  if (node.anyOf !== undefined) {
    const options = node.anyOf.filter((n) => n.type !== 'null');
    return options.map(allowedText).join(' or ');
  }
  if (node.enum !== undefined) return listWords(node.enum.map(String));
  switch (node.type) {
    case 'integer':
    case 'number': {
      const b = bounds(node);
      const kind = node.type === 'integer' ? 'an integer' : 'a number';
      return b === '' ? kind : `${kind} ${b}`;
    }
    case 'boolean':
      return 'true or false';
    case 'string':
      return (node.minLength ?? 0) > 0 ? 'a non-empty string' : 'a string';
    case 'array': {
      const items = node.items?.type === 'string' ? 'names' : 'values';
      return (node.minItems ?? 0) > 0 ? `a non-empty list of ${items}` : `a list of ${items}`;
    }
    case 'object':
      return `a mapping with keys ${Object.keys(node.properties ?? {}).join(', ')}`;
    default:
      return 'a value';
  }
}
