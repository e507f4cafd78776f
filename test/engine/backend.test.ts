import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, vi } from 'vitest';
import { initBackend } from '../../src/engine/backend.js';
import { InputError } from '../../src/io/errors.js';

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

describe('initBackend', () => {
  it('starts cpu without the "install tfjs-node" banner, then wasm', async () => {
    const warn = vi.spyOn(console, 'warn');
    expect(await initBackend('cpu')).toBe('cpu');
    tf.tidy(() => tf.add(tf.tensor([1, 2]), 1).dataSync());
    expect(warn.mock.calls.flat().join(' ')).not.toMatch(/tfjs-node/);
    warn.mockRestore();
    expect(await initBackend()).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('registers gradients (tfjs-core alone has none in Node)', async () => {
    await initBackend();
    expect(tf.getGradient('Sum')).toBeDefined();
    expect(tf.getGradient('BatchMatMul')).toBeDefined();
  });

  it.skipIf(installed('@tensorflow/tfjs-node-gpu') || installed('@tensorflow/tfjs-node'))(
    'explains how to install the tensorflow backend when it is missing', async () => {
      const err = await initBackend('tensorflow').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(/npm install @tensorflow\/tfjs-node/);
      expect((err as Error).message).toMatch(/CUDA 11\.2 and cuDNN 8\.1/);
    });
});
