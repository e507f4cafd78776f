import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { writeBytesAtomic } from '../io/atomic.js';
import { InputError } from '../io/errors.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Flags for a headless chromium that touches nothing outside its own temporary profile. */
export function headlessFlags(userDataDir: string): string[] {
  return ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--hide-scrollbars', `--user-data-dir=${userDataDir}`];
}

/**
 * Renders an SVG document to a PNG with headless chromium (drawing the charts' text ourselves would
 * mean shipping a font rasterizer). Without chromium this is one clear error.
 */
export async function svgToPng(svg: string, width: number, height: number, out: string, chromium = CHROMIUM, scale = 2): Promise<void> {
  if (!fs.existsSync(chromium)) {
    throw new InputError(`--png needs a headless chromium at ${chromium} (Debian: apt-get install chromium); report.html was written without the image`);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-png-'));
  try {
    const page = path.join(tmp, 'chart.svg');
    const shot = path.join(tmp, 'chart.png');
    fs.writeFileSync(page, svg);
    await promisify(execFile)(chromium, [...headlessFlags(path.join(tmp, 'profile')), `--force-device-scale-factor=${scale}`,
      `--window-size=${width},${height}`, `--screenshot=${shot}`, `file://${page}`], { timeout: 120_000 });
    if (!fs.existsSync(shot)) throw new InputError(`${chromium} wrote no screenshot for ${out}`);
    await writeBytesAtomic(out, fs.readFileSync(shot));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
