/**
 * Loading a training config: YAML text + `--set key.path=value` overrides -> a validated, resolved
 * TrainConfig, or one ConfigError listing every problem as "file:line:col: key.path: what is wrong".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, stringify, visit, type Document } from 'yaml';
import { InputError } from '../io/errors.js';
import { keysAt } from './describe.js';
import { dotted, issueProblems, typeName, type KeyPath, type Problem } from './problems.js';
import { resolveConfig } from './resolve.js';
import { TrainConfigSchema, type TrainConfig } from './schema.js';

/** Problems listed in one ConfigError; the rest are counted. */
const MAX_PROBLEMS = 40;

/** A config with problems; the message has one line per problem. */
export class ConfigError extends InputError {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

interface Override {
  /** as the user wrote it, e.g. "lora.r=16" */
  readonly text: string;
  readonly path: readonly string[];
  readonly value: unknown;
}

export interface ParseOptions {
  /** the folder `--set` paths and default paths are relative to (default: process.cwd()) */
  readonly cwd?: string;
}

/** Reads, validates and resolves a training config file, applying `--set` overrides in order. */
export function loadTrainConfig(file: string, overrides: readonly string[] = [], options: ParseOptions = {}): TrainConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`${file}: cannot read the config${code === 'ENOENT' ? ': no such file' : code === 'EISDIR' ? ': it is a folder' : ` (${code ?? String(err)})`}`);
  }
  return parseTrainConfig(text, file, overrides, options);
}

/**
 * Validates and resolves config text. `file` names it in messages, and relative paths in it are
 * relative to the file's folder; `--set` values and defaults are relative to options.cwd.
 */
export function parseTrainConfig(text: string, file: string, overrides: readonly string[] = [], options: ParseOptions = {}): TrainConfig {
  const cwd = options.cwd ?? process.cwd();
  const sets = parseOverrides(overrides);
  const lineCounter = new LineCounter();
  // yaml's own duplicate-key check compares each key with every earlier one (100k keys: hours);
  // duplicateKeys below does the same check with a set per mapping.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const at = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const syntax = [
    ...doc.errors.map((e) => ({ offset: e.pos[0], message: e.message.split('\n')[0]! })),
    ...duplicateKeys(doc).map((offset) => ({ offset, message: 'Map keys must be unique' })),
  ].sort((a, b) => a.offset - b.offset);
  if (syntax.length > 0) {
    throw new ConfigError(syntax.slice(0, MAX_PROBLEMS).map((e) => `${at(e.offset)}: YAML syntax error: ${e.message}`));
  }
  let contents: unknown;
  try {
    contents = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([`${file}:1:1: YAML error: ${err instanceof Error ? err.message : String(err)}`]);
  }
  if (contents === null || contents === undefined) {
    throw new ConfigError([`${file}:1:1: the config is empty; expected a mapping with at least model.name_or_path`]);
  }
  if (!isPlainObject(contents)) {
    throw new ConfigError([`${at(doc.contents?.range?.[0] ?? 0)}: the config must be a mapping of ${keysAt([]).join(', ')}; got ${typeName(contents)}`]);
  }
  const input = withoutNulls(contents);
  for (const o of sets) setIn(input, o.path, o.value);

  const locate = locator(doc, at, file, sets);
  const fail = (problems: readonly Problem[]): never => {
    const located = problems.map((p) => ({ ...locate(p.path, p.atKey ?? false), problem: p }));
    located.sort((a, b) => Number(a.problem.last ?? false) - Number(b.problem.last ?? false) || a.order - b.order);
    const lines = located.slice(0, MAX_PROBLEMS).map(({ label, problem }) => `${label}: ${dotted(problem.path)}: ${problem.message}`);
    if (located.length > MAX_PROBLEMS) lines.push(`${file}: and ${located.length - MAX_PROBLEMS} more problems`);
    throw new ConfigError(lines);
  };

  const parsed = TrainConfigSchema.safeParse(input);
  if (!parsed.success) return fail(parsed.error.issues.flatMap((issue) => issueProblems(issue, input)));
  const configDir = path.dirname(path.resolve(cwd, file));
  const resolved = resolveConfig(parsed.data, {
    cwd,
    baseDir: (key) => (sets.some((o) => startsWith(key, o.path)) ? cwd : configDir),
  });
  return 'problems' in resolved ? fail(resolved.problems) : resolved.config;
}

/** The resolved config as YAML, in schema order: what a checkpoint saves, and loads back unchanged. */
export function resolvedConfigYaml(config: TrainConfig): string {
  return `# ditty train config, resolved: defaults applied, local paths absolute\n${stringify(inSchemaOrder(config, []), { lineWidth: 0 })}`;
}

function parseOverrides(overrides: readonly string[]): Override[] {
  const problems: string[] = [];
  const parsed: Override[] = [];
  for (const text of overrides) {
    const eq = text.indexOf('=');
    const key = eq < 0 ? '' : text.slice(0, eq).trim();
    if (!/^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/.test(key)) {
      problems.push(`--set ${text}: expected key.path=value, e.g. --set training.max_steps=10`);
      continue;
    }
    const value = parseDocument(text.slice(eq + 1), { prettyErrors: false });
    const error = value.errors[0];
    if (error !== undefined) problems.push(`--set ${text}: the value is not valid YAML: ${error.message.split('\n')[0]}`);
    else parsed.push({ text, path: key.split('.'), value: value.toJS() as unknown });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed;
}

/** Source offsets of keys repeated within one mapping (yaml reports the later key). */
function duplicateKeys(doc: Document): number[] {
  const out: number[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(key)) out.push((isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? map.range?.[0] ?? 0);
        seen.add(key);
      }
    },
  });
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Sets an own property. A plain assignment to "__proto__" would replace the object's prototype (and
 * a key path through it would reach Object.prototype); as an own key it is just an unknown key.
 */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function getOwn(obj: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

/** A copy in which keys with null values are gone: an empty value in a config means "the default". */
function withoutNulls(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x !== null) setOwn(out, k, isPlainObject(x) ? withoutNulls(x) : x);
  }
  return out;
}

function setIn(root: Record<string, unknown>, keys: readonly string[], value: unknown): void {
  let node = root;
  for (const k of keys.slice(0, -1)) {
    const next = getOwn(node, k);
    if (isPlainObject(next)) {
      node = next;
    } else {
      const fresh = {};
      setOwn(node, k, fresh);
      node = fresh;
    }
  }
  const last = keys[keys.length - 1]!;
  if (value === null) delete node[last];
  else setOwn(node, last, isPlainObject(value) ? withoutNulls(value) : value);
}

function startsWith(p: KeyPath, prefix: KeyPath): boolean {
  return prefix.length <= p.length && prefix.every((k, i) => k === p[i]);
}

/** Where a problem is: the `--set` that wrote the key, else the key or value in the file, else its nearest section. */
function locator(doc: Document, at: (offset: number) => string, file: string, sets: readonly Override[]) {
  const setLabel = (o: Override) => ({ label: `--set ${o.text}`, order: Number.MAX_SAFE_INTEGER });
  return (key: KeyPath, atKey: boolean): { label: string; order: number } => {
    const cover = [...sets].reverse().find((o) => startsWith(key, o.path));
    if (cover !== undefined) return setLabel(cover);
    const offset = offsetOf(doc, key, atKey);
    if (offset !== undefined) return { label: at(offset), order: offset };
    const created = [...sets].reverse().find((o) => startsWith(o.path, key));
    if (created !== undefined) return setLabel(created);
    for (let n = key.length - 1; n >= 1; n--) {
      const parent = offsetOf(doc, key.slice(0, n), true);
      if (parent !== undefined) return { label: at(parent), order: parent };
    }
    return { label: `${file}:1:1`, order: 0 };
  };
}

/** Source offset of the value at `key` (of the key itself when atKey, or when the value is empty). */
function offsetOf(doc: Document, key: KeyPath, atKey: boolean): number | undefined {
  let node: unknown = doc.contents;
  let keyNode: unknown;
  for (const k of key) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(k));
      if (pair === undefined) return undefined;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof k === 'number') {
      keyNode = undefined;
      node = node.items[k];
    } else {
      return undefined;
    }
  }
  const empty = node === null || node === undefined || (isScalar(node) && node.value === null);
  const target = (atKey || empty) && keyNode !== undefined ? keyNode : node;
  return isScalar(target) || isMap(target) || isSeq(target) ? target.range?.[0] : undefined;
}

function inSchemaOrder(value: unknown, key: readonly string[]): unknown {
  if (!isPlainObject(value)) return value;
  const order = keysAt(key);
  const keys = [...order.filter((k) => k in value), ...Object.keys(value).filter((k) => !order.includes(k))];
  return Object.fromEntries(keys.filter((k) => value[k] !== undefined).map((k) => [k, inSchemaOrder(value[k], [...key, k])]));
}
