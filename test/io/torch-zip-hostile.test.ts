import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeightFileError } from '../../src/io/errors.js';
import { TorchCheckpointFile } from '../../src/io/torch-checkpoint.js';
import { torchSaveStateDict } from '../helpers/torch-save.js';
import { writeZip, type ZipRecord } from '../../scripts/fuzz/zip.js';
import * as yauzl from 'yauzl';

let dir: string;
let base: ZipRecord[];

async function records(file: string): Promise<ZipRecord[]> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false });
  const out: ZipRecord[] = [];
  for await (const e of zip.eachEntry()) {
    const chunks: Buffer[] = [];
    for await (const c of await zip.openReadStreamPromise(e)) chunks.push(c as Buffer);
    out.push({ name: e.fileName, data: new Uint8Array(Buffer.concat(chunks)) });
  }
  zip.close();
  return out;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-zipbad-'));
  const file = path.join(dir, 'base.bin');
  await torchSaveStateDict(file, [
    { name: 'w', dtype: 'F32', shape: [2, 2], data: new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer) },
  ], { archiveName: 'archive' });
  base = await records(file);
});
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

function write(name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

async function refused(file: string): Promise<string> {
  const err = await TorchCheckpointFile.open(file).then((f) => { f.close(); return undefined; }, (e: unknown) => e);
  expect(err).toBeInstanceOf(WeightFileError);
  const msg = (err as Error).message;
  expect(msg.startsWith(`${file}: `)).toBe(true);
  expect(msg).not.toContain('\n');
  return msg;
}

describe('TorchCheckpointFile refuses broken zip containers with one line', () => {
  it('reads the well-formed base', async () => {
    const f = await TorchCheckpointFile.open(write('ok.bin', writeZip(base)));
    expect([...f.readFloat32('w')]).toEqual([1, 2, 3, 4]);
    f.close();
  });

  it('refuses duplicate record names, whichever record comes first', async () => {
    const storage = base.find((r) => r.name === 'archive/data/0')!;
    const other = { name: storage.name, data: new Uint8Array(new Float32Array([9, 9, 9, 9]).buffer) };
    expect(await refused(write('dup1.bin', writeZip([...base, other])))).toMatch(/two records named "archive\/data\/0"; refusing an ambiguous archive/);
    expect(await refused(write('dup2.bin', writeZip([other, ...base])))).toMatch(/two records named "archive\/data\/0"/);
    const pkl = base.find((r) => r.name.endsWith('data.pkl'))!;
    expect(await refused(write('dup3.bin', writeZip([...base, pkl])))).toMatch(/two records named "archive\/data\.pkl"/);
  });

  it.each([
    ['../evil', /bad zip archive: invalid relative path: \.\.\/evil/],
    ['/etc/passwd', /bad zip archive: absolute path: \/etc\/passwd/],
    ['C:/x', /bad zip archive: absolute path: C:\/x/],
    ['archive\\data.pkl', /bad zip archive: invalid characters in fileName/],
    ['archive/../archive/data/0', /bad zip archive: invalid relative path/],
  ])('refuses a record named %s', async (name, want) => {
    expect(await refused(write(`name-${base.length}.bin`, writeZip([...base, { name, data: Uint8Array.of(1) }])))).toMatch(want);
  });

  it('refuses a directory that claims more records than it has', async () => {
    const bytes = Buffer.from(writeZip(base));
    bytes.writeUInt16LE(base.length + 3, bytes.length - 12);
    bytes.writeUInt16LE(base.length + 3, bytes.length - 14);
    expect(await refused(write('count.bin', bytes))).toMatch(/bad zip archive: /);
  });

  it('refuses a corrupt central directory signature and a bad local header', async () => {
    const bytes = Buffer.from(writeZip(base));
    const cd = bytes.readUInt32LE(bytes.length - 6);
    const a = Buffer.from(bytes);
    a[cd] ^= 0xff;
    expect(await refused(write('cdsig.bin', a))).toMatch(/bad zip archive: invalid central directory file header signature/);
    const b = Buffer.from(bytes);
    const storageAt = b.indexOf('archive/data/0');
    b.writeUInt32LE(0xdeadbeef, b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x03, 0x04]), storageAt));
    expect(await refused(write('local.bin', b))).toMatch(/tensor "w": bad local header for archive\/data\/0/);
  });

  it('refuses stored records whose sizes disagree or run past the end of the file', async () => {
    const storage = base.findIndex((r) => r.name === 'archive/data/0');
    const lying = base.map((r, i) => (i === storage ? { ...r, declaredSize: 64 } : r));
    expect(await refused(write('sizes.bin', writeZip(lying)))).toMatch(/size mismatch for stored file: 16 != 64|zip sizes disagree/);
    const whole = Buffer.from(writeZip(base));
    const cut = Buffer.concat([whole.subarray(0, 200), whole.subarray(whole.length - 22)]);
    expect(await refused(write('cut.bin', cut))).toMatch(/bad zip archive|truncated|past the end/);
    // A directory whose (equal) sizes for a stored record reach past the end of the file.
    const long = Buffer.from(whole);
    const at = long.indexOf('archive/data/0', long.readUInt32LE(long.length - 6)) - 46;
    long.writeUInt32LE(1_000_000, at + 20);
    long.writeUInt32LE(1_000_000, at + 24);
    expect(await refused(write('long.bin', long))).toMatch(/bad local header for archive\/data\/0: file data overflows file bounds/);
  });

  it('survives every single-byte corruption of the central directory without an uncaught error', async () => {
    const bytes = Buffer.from(writeZip(base));
    const cd = bytes.readUInt32LE(bytes.length - 6);
    for (let at = cd; at < bytes.length; at += 3) {
      const b = Buffer.from(bytes);
      b[at] ^= 0x5a;
      const file = write('cd-each.bin', b);
      await TorchCheckpointFile.open(file).then((f) => { f.close(); }, (e: unknown) => {
        expect(e, `byte ${at}`).toBeInstanceOf(WeightFileError);
      });
    }
  });
});
