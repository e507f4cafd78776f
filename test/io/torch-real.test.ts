/**
 * ditty's .bin reader on files written by real torch.save (test/fixtures/torch/, made by
 * scripts/make-torch-fixtures.py with Debian's PyTorch; see the manifest for the version): the zip
 * and the legacy format, views of shared storages, every dtype, state_dict() with _metadata,
 * keep_vars=True, storages tagged cuda:0, a sharded folder with an index. Every tensor is compared
 * with the manifest exactly: dtype, shape, the sha256 of its row-major bytes, and its values.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { WeightFileError } from '../../src/io/errors.js';
import { unpickleAt } from '../../src/io/pickle.js';
import type { TensorSource } from '../../src/io/tensor-source.js';
import { TorchCheckpointFile } from '../../src/io/torch-checkpoint.js';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'torch');

interface Expected {
  readonly dtype: string;
  readonly shape: number[];
  readonly sha256: string;
  /** float64 values; "inf", "-inf", "nan" as strings; absent for int64 beyond 2^53 */
  readonly values?: (number | string)[];
}

interface FixtureFile {
  readonly format: 'zip' | 'legacy' | 'sharded';
  readonly note: string;
  readonly tensors: Record<string, Expected>;
}

const manifest = JSON.parse(fs.readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as { torch: string; files: Record<string, FixtureFile> };

const num = (v: number | string): number => (typeof v === 'number' ? v : Number(v.replace('inf', 'Infinity')));

function checkAll(source: TensorSource, want: FixtureFile): void {
  // a sharded folder lists its tensors in the index's order (sorted), a file in state dict order
  const order = (names: string[]): string[] => (want.format === 'sharded' ? [...names].sort() : names);
  expect(order(source.names())).toEqual(order(Object.keys(want.tensors)));
  for (const [name, t] of Object.entries(want.tensors)) {
    expect(source.info(name), name).toEqual({ name, dtype: t.dtype, shape: t.shape });
    const bytes = source.readBytes(name);
    expect(createHash('sha256').update(bytes).digest('hex'), `${name} bytes`).toBe(t.sha256);
    if (!t.values) continue;
    const values = t.values.map(num);
    expect([...source.readFloat32(name)], `${name} as float32`).toEqual(values.map(Math.fround));
    if (t.dtype === 'F64') expect([...new Float64Array(bytes.slice().buffer)], name).toEqual(values);
  }
}

describe(`torch.save fixtures (torch ${manifest.torch})`, () => {
  for (const [file, want] of Object.entries(manifest.files)) {
    it(`${file}: ${want.note}`, async () => {
      const location = path.join(DIR, file);
      const source = want.format === 'sharded' ? await openCheckpoint(location) : await TorchCheckpointFile.open(location);
      try {
        checkAll(source, want);
      } finally {
        source.close();
      }
    });
  }

  it('covers both formats, each with views, _metadata, keep_vars, cuda tags and a wrapped dict', () => {
    const bytes = (f: string): Buffer => fs.readFileSync(path.join(DIR, f));
    for (const format of ['zip', 'legacy']) {
      for (const kind of ['dtypes', 'views', 'state-dict', 'keep-vars', 'cuda', 'wrapped']) {
        expect(manifest.files[`${format}-${kind}.bin`]?.format, `${format}-${kind}.bin`).toBe(format);
      }
      const head = bytes(`${format}-dtypes.bin`).subarray(0, 4);
      // a zip local header, or the legacy format's pickled magic number (PROTO 2, LONG1 of 10 bytes)
      expect([...head]).toEqual(format === 'zip' ? [0x50, 0x4b, 0x03, 0x04] : [0x80, 0x02, 0x8a, 0x0a]);
      // torch stores the pickles uncompressed, so the tags they hold can be seen in the bytes
      expect(bytes(`${format}-cuda.bin`).includes('cuda:0')).toBe(true);
      expect(bytes(`${format}-dtypes.bin`).includes('cuda:0')).toBe(false);
      expect(bytes(`${format}-state-dict.bin`).includes('_metadata')).toBe(true);
      expect(bytes(`${format}-keep-vars.bin`).includes('_rebuild_parameter')).toBe(true);
    }
    expect(Object.keys(manifest.files['sharded']!.tensors)).toHaveLength(4);
  });
});

describe('legacy format: a real file made wrong in one place is refused, naming what is wrong', () => {
  const original = new Uint8Array(fs.readFileSync(path.join(DIR, 'legacy-views.bin')));
  // offsets of the five pickles: magic, protocol version, sys_info, the state dict, the storage keys
  const ends: number[] = [];
  for (let at = 0; ends.length < 5; at = ends[ends.length - 1]!) ends.push(unpickleAt(original, at, 'legacy-views.bin', true).end);
  const storages = ends[4]!;

  async function refusal(edit: (b: Uint8Array) => Uint8Array, name: string): Promise<string> {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-legacy-')), name);
    fs.writeFileSync(file, edit(original.slice()));
    try {
      const err = await TorchCheckpointFile.open(file).then((f) => { f.close(); return undefined; }, (e: unknown) => e);
      expect(err).toBeInstanceOf(WeightFileError);
      return (err as Error).message;
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  }
  const at = (b: Uint8Array, from: number, to: number, bytes: number[]): number => {
    const i = Buffer.from(b.subarray(from, to)).indexOf(Buffer.from(bytes));
    expect(i).toBeGreaterThanOrEqual(0);
    return from + i;
  };

  it('reads as it is', async () => {
    const f = await TorchCheckpointFile.open(path.join(DIR, 'legacy-views.bin'));
    f.close();
    expect(ends.every((e, i) => i === 0 || e > ends[i - 1]!)).toBe(true);
  });

  it('a storage whose element count disagrees with its persistent id', async () => {
    const msg = await refusal((b) => { b[storages]! += 1; return b; }, 'count.bin');
    expect(msg).toMatch(/storage ".*" at byte \d+ holds \d+ elements but its persistent id declares \d+/);
  });

  it('storages cut short', async () => {
    expect(await refusal((b) => b.subarray(0, b.length - 3), 'short.bin')).toMatch(/needs bytes \d+\.\.\d+ but the file has \d+/);
    expect(await refusal((b) => b.subarray(0, storages + 4), 'shorter.bin')).toMatch(/unexpected end of file|past the end of the file/);
  });

  it('pickles cut short', async () => {
    expect(await refusal((b) => b.subarray(0, ends[3]! - 5), 'pickles.bin')).toMatch(/legacy PyTorch file ends inside its pickles/);
  });

  it('another format version, a big-endian machine, another magic number', async () => {
    // PROTOCOL_VERSION 1001 is BININT2 e9 03
    expect(await refusal((b) => { b[at(b, ends[0]!, ends[1]!, [0x4d, 0xe9, 0x03]) + 1] = 0xea; return b; }, 'version.bin')).toMatch(/format version number 1002; only 1001 is known/);
    // sys_info's little_endian: the first True (NEWTRUE) after the key becomes False (NEWFALSE)
    const key = at(original, ends[1]!, ends[2]!, [...Buffer.from('little_endian')]);
    expect(await refusal((b) => { b[at(b, key, ends[2]!, [0x88])] = 0x89; return b; }, 'endian.bin')).toMatch(/little_endian is boolean false/);
    expect(await refusal((b) => { b[4] ^= 1; return b; }, 'magic.bin')).toMatch(/not torch's magic number/);
  });

  it('a storage key list naming a storage no tensor uses', async () => {
    // the keys are decimal strings (storage addresses); change one digit of the last key in the list
    const edit = (b: Uint8Array): Uint8Array => {
      let i = storages - 1;
      while (!(b[i]! >= 0x30 && b[i]! <= 0x39)) i--;
      b[i] = b[i] === 0x39 ? 0x30 : b[i]! + 1;
      return b;
    };
    expect(await refusal(edit, 'keys.bin')).toMatch(/storage key "\d+" is listed but no persistent id names it/);
  });
});
