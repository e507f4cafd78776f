/**
 * What `ditty env` reports: versions, which engines can run here and why not, the CPU's features and
 * threads, and the GPU and driver if there is one. Plain data, so tests and `--json` see the same.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { createRequire } from 'node:module';
import { resolveBackend } from '../engine/choice.js';
import { cudaStatus, loadAddon, type CudaStatus } from '../engine/native/addon.js';

export interface EngineStatus {
  readonly name: string;
  readonly available: boolean;
  /** what it is when available, why not otherwise */
  readonly detail: string;
}

export interface EnvReport {
  readonly ditty: string;
  readonly node: string;
  readonly platform: string;
  readonly cpu: { readonly model: string; readonly cores: number; readonly features: readonly string[]; readonly simd: string };
  readonly threads: { readonly native: number | undefined; readonly override: string | undefined };
  readonly engines: readonly EngineStatus[];
  readonly gpu: { readonly driver: string | undefined; readonly devices: readonly string[] };
  /** the engine `backend: auto` picks here */
  readonly auto: string;
}

function packageVersion(name: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return (require(`${name}/package.json`) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** The NVIDIA driver version and GPU names the kernel driver publishes (no library is loaded). */
function nvidiaInfo(): { driver: string | undefined; devices: string[] } {
  let driver: string | undefined;
  try {
    const text = fs.readFileSync('/proc/driver/nvidia/version', 'utf8');
    driver = /Kernel Module\s+([\d.]+)/.exec(text)?.[1] ?? text.split('\n')[0];
  } catch {
    driver = undefined;
  }
  const devices: string[] = [];
  try {
    for (const d of fs.readdirSync('/proc/driver/nvidia/gpus')) {
      const info = fs.readFileSync(`/proc/driver/nvidia/gpus/${d}/information`, 'utf8');
      devices.push(/Model:\s+(.+)/.exec(info)?.[1]?.trim() ?? d);
    }
  } catch {
    // no GPU published
  }
  return { driver, devices };
}

/** "13.0" from CUDA's 13000 */
function cudaVersion(v: number | undefined): string {
  return v ? `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}` : 'none';
}

function cudaDetail(cuda: CudaStatus): string {
  if (!cuda.usable) return cuda.reason;
  const i = cuda.info;
  const gib = ((i.totalMemory ?? 0) / 2 ** 30).toFixed(1);
  return `${i.name ?? 'GPU'}${i.emulated ? ' (the CPU emulation layer)' : ''}, compute ${i.capability ?? '?'}, ${gib} GiB, `
    + `driver ${cudaVersion(i.driverVersion)}, runtime ${cudaVersion(i.runtimeVersion)}, cuBLASLt ${i.cublasLt ?? '?'}`;
}

/** What `backend: auto` picks here, as the engines are named above. */
function autoLabel(): string {
  const { resolved } = resolveBackend('auto');
  return resolved.engine === 'native' ? `${resolved.device} (native)` : `${resolved.backend} (tfjs)`;
}

export function envReport(dittyVersion: string): EnvReport {
  const load = loadAddon();
  const info = load.addon?.buildInfo();
  const gpu = nvidiaInfo();
  const tfjs = packageVersion('@tensorflow/tfjs-core');
  const tfjsNode = packageVersion('@tensorflow/tfjs-node-gpu') ?? packageVersion('@tensorflow/tfjs-node');
  const cuda = cudaStatus();
  const engines: EngineStatus[] = [
    { name: 'cuda (native)', available: cuda.usable, detail: cudaDetail(cuda) },
    load.addon
      ? { name: 'cpu (native)', available: true, detail: `${info!.simd} kernels, ${info!.threads} threads, GEMM ${info!.gemm}, built with g++ ${info!.compiler}` }
      : { name: 'cpu (native)', available: false, detail: load.reason },
    { name: 'wasm (tfjs)', available: packageVersion('@tensorflow/tfjs-backend-wasm') !== undefined, detail: `tfjs-core ${tfjs ?? '?'}, single-threaded WebAssembly (XNNPACK)` },
    { name: 'js (tfjs)', available: packageVersion('@tensorflow/tfjs-backend-cpu') !== undefined, detail: 'tfjs pure JavaScript' },
    tfjsNode
      ? { name: 'tensorflow (tfjs)', available: true, detail: `tfjs-node ${tfjsNode}` }
      : { name: 'tensorflow (tfjs)', available: false, detail: 'install @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu to use it' },
  ];
  const cpus = os.cpus();
  return {
    ditty: dittyVersion, node: process.version, platform: `${process.platform} ${process.arch} (${os.release()})`,
    cpu: { model: info?.cpu ?? cpus[0]?.model ?? 'unknown', cores: os.availableParallelism(), features: info?.features ?? [], simd: info?.simd ?? 'unknown (no native engine)' },
    threads: { native: info?.threads, override: process.env.DITTY_THREADS },
    engines, gpu, auto: autoLabel(),
  };
}

export function formatEnv(r: EnvReport): string {
  const lines = [
    `ditty ${r.ditty}, node ${r.node}, ${r.platform}`,
    `cpu: ${r.cpu.model}, ${r.cpu.cores} cores available; SIMD ${r.cpu.simd}${r.cpu.features.length ? ` (${r.cpu.features.join(' ')})` : ''}`,
    `threads: ${r.threads.native ?? '-'} for the native engine${r.threads.override !== undefined ? ` (DITTY_THREADS=${r.threads.override})` : ' (all cores; DITTY_THREADS overrides)'}`,
    `gpu: ${r.gpu.devices.length ? r.gpu.devices.join(', ') : 'none found'}${r.gpu.driver ? `, NVIDIA driver ${r.gpu.driver}` : ''}`,
    'engines:',
    ...r.engines.map((e) => `  ${e.available ? 'yes' : 'no '}  ${e.name.padEnd(18)} ${e.detail}`),
    `backend auto uses: ${r.auto}`,
  ];
  return lines.join('\n');
}
