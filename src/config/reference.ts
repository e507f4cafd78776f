/** The config reference (README): every key with its allowed values, default and meaning, from the schema. */
import { allowedText, keysAt, nodeAt } from './describe.js';
import { SECTION_DESCRIPTIONS } from './schema.js';

export interface ConfigKeyInfo {
  /** dotted key path, e.g. "lora.r" */
  readonly key: string;
  /** the allowed values in words, e.g. "an integer ≥ 1" */
  readonly type: string;
  /** the default: a value as YAML would show it, or words ("required", "unset", a derived default) */
  readonly default: string;
  /** whether `default` is a literal value (rather than words) */
  readonly defaultIsValue: boolean;
  readonly description: string;
}

export interface ConfigSectionInfo {
  /** "" for the keys at the top level */
  readonly section: string;
  readonly description: string;
  readonly keys: readonly ConfigKeyInfo[];
}

function defaultOf(key: readonly string[]): Pick<ConfigKeyInfo, 'default' | 'defaultIsValue'> {
  const node = nodeAt(key)!;
  if (node.defaultText !== undefined) return { default: node.defaultText, defaultIsValue: false };
  if (node.default !== undefined) return { default: JSON.stringify(node.default).replace(/^"(.*)"$/, '$1'), defaultIsValue: true };
  const required = nodeAt(key.slice(0, -1))!.required?.includes(key[key.length - 1]!) ?? false;
  return { default: required ? 'required' : 'unset', defaultIsValue: false };
}

function keyInfo(key: readonly string[]): ConfigKeyInfo {
  const node = nodeAt(key)!;
  return { key: key.join('.'), type: allowedText(node), ...defaultOf(key), description: node.description ?? '' };
}

/** Every config key, section by section, in schema order. */
export function describeConfigSchema(): ConfigSectionInfo[] {
  const top = keysAt([]);
  const sections = top.filter((s) => keysAt([s]).length > 0);
  const leaves = top.filter((s) => keysAt([s]).length === 0);
  return [
    ...sections.map((section) => ({
      section,
      description: SECTION_DESCRIPTIONS[section as keyof typeof SECTION_DESCRIPTIONS] ?? '',
      keys: keysAt([section]).map((k) => keyInfo([section, k])),
    })),
    { section: '', description: 'Top-level keys.', keys: leaves.map((k) => keyInfo([k])) },
  ];
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The reference as markdown: a heading and a table (key, allowed, default, description) per section. */
export function configReferenceMarkdown(headingLevel = 3): string {
  const hashes = '#'.repeat(headingLevel);
  return describeConfigSchema().map(({ section, description, keys }) => [
    `${hashes} ${section === '' ? 'top level' : `\`${section}\``}`,
    '',
    description,
    '',
    '| key | allowed | default | description |',
    '| --- | --- | --- | --- |',
    ...keys.map((k) => {
      const dflt = k.defaultIsValue ? `\`${cell(k.default)}\`` : cell(k.default);
      return `| \`${k.key}\` | ${cell(k.type)} | ${dflt} | ${cell(k.description)} |`;
    }),
    '',
  ].join('\n')).join('\n');
}
