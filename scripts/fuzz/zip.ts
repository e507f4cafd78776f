/** A minimal zip writer for fuzz cases: any names (duplicates, "../x"), STORED or deflated records. */
import * as zlib from 'node:zlib';

export interface ZipRecord {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
  /** What the directory claims the record inflates to (default: the truth). */
  declaredSize?: number;
}

export function writeZip(records: readonly ZipRecord[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let pos = 0;
  for (const r of records) {
    const name = Buffer.from(r.name, 'utf8');
    const body = r.deflate ? zlib.deflateRawSync(r.data) : r.data;
    const crc = zlib.crc32(r.data) >>> 0;
    const size = r.declaredSize ?? r.data.byteLength;
    // torch pads the local header's extra field so data starts on a 64-byte boundary
    const pad = (64 - ((pos + 30 + name.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x4246, 0);
    extra.writeUInt16LE(pad, 2);
    // The fields both headers share (version needed ... name length), at `at` in each.
    const shared = (b: Buffer, at: number) => {
      b.writeUInt16LE(20, at);
      b.writeUInt16LE(0x800, at + 2);
      b.writeUInt16LE(r.deflate ? 8 : 0, at + 4);
      b.writeUInt32LE(crc, at + 10);
      b.writeUInt32LE(body.byteLength, at + 14);
      b.writeUInt32LE(size, at + 18);
      b.writeUInt16LE(name.length, at + 22);
      return b;
    };
    const local = shared(Buffer.alloc(30), 4);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(extra.length, 28);
    const cen = shared(Buffer.alloc(46), 6);
    cen.writeUInt32LE(0x02014b50, 0);
    cen.writeUInt16LE(20, 4);
    cen.writeUInt32LE(pos, 42);
    central.push(cen, name);
    parts.push(local, name, extra, body);
    pos += local.length + name.length + extra.length + body.byteLength;
  }
  const cdStart = pos;
  const cdSize = central.reduce((n, b) => n + b.byteLength, 0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(records.length, 8);
  eocd.writeUInt16LE(records.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(cdStart, 16);
  return Buffer.concat([...parts, ...central, eocd]);
}
