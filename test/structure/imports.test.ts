/**
 * Imports run one way (../shared/DESIGN.md, "The one picture"): each folder of src/ may import only
 * from folders on a lower layer than its own, and files never import each other in a circle.
 *
 * LAYERS is the picture read as imports, from the ground up: io/ and random/ (the one seeded
 * generator) are the floor; the engine/ contract stands on io/; config/ (schema and defaults) is
 * read by everything above it; quant/ is the NF4 format alone, models/ are built on it, lora/
 * injects into models; data/ turns rows into blocks; generate/ and eval/ use models and data;
 * runtime/ opens the engines behind the Engine contract, which train/ drives (report/ sits under
 * train/, which writes the report); export/, inspect/ and bench/ use all of that, and cli/ only
 * parses arguments on top. Folders on one layer do not import each other.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const LAYERS: readonly (readonly string[])[] = [
  ['io', 'random'],
  ['engine'],
  ['hub', 'tokenizer'],
  ['config'],
  ['quant'],
  ['models'],
  ['lora'],
  ['data'],
  ['generate', 'eval'],
  ['runtime'],
  ['report'],
  ['train'],
  ['export', 'inspect'],
  ['bench', 'env'],
  ['cli'],
];

const SRC = path.resolve(__dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** src-relative path of each file -> src-relative paths of the project files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles
      .map((ref) => ref.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => path.relative(SRC, path.resolve(path.dirname(file), name)).replace(/\.js$/, '.ts'));
    graph.set(path.relative(SRC, file), targets);
  }
  return graph;
}

function layerOf(file: string): number {
  const folder = file.split(path.sep)[0];
  const layer = LAYERS.findIndex((names) => names.includes(folder));
  if (layer < 0) throw new Error(`src/${folder}/ has no layer in test/structure/imports.test.ts: place it`);
  return layer;
}

/** `from -> to` for each import into another folder on the same layer or a higher one. */
function upwardImports(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const upward: string[] = [];
  for (const [file, targets] of graph) {
    for (const target of targets) {
      const [from, to] = [file.split(path.sep)[0], target.split(path.sep)[0]];
      if (from !== to && layerOf(target) >= layerOf(file)) upward.push(`src/${file} -> src/${target}`);
    }
  }
  return upward;
}

/** Each circle of file imports found by a depth-first walk, as "a -> b -> a". */
function importCircles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const circles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const trail: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    trail.push(file);
    for (const target of graph.get(file) ?? []) {
      if (state.get(target) === 'open') circles.push([...trail.slice(trail.indexOf(target)), target].join(' -> '));
      else if (!state.has(target)) visit(target);
    }
    trail.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return circles;
}

describe('import direction (DESIGN.md)', () => {
  const graph = importGraph();

  it('reads the tree: every relative import names a file of src/', () => {
    expect(graph.size).toBeGreaterThan(100);
    const missing = [...graph].flatMap(([file, targets]) =>
      targets.filter((target) => !fs.existsSync(path.join(SRC, target))).map((target) => `${file} -> ${target}`));
    expect(missing).toEqual([]);
  });

  it('no folder imports from a folder on its own layer or above it', () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  it('no files import each other in a circle', () => {
    expect(importCircles(graph)).toEqual([]);
  });

  it('the checks catch an upward import, a same-layer import, a circle and an unplaced folder', () => {
    const p = (...parts: string[]): string => path.join(...parts);
    const bad = new Map([
      [p('quant', 'a.ts'), [p('models', 'b.ts')]],
      [p('models', 'b.ts'), [p('quant', 'a.ts')]],
      [p('data', 'c.ts'), [p('random', 'rng.ts'), p('data', 'd.ts')]],
      [p('data', 'd.ts'), [p('data', 'c.ts')]],
      [p('generate', 'e.ts'), [p('eval', 'f.ts')]],
    ]);
    expect(upwardImports(bad)).toEqual([`src/${p('quant', 'a.ts')} -> src/${p('models', 'b.ts')}`,
      `src/${p('generate', 'e.ts')} -> src/${p('eval', 'f.ts')}`]);
    expect(importCircles(bad)).toEqual([
      [p('data', 'c.ts'), p('data', 'd.ts'), p('data', 'c.ts')].join(' -> '),
      [p('models', 'b.ts'), p('quant', 'a.ts'), p('models', 'b.ts')].join(' -> '),
    ]);
    expect(() => layerOf(p('nowhere', 'x.ts'))).toThrow(/no layer/);
  });
});
