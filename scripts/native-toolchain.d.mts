// Types of scripts/native-toolchain.mjs for the TypeScript tests.
export declare const root: string;
export declare const DEFAULT_CUDA_ARCHS: string[];
export declare function findNvcc(): { nvcc: string; home: string } | undefined;
export declare function cudaArchs(): string[];
export declare function cudaSources(): string[];
export declare function findCudaInclude(): string | undefined;
export declare function withBuildLock<T>(dir: string, fn: () => Promise<T>): Promise<T>;
export declare const CUDA_OBJ_DIR: string;
export declare function objectFor(objDir: string, src: string): string;
export declare function objectIsCurrent(obj: string, src: string): boolean;
