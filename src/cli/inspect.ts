import * as path from 'node:path';
import type { Command } from 'commander';
import { buildModuleTree, findLinears, sortedChildren, type LinearSummary, type ModuleNode } from '../inspect/module-tree.js';
import { locateModel, openWeights } from '../runtime/open-model.js';

interface InspectOptions {
  revision?: string;
  json?: boolean;
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('print the module tree, every linear layer with its [out, in] shape, and parameter counts')
    .argument('<model>', 'local model folder or hub repo id (org/name)')
    .option('--revision <rev>', 'hub branch, tag or commit')
    .option('--json', 'print one JSON object instead of text')
    .action(async (model: string, opts: InspectOptions) => {
      process.stdout.write(await inspectModel(model, opts));
    });
}

export async function inspectModel(model: string, opts: InspectOptions): Promise<string> {
  const location = await locateModel(model, opts.revision !== undefined ? { revision: opts.revision } : {});
  const source = await openWeights(location);
  const infos = source.names().map((n) => source.info(n));
  source.close();
  const tree = buildModuleTree(infos);
  const linears = findLinears(tree, location.config.model_type);
  const total = tree.params;
  const linearParams = linears.reduce((s, l) => s + l.params, 0);
  const byName = summarizeByName(linears);
  if (opts.json) {
    return `${JSON.stringify({
      model, folder: location.folder, model_type: location.config.model_type,
      parameters: total, linear_parameters: linearParams,
      linears: linears.map((l) => ({ path: l.path, shape: [l.out, l.in], bias: l.bias, dtype: l.dtype, parameters: l.params })),
      linear_names: byName,
      tensors: infos.map((i) => ({ name: i.name, dtype: i.dtype, shape: i.shape })),
    })}\n`;
  }
  const lines: string[] = [];
  lines.push(`model: ${model}${location.folder !== model ? ` (${location.folder})` : ''}`);
  lines.push(`architecture: ${location.config.model_type}, ${location.config.num_hidden_layers} layers, hidden ${location.config.hidden_size}, vocab ${location.config.vocab_size}`);
  lines.push(`parameters: ${fmt(total)} total, ${fmt(linearParams)} in ${linears.length} linear layers (${((100 * linearParams) / total).toFixed(1)}%)`);
  lines.push('', 'module tree (parameters):');
  const linearPaths = new Map(linears.map((l) => [l.path, l]));
  for (const child of sortedChildren(tree)) renderNode(child, 0, linearPaths, lines);
  lines.push('', `linear layers [out, in] (${linears.length}):`);
  const width = Math.max(...linears.map((l) => l.path.length), 4);
  for (const l of linears) {
    lines.push(`  ${l.path.padEnd(width)}  [${l.out}, ${l.in}]${l.bias ? ' +bias' : ''}  ${l.dtype}  ${fmt(l.params)}`);
  }
  lines.push('', 'linear names (lora.target_modules matches a name or a path suffix):');
  for (const s of byName) {
    lines.push(`  ${s.name.padEnd(16)} ${String(s.count).padStart(4)} x  shapes ${s.shapes.map((sh) => `[${sh.join(', ')}]`).join(' ')}  ${fmt(s.parameters)} params`);
  }
  return `${lines.join('\n')}\n`;
}

function renderNode(node: ModuleNode, depth: number, linears: Map<string, LinearSummary>, out: string[]): void {
  const indent = '  '.repeat(depth + 1);
  const linear = linears.get(node.path);
  const label = linear ? `${node.name}: Linear [${linear.out}, ${linear.in}]${linear.bias ? ' +bias' : ''}` : node.name;
  const tensors = linear ? '' : [...node.tensors.values()]
    .map((t) => `${t.name.split('.').pop()} [${t.shape.join(', ')}] ${t.dtype}`).join(', ');
  out.push(`${indent}${label.padEnd(Math.max(40 - indent.length, label.length))} ${fmt(node.params).padStart(14)}${tensors ? `   ${tensors}` : ''}`);
  for (const child of sortedChildren(node)) renderNode(child, depth + 1, linears, out);
}

interface NameSummary {
  name: string;
  count: number;
  shapes: number[][];
  parameters: number;
}

function summarizeByName(linears: readonly LinearSummary[]): NameSummary[] {
  const map = new Map<string, NameSummary>();
  for (const l of linears) {
    const name = path.extname(`x.${l.path}`).slice(1);
    const s = map.get(name) ?? { name, count: 0, shapes: [], parameters: 0 };
    s.count++;
    s.parameters += l.params;
    if (!s.shapes.some((sh) => sh[0] === l.out && sh[1] === l.in)) s.shapes.push([l.out, l.in]);
    map.set(name, s);
  }
  return [...map.values()];
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}
