import { initBackend, type BackendName } from '../../src/engine/backend.js';

/** The backend tests run on unless they ask for one: DITTY_TEST_BACKEND or wasm. */
export const TEST_BACKEND = (process.env['DITTY_TEST_BACKEND'] ?? 'wasm') as BackendName;

let current: { name: BackendName; ready: Promise<string> } | undefined;

/** Select a tfjs backend for the tests that follow; calling it again with the same name does nothing. */
export function useBackend(name: BackendName = TEST_BACKEND): Promise<string> {
  if (current?.name !== name) current = { name, ready: initBackend(name) };
  return current.ready;
}
