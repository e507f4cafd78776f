/** Naming rules and messages shared by LoRA target_modules and the quantization skip list. */

/** The PEFT / transformers rule for one list entry: the path equals it or ends with "." + it. */
export function matchesName(path: string, name: string): boolean {
  return path === name || path.endsWith(`.${name}`);
}

export interface DescribeLinearsOptions {
  /** mid-sentence form, "the model's 22 linear layers: ..." (default: "The model's 22 linear layers by name: ...") */
  readonly inline?: boolean;
  /** how many example paths to show, one per name (default 6) */
  readonly maxExamples?: number;
}

/** "The model's 73 linear layers by name: key ×24, value ×24, ...; e.g. rwkv.blocks.0.attention.key, head" */
export function describeLinears(linears: ReadonlyMap<string, unknown> | Iterable<string>, options: DescribeLinearsOptions = {}): string {
  const paths = linears instanceof Map ? [...(linears.keys() as Iterable<string>)] : [...(linears as Iterable<string>)];
  const byName = new Map<string, { count: number; first: string }>();
  for (const p of paths) {
    const name = p.slice(p.lastIndexOf('.') + 1);
    const e = byName.get(name);
    if (e) e.count++;
    else byName.set(name, { count: 1, first: p });
  }
  const names = [...byName].map(([name, e]) => `${name} ×${e.count}`).join(', ');
  const examples = [...byName.values()].slice(0, options.maxExamples ?? 6).map((e) => e.first).join(', ');
  const head = options.inline ? `the model's ${paths.length} linear layers:` : `The model's ${paths.length} linear layers by name:`;
  return `${head} ${names}; e.g. ${examples}`;
}
