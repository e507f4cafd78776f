// Types of scripts/native-toolchain.mjs for the TypeScript tests.
export declare const root: string;
export declare const DEFAULT_CUDA_ARCHS: string[];
export declare function findNvcc(): { nvcc: string; home: string } | undefined;
export declare function cudaArchs(): string[];
export declare function cudaSources(): string[];
export declare function findCudaInclude(): string | undefined;
export declare function withBuildLock<T>(dir: string, fn: () => Promise<T>): Promise<T>;
