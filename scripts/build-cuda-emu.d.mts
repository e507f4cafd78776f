// Types of scripts/build-cuda-emu.mjs for the TypeScript tests of the emulated CUDA kernels.
export type Variant = 'normal' | 'asan';
export declare const EMU_DIR: string;
export declare const EMU_CUBLASLT: string;
export declare function probe(): { ok: true; cxx: string; cudaInclude: string } | { ok: false; reason: string };
export interface Program { name: string; path: string }
export interface BuildResult {
  ok: boolean;
  skipped?: string;
  standin?: string;
  compiled?: number;
  seconds?: number;
  variants: Partial<Record<Variant, { dir: string; programs: Program[] }>>;
  errors: { file: string; message: string }[];
}
export declare function build(options?: { variants?: Variant[]; tests?: boolean; jobs?: number; log?: (line: string) => void }): Promise<BuildResult>;
export declare function testEnv(variant: Variant, standin: string | undefined, base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
