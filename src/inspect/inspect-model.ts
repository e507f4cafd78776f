/** `ditty inspect`: the report of a model's modules, linears, parameters and (4-bit) storage, as text or JSON. */
import * as path from 'node:path';
import { buildModuleTree, findLinears, sortedChildren, type LinearSummary, type ModuleNode } from '../models/module-tree.js';
import { InputError } from '../io/errors.js';
import type { TensorInfo, TensorSource } from '../io/tensor-source.js';
import { parseQuantState, QUANT_STATE_SUFFIX, quantStateDtypeOf, type QuantStateJson } from '../quant/bnb-format.js';
import { quantizedLinearSelector, type ModelLinears } from '../quant/options.js';
import { plannedNf4Parts, storageReport, storedNf4Parts, type Nf4Parts, type StorageReport } from '../quant/storage-report.js';
import { locateModel, openWeights } from '../runtime/open-model.js';
import { WEIGHT_NAMES } from '../models/weight-names.js';

export interface InspectOptions {
  revision?: string;
  json?: boolean;
  quantize?: string;
  blocksize: number;
  doubleQuant: boolean;
  skipModules: string[];
}

/** A checkpoint's tensors, with each bitsandbytes 4-bit weight seen at its logical [out, in] shape. */
interface CheckpointView {
  /** the tensors as stored */
  readonly stored: TensorInfo[];
  /** the same with every 4-bit weight's tensors replaced by one `${path}.weight` [out, in] */
  readonly logical: TensorInfo[];
  /** parts of the stored 4-bit linears by module path */
  readonly quantized: Map<string, Nf4Parts>;
}

function describeCheckpoint(source: TensorSource): CheckpointView {
  const stored = source.names().map((n) => source.info(n));
  const byName = new Map(stored.map((i) => [i.name, i]));
  const suffix = `.weight.${QUANT_STATE_SUFFIX}`;
  const quantized = new Map<string, Nf4Parts>();
  const shapes = new Map<string, number[]>();
  for (const { name } of stored) {
    if (!name.endsWith(suffix)) continue;
    const modulePath = name.slice(0, -suffix.length);
    let qs: QuantStateJson;
    try {
      qs = parseQuantState(name, source.readBytes(name));
    } catch (err) {
      throw err instanceof InputError ? new InputError(`${source.location}: ${err.message}`) : err;
    }
    quantized.set(modulePath, storedNf4Parts((n) => byName.get(n), modulePath, qs.nested !== undefined));
    shapes.set(modulePath, qs.shape);
  }
  const isPart = (name: string): string | undefined => {
    const i = name.indexOf('.weight');
    const p = i > 0 ? name.slice(0, i) : undefined;
    return p !== undefined && quantized.has(p) && (name.length === i + 7 || name[i + 7] === '.') ? p : undefined;
  };
  const logical: TensorInfo[] = [];
  for (const info of stored) {
    const p = isPart(info.name);
    if (p === undefined) logical.push(info);
    else if (info.name === `${p}.weight`) logical.push({ name: info.name, dtype: 'U8', shape: shapes.get(p)! });
  }
  return { stored, logical, quantized };
}

export async function inspectModel(model: string, opts: InspectOptions): Promise<string> {
  const location = await locateModel(model, opts.revision !== undefined ? { revision: opts.revision } : {});
  const source = await openWeights(location);
  let view: CheckpointView;
  try {
    view = describeCheckpoint(source);
  } finally {
    source.close();
  }
  const infos = view.stored;
  const tree = buildModuleTree(view.logical);
  const linears = findLinears(tree, location.config.model_type);
  const total = tree.params;
  const linearParams = linears.reduce((s, l) => s + l.params, 0);
  const byName = summarizeByName(linears);
  const report = storageOf(view, { paths: linears.map((l) => l.path), head: WEIGHT_NAMES[location.config.model_type].head }, linears, total, opts);
  const storageByPath = new Map(report?.report.linears.map((l) => [l.path, l]));
  const dtypeOf = (l: LinearSummary): string => (view.quantized.has(l.path) || storageByPath.get(l.path)?.quantized ? 'NF4' : l.dtype);
  if (opts.json) {
    return `${JSON.stringify({
      model, folder: location.folder, model_type: location.config.model_type,
      parameters: total, linear_parameters: linearParams,
      linears: linears.map((l) => {
        const s = storageByPath.get(l.path);
        return {
          path: l.path, shape: [l.out, l.in], bias: l.bias, dtype: dtypeOf(l), parameters: l.params,
          ...(s ? { quantized: s.quantized, bytes: s.bytes, stored_bytes: s.storedBytes, bits_per_parameter: s.bitsPerParameter } : {}),
        };
      }),
      linear_names: byName,
      tensors: infos.map((i) => ({ name: i.name, dtype: i.dtype, shape: i.shape })),
      quantization: report === undefined ? null : storageJson(report),
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
    const s = storageByPath.get(l.path);
    const storage = s ? `  ${s.bitsPerParameter.toFixed(3)} bits  ${fmt(s.bytes)} B` : '';
    lines.push(`  ${l.path.padEnd(width)}  [${l.out}, ${l.in}]${l.bias ? ' +bias' : ''}  ${dtypeOf(l)}  ${fmt(l.params)}${storage}`);
  }
  lines.push('', 'linear names (lora.target_modules matches a name or a path suffix):');
  for (const s of byName) {
    lines.push(`  ${s.name.padEnd(16)} ${String(s.count).padStart(4)} x  shapes ${s.shapes.map((sh) => `[${sh.join(', ')}]`).join(' ')}  ${fmt(s.parameters)} params`);
  }
  if (report !== undefined) lines.push('', ...storageText(report));
  return `${lines.join('\n')}\n`;
}

interface Storage {
  readonly source: 'checkpoint' | 'planned';
  readonly settings?: { blocksize: number; doubleQuant: boolean };
  readonly report: StorageReport;
}

/** The storage of a 4-bit checkpoint, or with --quantize 4 what `ditty quantize` would write; else undefined. */
function storageOf(
  view: CheckpointView, model: ModelLinears, linears: readonly LinearSummary[], parameters: number, opts: InspectOptions,
): Storage | undefined {
  if (view.quantized.size > 0) {
    if (opts.quantize !== undefined) throw new InputError('--quantize: the model is already a 4-bit checkpoint; inspect it without --quantize');
    return { source: 'checkpoint', report: storageReport(view.stored, linears, view.quantized, parameters) };
  }
  if (opts.quantize === undefined) return undefined;
  const settings = { blocksize: opts.blocksize, doubleQuant: opts.doubleQuant };
  const quantizes = quantizedLinearSelector(model, { bits: 4, skipModules: opts.skipModules, ...settings });
  const planned = new Map(linears.filter((l) => quantizes(l.path)).map((l) => [l.path, plannedNf4Parts([l.out, l.in], opts.blocksize, opts.doubleQuant, quantStateDtypeOf(l.dtype))]));
  return { source: 'planned', settings, report: storageReport(view.stored, linears, planned, parameters) };
}

function storageJson({ source, settings, report: r }: Storage): Record<string, unknown> {
  return {
    source, ...(settings ? { blocksize: settings.blocksize, double_quant: settings.doubleQuant } : {}),
    quantized_linears: r.quantizedLinears, quantized_parameters: r.quantizedParameters,
    bits_per_parameter_quantized: r.bitsPerParameterQuantized, bits_per_parameter_overall: r.bitsPerParameterOverall,
    bytes: {
      packed_codes: r.bytes.packedCodes, absmax: r.bytes.absmax, nested_absmax: r.bytes.nestedAbsmax,
      code_tables: r.bytes.codeTables, quant_state: r.bytes.quantState, float_tensors: r.bytes.floatTensors, total: r.bytes.total,
    },
  };
}

function storageText({ source, settings, report: r }: Storage): string[] {
  const title = source === 'checkpoint'
    ? 'storage of the 4-bit checkpoint (bytes):'
    : `storage after \`ditty quantize\` (blocksize ${settings!.blocksize}, ${settings!.doubleQuant ? 'double quant' : 'no double quant'}; bytes):`;
  const rows: [string, number][] = [
    ['packed 4-bit codes', r.bytes.packedCodes],
    ['absmax (8-bit with double quant)', r.bytes.absmax],
    ['nested absmax', r.bytes.nestedAbsmax],
    ['code tables', r.bytes.codeTables],
    ['quant-state JSON', r.bytes.quantState],
    ['float tensors', r.bytes.floatTensors],
    ['total', r.bytes.total],
  ];
  return [
    title,
    ...rows.map(([label, n]) => `  ${label.padEnd(34)} ${fmt(n).padStart(16)}`),
    `bits per parameter: ${r.bitsPerParameterQuantized.toFixed(4)} in ${r.quantizedLinears} quantized linears `
      + `(${fmt(r.quantizedParameters)} parameters), ${r.bitsPerParameterOverall.toFixed(3)} overall`,
  ];
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
