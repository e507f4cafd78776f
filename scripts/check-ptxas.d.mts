// Types of scripts/check-ptxas.mjs for its test.
export interface PtxasRow { kernel: string; registers: number; stack: number; spillStores: number; spillLoads: number }
export interface PtxasFile { file: string; ok: boolean; rows: PtxasRow[]; error?: string }
export interface PtxasResult { ok: boolean; missing?: boolean; reason?: string; files: PtxasFile[] }
export declare function kernelFiles(): string[];
export declare function parsePtxas(text: string): PtxasRow[];
export declare function checkPtxas(files?: string[], arch?: string): Promise<PtxasResult>;
export declare function formatTable(result: PtxasResult, arch?: string): string;
