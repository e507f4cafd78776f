import type { DType } from '../io/dtypes.js';
import { numel } from '../io/dtypes.js';
import type { TensorInfo } from '../io/tensor-source.js';
import type { Architecture } from './types.js';
import { WEIGHT_NAMES } from './weight-names.js';

/** Module names (last path component) of the linear layers per architecture, as transformers names them. */
export const LINEAR_MODULE_NAMES: Readonly<Record<Architecture, readonly string[]>> = {
  rwkv: ['key', 'value', 'receptance', 'output', WEIGHT_NAMES.rwkv.head],
  gpt_neox: ['query_key_value', 'dense', 'dense_h_to_4h', 'dense_4h_to_h', WEIGHT_NAMES.gpt_neox.head],
};

export interface ModuleNode {
  readonly name: string;
  readonly path: string;
  readonly children: Map<string, ModuleNode>;
  /** tensors directly owned by this module: local name (weight, bias, ...) -> info */
  readonly tensors: Map<string, TensorInfo>;
  params: number;
}

export interface LinearSummary {
  readonly path: string;
  readonly out: number;
  readonly in: number;
  readonly bias: boolean;
  readonly dtype: DType;
  readonly params: number;
}

/** Build the module hierarchy from checkpoint tensor names (`a.b.c.weight` -> module `a.b.c`). */
export function buildModuleTree(infos: readonly TensorInfo[]): ModuleNode {
  const root: ModuleNode = { name: '', path: '', children: new Map(), tensors: new Map(), params: 0 };
  for (const info of infos) {
    const parts = info.name.split('.');
    const local = parts.pop()!;
    let node = root;
    node.params += numel(info.shape);
    for (const part of parts) {
      let child = node.children.get(part);
      if (!child) {
        child = { name: part, path: node.path ? `${node.path}.${part}` : part, children: new Map(), tensors: new Map(), params: 0 };
        node.children.set(part, child);
      }
      child.params += numel(info.shape);
      node = child;
    }
    node.tensors.set(local, info);
  }
  return root;
}

/** The linear layers of a tree: modules named like the architecture's linears with a 2-D weight. */
export function findLinears(root: ModuleNode, architecture: Architecture): LinearSummary[] {
  const names = new Set(LINEAR_MODULE_NAMES[architecture]);
  const out: LinearSummary[] = [];
  const visit = (node: ModuleNode): void => {
    const weight = node.tensors.get('weight');
    if (names.has(node.name) && weight && weight.shape.length === 2) {
      const bias = node.tensors.get('bias');
      out.push({
        path: node.path, out: weight.shape[0]!, in: weight.shape[1]!, bias: bias !== undefined, dtype: weight.dtype,
        params: numel(weight.shape) + (bias ? numel(bias.shape) : 0),
      });
    }
    for (const child of node.children.values()) visit(child);
  };
  visit(root);
  return out;
}

/** Children in natural order: numeric names (block indices) sorted as numbers. */
export function sortedChildren(node: ModuleNode): ModuleNode[] {
  return [...node.children.values()].sort((a, b) => {
    const na = Number(a.name), nb = Number(b.name);
    if (Number.isInteger(na) && Number.isInteger(nb)) return na - nb;
    return 0;
  });
}
