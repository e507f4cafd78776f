// Types of scripts/check-ptxas.mjs for its test.
export interface PtxasRow { kernel: string; registers: number; stack: number; spillStores: number; spillLoads: number }
export interface PtxasFile { file: string; ok: boolean; from: 'build' | 'compiled'; rows: PtxasRow[]; error?: string }
export interface PtxasResult { ok: boolean; missing?: boolean; reason?: string; files: PtxasFile[] }
export declare function kernelFiles(): string[];
export declare function parsePtxas(text: string, arch?: string): PtxasRow[];
export declare function checkPtxas(files?: string[], arch?: string, options?: { reuse?: boolean }): Promise<PtxasResult>;
export declare function formatTable(result: PtxasResult, arch?: string): string;
