import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError, WeightFileError } from './errors.js';
import { SafetensorsFile } from './safetensors.js';
import { TensorMap, type TensorInfo, type TensorSource } from './tensor-source.js';
import { TorchCheckpointFile } from './torch-checkpoint.js';
import { parseWeightIndex, WEIGHT_LAYOUTS } from './weight-index.js';

const TORCH_EXTENSIONS = ['.bin', '.pt', '.pth', '.ckpt'];

/** Open one weight file, by extension: .safetensors, or a torch.save checkpoint, zip or legacy (.bin, .pt, .pth, .ckpt). */
export async function openWeightFile(file: string): Promise<TensorSource> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.safetensors') return SafetensorsFile.open(file);
  if (TORCH_EXTENSIONS.includes(ext)) return TorchCheckpointFile.open(file);
  throw new WeightFileError(file, `unknown weight file type "${ext}" (expected .safetensors or ${TORCH_EXTENSIONS.join(', ')})`);
}

/**
 * Open the weights of a Hugging Face model folder, trying in order model.safetensors,
 * model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json.
 * Every shard named by an index is opened (header or zip directory + data.pkl only) and checked to
 * hold the tensors the index assigns to it.
 */
export async function openCheckpoint(folder: string): Promise<TensorSource> {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(folder);
  } catch {
    throw new InputError(`${folder}: model folder does not exist`);
  }
  if (!stat.isDirectory()) throw new InputError(`${folder}: expected a model folder, found a file (use openWeightFile for a single file)`);
  for (const layout of WEIGHT_LAYOUTS) {
    const single = path.join(folder, layout.single);
    if (fs.existsSync(single)) return openWeightFile(single);
    const index = path.join(folder, layout.index);
    if (fs.existsSync(index)) return openSharded(folder, index);
  }
  const present = fs.readdirSync(folder).filter((f) => /\.(safetensors|bin|pt|pth|ckpt)$/i.test(f));
  const wanted = WEIGHT_LAYOUTS.flatMap((l) => [l.single, l.index]).join(', ');
  throw new InputError(`${folder}: no weights found (looked for ${wanted})${present.length ? `; weight-like files present: ${present.join(', ')}` : ''}`);
}

async function openSharded(folder: string, indexFile: string): Promise<TensorSource> {
  const index = parseWeightIndex(() => fs.readFileSync(indexFile, 'utf8'), indexFile);
  if (index.weightMap.size === 0) throw new InputError(`${indexFile}: weight_map is empty`);
  const shards = new Map<string, TensorSource>();
  try {
    for (const name of index.files) {
      const file = path.join(folder, name);
      if (!fs.existsSync(file)) throw new WeightFileError(file, `shard listed in ${path.basename(indexFile)} is missing from ${folder}`);
      shards.set(name, await openWeightFile(file));
    }
    const routes = new Map<string, Routed>();
    for (const [tensor, name] of index.weightMap) {
      const shard = shards.get(name)!;
      if (!shard.has(tensor)) throw new WeightFileError(shard.location, `listed in ${path.basename(indexFile)} but absent from this shard`, tensor);
      routes.set(tensor, { ...shard.info(tensor), shard });
    }
    return new ShardedSource(folder, routes, [...shards.values()]);
  } catch (err) {
    for (const s of shards.values()) s.close();
    throw err;
  }
}

interface Routed extends TensorInfo {
  readonly shard: TensorSource;
}

/** Tensors of several shard files, routed by the index's weight map. */
class ShardedSource extends TensorMap<Routed> {
  constructor(location: string, routes: ReadonlyMap<string, Routed>, private readonly shards: readonly TensorSource[]) {
    super(location, routes);
  }

  readBytes(name: string): Uint8Array {
    return this.entry(name).shard.readBytes(name);
  }

  override close(): void {
    for (const s of this.shards) s.close();
  }
}
