/** Runs one fuzz case through ditty's reader and classifies what happened. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseTrainConfig } from '../../src/config/load.js';
import { DTYPE_SIZES, numel } from '../../src/io/dtypes.js';
import { InputError } from '../../src/io/errors.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { TorchCheckpointFile } from '../../src/io/torch-checkpoint.js';
import type { FuzzCase } from './cases.js';

/** ok: read fine; clean: refused with one InputError line; stack: any other throw; wrong: read, but wrongly. */
export type InProcessOutcome = 'ok' | 'clean' | 'stack' | 'wrong';
/** What the long run adds: the process died (crash) or took too long (hang). */
export type Outcome = InProcessOutcome | 'crash' | 'hang';

export interface CaseResult {
  outcome: InProcessOutcome;
  detail: string;
}

const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort().join(',');

function checkSafetensors(file: string, bytes: Uint8Array): string | undefined {
  const st = SafetensorsFile.open(file);
  try {
    const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
    for (const name of st.names()) {
      const got = st.readBytes(name);
      const [b, e] = header[name]!.data_offsets;
      const want = bytes.subarray(8 + n + b, 8 + n + e);
      if (!Buffer.from(got).equals(Buffer.from(want))) return `tensor ${name}: bytes differ from data_offsets [${b}, ${e}]`;
      const info = st.info(name);
      if (got.byteLength !== numel(info.shape) * DTYPE_SIZES[info.dtype]) return `tensor ${name}: ${got.byteLength} bytes for shape ${JSON.stringify(info.shape)}`;
    }
  } finally {
    st.close();
  }
  return undefined;
}

async function checkTorch(file: string): Promise<string | undefined> {
  const f = await TorchCheckpointFile.open(file);
  try {
    for (const name of f.names()) {
      const info = f.info(name);
      const got = f.readBytes(name);
      if (got.byteLength !== numel(info.shape) * DTYPE_SIZES[info.dtype]) return `tensor ${name}: ${got.byteLength} bytes for shape ${JSON.stringify(info.shape)}`;
    }
  } finally {
    f.close();
  }
  return undefined;
}

function checkYaml(file: string, c: FuzzCase, cwd: string): string | undefined {
  try {
    parseTrainConfig(Buffer.from(c.bytes).toString('utf8'), file, c.overrides ?? [], { cwd });
  } finally {
    const now = Object.getOwnPropertyNames(Object.prototype).sort().join(',');
    const polluted = ({} as Record<string, unknown>)['polluted'];
    if (now !== PROTO_KEYS || polluted !== undefined) {
      for (const k of Object.getOwnPropertyNames(Object.prototype)) if (!PROTO_KEYS.split(',').includes(k)) delete (Object.prototype as Record<string, unknown>)[k];
      // eslint-disable-next-line no-unsafe-finally
      return 'Object.prototype was polluted';
    }
  }
  return undefined;
}

/** Writes the case to `dir` and runs it; never throws. */
export async function runCase(c: FuzzCase, dir: string): Promise<CaseResult> {
  const ext = c.kind === 'safetensors' ? 'safetensors' : c.kind === 'yaml' ? 'yaml' : 'bin';
  const file = path.join(dir, `${c.kind}-${c.index}.${ext}`);
  fs.writeFileSync(file, c.bytes);
  try {
    const wrong = c.kind === 'safetensors' ? checkSafetensors(file, c.bytes)
      : c.kind === 'yaml' ? checkYaml(file, c, dir)
        : await checkTorch(file);
    if (wrong !== undefined) return { outcome: 'wrong', detail: wrong };
    if (c.mustRefuse) return { outcome: 'wrong', detail: 'accepted a file the reference reader refuses' };
    return { outcome: 'ok', detail: '' };
  } catch (err) {
    if (err instanceof InputError && !err.message.includes('\n    at ')) return { outcome: 'clean', detail: err.message.split('\n')[0]!.slice(0, 300) };
    const e = err as Error;
    return { outcome: 'stack', detail: `${e?.name ?? typeof err}: ${String(e?.message ?? err).slice(0, 300)}` };
  } finally {
    fs.rmSync(file, { force: true });
  }
}
