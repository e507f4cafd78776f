/** The backend names users write (config `backend`, `--backend`) and which engine each one means. */
import { InputError } from '../io/errors.js';
import type { BackendName } from './backend.js';
import { cudaStatus, loadAddon } from './native/addon.js';

export const BACKENDS = ['auto', 'cuda', 'cpu', 'wasm', 'js', 'tensorflow'] as const;
export type Backend = (typeof BACKENDS)[number];

export type ResolvedBackend =
  | { readonly engine: 'native'; readonly device: 'cpu' | 'cuda' }
  | { readonly engine: 'tfjs'; readonly backend: BackendName };

const TFJS: Readonly<Record<'wasm' | 'js' | 'tensorflow', BackendName>> = { wasm: 'wasm', js: 'cpu', tensorflow: 'tensorflow' };

/**
 * The engine a backend name selects. `auto` takes the native engine on the CUDA device when it is
 * usable (a GPU, not the CPU emulation of one in a test build), else on the CPU when the addon
 * loads, else wasm, and says why in `note`; `cpu` and `cuda` refuse with one line naming what is missing.
 */
export function resolveBackend(requested: Backend): { readonly resolved: ResolvedBackend; readonly note?: string } {
  switch (requested) {
    case 'wasm':
    case 'js':
    case 'tensorflow':
      return { resolved: { engine: 'tfjs', backend: TFJS[requested] } };
    case 'cpu': {
      const load = loadAddon();
      if (!load.addon) {
        throw new InputError(`backend cpu: ${load.reason}. Use backend: wasm or js for the tfjs engine `
          + '(js is the pure-JavaScript backend that was called cpu before ditty 0.2)');
      }
      return { resolved: { engine: 'native', device: 'cpu' } };
    }
    case 'cuda': {
      const cuda = cudaStatus();
      if (!cuda.usable) throw new InputError(`backend cuda: ${cuda.reason}; use backend: cpu (the native engine on the CPU) or auto`);
      return { resolved: { engine: 'native', device: 'cuda' } };
    }
    case 'auto': {
      const load = loadAddon();
      if (!load.addon) return { resolved: { engine: 'tfjs', backend: 'wasm' }, note: `${load.reason}; running on the tfjs engine (wasm)` };
      const cuda = cudaStatus();
      return { resolved: { engine: 'native', device: cuda.usable && !cuda.info.emulated ? 'cuda' : 'cpu' } };
    }
  }
}
