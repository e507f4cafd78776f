/** PEFT's rules for choosing the modules that get a LoRA adapter, with errors that show what exists. */
import { InputError } from '../io/errors.js';
import { describeLinears, matchesName } from '../io/module-names.js';

/**
 * Which modules get an adapter: a list of names (a module path equal to an entry or ending in
 * "." + entry) or, as in PEFT, one regular expression that must match the whole path.
 */
export type TargetModules = readonly string[] | string;

export interface MatchOptions {
  /** PEFT layers_to_transform: keep only suffix matches inside these layer indices. */
  readonly layersToTransform?: readonly number[] | number;
  /** PEFT layers_pattern: the layer list's name (e.g. "blocks", "layers"); any name when absent. */
  readonly layersPattern?: readonly string[] | string;
  /**
   * Names of the model's other weights (e.g. the keys of `otherParams`), so that a target naming one
   * of them is reported as "not a linear" rather than "no such module".
   */
  readonly otherNames?: Iterable<string>;
}

export { matchesName };

/** A PEFT (Python) regex as a RegExp that must match the whole string, like `re.fullmatch`. */
export function fullMatchRegex(pattern: string, what = 'target_modules'): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (err) {
    throw new InputError(`${what}: cannot use the regular expression ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
}

/**
 * PEFT's rank_pattern / alpha_pattern lookup: the value of the first key whose regex matches the end
 * of the path after a dot (`(.*\.)?(key)$`), else `fallback`.
 */
export function patternValue(pattern: Readonly<Record<string, number>> | undefined, path: string, fallback: number): number {
  for (const [key, value] of Object.entries(pattern ?? {})) {
    if (fullMatchRegex(`(?:.*\\.)?(?:${key})`, 'rank_pattern/alpha_pattern').test(path)) return value;
  }
  return fallback;
}

/** The layer index PEFT reads from a path ("rwkv.blocks.3.attention.key" -> 3), or undefined. */
function layerIndex(path: string, layersPattern: readonly string[] | string | undefined): number | undefined {
  const patterns = typeof layersPattern === 'string' ? [layersPattern] : layersPattern ?? [];
  const regexes = patterns.length === 0 ? [/^.*\.[^.]*\.(\d+)\./] : patterns.map((p) => new RegExp(`^.*\\.(?:${p})\\.(\\d+)\\.`));
  for (const re of regexes) {
    const m = re.exec(path);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** PEFT's `check_target_module_exists` for one module path. */
export function isTarget(path: string, targets: TargetModules, options: MatchOptions = {}): boolean {
  if (typeof targets === 'string') return fullMatchRegex(targets).test(path);
  if (targets.includes(path)) return true;
  if (!targets.some((t) => path.endsWith(`.${t}`))) return false;
  const wanted = options.layersToTransform;
  if (wanted === undefined || (typeof wanted !== 'number' && wanted.length === 0)) return true;
  const index = layerIndex(path, options.layersPattern);
  if (index === undefined) return false;
  return typeof wanted === 'number' ? index === wanted : wanted.includes(index);
}

/**
 * The paths of the linears that get an adapter, in the map's order. Unlike PEFT, which only fails
 * when nothing matches, every list entry must match at least one linear: a typo is an error, not a
 * silently missing adapter.
 */
export function matchTargets(linears: ReadonlyMap<string, unknown>, targets: TargetModules, options: MatchOptions = {}): string[] {
  const paths = [...linears.keys()];
  const problems: string[] = [];
  const entries = typeof targets === 'string' ? [targets] : targets;
  for (const entry of entries) {
    const hit = typeof targets === 'string'
      ? (p: string): boolean => fullMatchRegex(entry).test(p)
      : (p: string): boolean => matchesName(p, entry);
    if (paths.some(hit)) continue;
    const label = typeof targets === 'string' ? `target_modules regex ${JSON.stringify(entry)}` : `target "${entry}"`;
    const other = otherModuleNames(paths, options.otherNames).find(hit);
    problems.push(other === undefined
      ? `${label} matches no module of the model`
      : `${label} names ${other}, which is not a linear layer (LoRA adapts linear layers only)`);
  }
  if (problems.length > 0) throw new InputError(`${problems.join('; ')}.\n${describeLinears(linears)}`);
  const matched = paths.filter((p) => isTarget(p, targets, options));
  if (matched.length === 0) {
    throw new InputError(`layers_to_transform ${JSON.stringify(options.layersToTransform)} leaves no linear layer among those `
      + `target_modules selects.\n${describeLinears(linears)}`);
  }
  return matched;
}

/** Module paths that exist but are not linears: containers of linears and the other weights with their parents. */
function otherModuleNames(linearPaths: readonly string[], otherNames: Iterable<string> | undefined): string[] {
  const linearSet = new Set(linearPaths);
  const names = new Set<string>();
  const addWithParents = (name: string): void => {
    const parts = name.split('.');
    for (let i = parts.length; i > 0; i--) names.add(parts.slice(0, i).join('.'));
  };
  for (const p of linearPaths) addWithParents(p.split('.').slice(0, -1).join('.'));
  for (const n of otherNames ?? []) addWithParents(n.replace(/\.(weight|bias)$/, ''));
  names.delete('');
  return [...names].filter((n) => !linearSet.has(n));
}
