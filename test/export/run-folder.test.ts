import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/io/errors.js';
import { isSameBaseModel } from '../../src/runtime/adapter.js';
import { latestCheckpoint, resolveAdapterPath } from '../../src/runtime/run-folder.js';

let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ditty-run-folder-')); });
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function folder(...parts: string[]): string {
  const dir = path.join(tmp, ...parts);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

function checkpoint(run: string, name: string, complete: boolean): string {
  const dir = folder(run, name);
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), '{}');
  if (complete) fs.writeFileSync(path.join(dir, 'trainer_state.json'), '{}');
  return dir;
}

describe('run folders', () => {
  it('the latest complete checkpoint is the highest step with trainer_state.json', () => {
    checkpoint('run', 'checkpoint-9', true);
    const ten = checkpoint('run', 'checkpoint-10', true);
    checkpoint('run', 'checkpoint-12', false);
    checkpoint('run', '.checkpoint-14.tmp-1-abcd', true);
    fs.writeFileSync(path.join(tmp, 'run', 'checkpoint-20'), 'a file');
    expect(latestCheckpoint(path.join(tmp, 'run'))).toBe(ten);
    expect(latestCheckpoint(folder('empty'))).toBeUndefined();
    expect(latestCheckpoint(path.join(tmp, 'missing'))).toBeUndefined();
  });

  it('resolveAdapterPath: a PEFT or checkpoint folder is itself, a run folder its latest checkpoint', () => {
    const ckpt = checkpoint('run2', 'checkpoint-3', true);
    expect(resolveAdapterPath(ckpt)).toBe(ckpt);
    expect(resolveAdapterPath(path.join(tmp, 'run2'))).toBe(ckpt);
    const peft = folder('peft');
    fs.writeFileSync(path.join(peft, 'adapter_config.json'), '{}');
    expect(resolveAdapterPath(peft)).toBe(peft);
  });

  it('resolveAdapterPath explains what it expected', () => {
    const other = folder('other');
    fs.writeFileSync(path.join(other, 'notes.txt'), 'x');
    expect(() => resolveAdapterPath(other)).toThrow(InputError);
    expect(() => resolveAdapterPath(other)).toThrow(/neither a PEFT adapter folder .* nor a run folder/);
    checkpoint('run3', 'checkpoint-5', false);
    expect(() => resolveAdapterPath(path.join(tmp, 'run3'))).toThrow(/no complete checkpoint .*checkpoint-5/);
    expect(() => resolveAdapterPath(path.join(tmp, 'nope'))).toThrow(/does not exist/);
    expect(() => resolveAdapterPath(path.join(other, 'notes.txt'))).toThrow(/is a file/);
  });

  it('isSameBaseModel compares names, local folders and HF cache snapshots', () => {
    const model = folder('model');
    const snapshot = folder('hub', 'models--org--tiny', 'snapshots', 'abc');
    expect(isSameBaseModel('org/tiny', { name: 'org/tiny', folder: snapshot })).toBe(true);
    expect(isSameBaseModel('org/tiny', { name: snapshot, folder: snapshot })).toBe(true);
    expect(isSameBaseModel('org/other', { name: snapshot, folder: snapshot })).toBe(false);
    expect(isSameBaseModel(path.relative(process.cwd(), model), { name: model, folder: model })).toBe(true);
    expect(isSameBaseModel(model, { name: 'org/tiny', folder: snapshot })).toBe(false);
  });
});
