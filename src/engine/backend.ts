/** Choice and start-up of the tfjs backend every model op runs on. */
import * as tf from '@tensorflow/tfjs-core';
import { InputError } from '../io/errors.js';
import './gradients.js';

export const BACKEND_NAMES = ['wasm', 'cpu', 'tensorflow'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Optional packages that register the `tensorflow` backend, in order of preference. */
const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/**
 * Register and select a backend: `wasm` (default, XNNPACK), `cpu` (pure JavaScript) or `tensorflow`
 * (libtensorflow through the optional @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node package).
 * Returns the name of the backend in use.
 */
export async function initBackend(name: BackendName = 'wasm'): Promise<string> {
  // PROD only mutes tfjs's console messages, among them the cpu backend's "install tfjs-node" banner.
  tf.env().set('PROD', true);
  switch (name) {
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      break;
    case 'cpu':
      await import('@tensorflow/tfjs-backend-cpu');
      break;
    case 'tensorflow':
      await importTfjsNode();
      break;
    default:
      throw new InputError(`unknown backend "${String(name)}" (choose one of: ${BACKEND_NAMES.join(', ')})`);
  }
  if (tf.findBackendFactory(name) === null) {
    throw new InputError(`the ${name} backend did not register with this copy of @tensorflow/tfjs-core; `
      + 'its package probably depends on a different tfjs-core version (run `npm ls @tensorflow/tfjs-core`)');
  }
  if (!(await tf.setBackend(name))) throw new InputError(`the ${name} backend failed to initialise`);
  await tf.ready();
  return tf.getBackend();
}

async function importTfjsNode(): Promise<void> {
  const failures: string[] = [];
  for (const pkg of TFJS_NODE_PACKAGES) {
    try {
      const specifier: string = pkg; // not a dependency: keep the compiler from resolving it
      await import(specifier);
      return;
    } catch (err) {
      failures.push(`${pkg}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new InputError([
    'the tensorflow backend needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, and neither could be loaded:',
    ...failures.map((f) => `  ${f}`),
    'Install one next to ditty: `npm install @tensorflow/tfjs-node` (CPU) or `npm install @tensorflow/tfjs-node-gpu`',
    '(NVIDIA GPUs; needs CUDA 11.2 and cuDNN 8.1 on the library path). Both download libtensorflow when installed.',
    'Or use --backend wasm (the default) or cpu.',
  ].join('\n'));
}
