import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { nativeMissing } from '../helpers/native.js';
import { REPO_ROOT, sharedPath } from '../helpers/shared.js';

const NO_ADDON = { DITTY_NATIVE_ADDON: path.join(os.tmpdir(), 'ditty-no-such-addon.node') };

describe('ditty env', () => {
  it.skipIf(nativeMissing)('names the native engine, its SIMD level, threads and GEMM, and what auto picks', async () => {
    const r = await runCli(['env', '--json'], { DITTY_THREADS: '1' });
    expect(r.status).toBe(0);
    const env = JSON.parse(r.stdout) as { engines: { name: string; available: boolean; detail: string }[]; auto: string; threads: { native: number; override: string } };
    const cpu = env.engines.find((e) => e.name === 'cpu (native)')!;
    expect(cpu.available).toBe(true);
    expect(cpu.detail).toMatch(/^(avx512|avx2|portable) kernels, 1 threads, GEMM /);
    expect(env.threads).toEqual({ native: 1, override: '1' });
    expect(env.auto).toBe('cpu (native)');
    // no GPU here: the CUDA line says why in one line (the build's reason or the driver's)
    const cuda = env.engines.find((e) => e.name === 'cuda (native)')!;
    expect(cuda.available).toBe(false);
    expect(cuda.detail).toMatch(/^(no usable NVIDIA driver \(CUDA error 35: .*\)|no NVIDIA GPU found .*|the CUDA device was not built: .*)$/);
  });

  it('says why the native engine is missing and that auto falls back to wasm', async () => {
    const r = await runCli(['env'], NO_ADDON);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`no   cpu (native)       the native engine is not available: DITTY_NATIVE_ADDON=${NO_ADDON.DITTY_NATIVE_ADDON} does not exist`);
    expect(r.stdout).toContain('backend auto uses: wasm (tfjs)');
  });

  it('refuses a file that is not the addon (or a stale build) and says what it lacks', async () => {
    const notAnAddon = path.join(REPO_ROOT, 'package.json');
    const r = await runCli(['env'], { DITTY_NATIVE_ADDON: notAnAddon });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`no   cpu (native)       the native engine at ${notAnAddon} lacks alloc, view, free and 43 more (built from other sources? run \`npm run build:native\`)`);
    expect(r.stdout).toContain('backend auto uses: wasm (tfjs)');
    const broken = await runCli(['env'], { DITTY_NATIVE_ADDON: path.join(REPO_ROOT, 'README.md') });
    expect(broken.stdout).toMatch(/no {3}cpu \(native\) {7}the native engine failed to load from .*README\.md: /);
  });
});

const tiny = sharedPath('fixtures', 'tiny-rwkv');

describe.skipIf(!tiny.present)('a machine without the native engine', () => {
  it('refuses backend cpu in one line and runs backend auto on wasm', async () => {
    const cpu = await runCli(['generate', tiny.path, '--prompt', 'Hi', '--max-new-tokens', '2', '--backend', 'cpu'], NO_ADDON);
    expect(cpu.status).toBe(1);
    expect(cpu.stderr.trim().split('\n')).toHaveLength(1);
    expect(cpu.stderr).toMatch(/^ditty: error: backend cpu: the native engine is not available: .*Use backend: wasm or js/);
    const auto = await runCli(['generate', tiny.path, '--prompt', 'Hi', '--max-new-tokens', '2', '--temperature', '0'], NO_ADDON);
    expect(auto.status).toBe(0);
    expect(auto.stderr).toContain('running on the tfjs engine (wasm)');
    expect(auto.stderr).toMatch(/tokens\/s, tfjs wasm\)/);
  });
});
