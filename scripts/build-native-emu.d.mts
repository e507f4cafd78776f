// Types of scripts/build-native-emu.mjs for the TypeScript tests that build and load the emulated addon.
export declare const EMU_ADDON: string;
export declare const EMU_CUBLASLT: string;
export type EmuToolchain = { ok: true; cxx: string; cudaInclude: string; nodeInclude: string } | { ok: false; reason: string };
export declare function emuToolchain(): EmuToolchain;
export type EmuBuild = { ok: true; addon: string; cublaslt?: string } | { ok: false; reason: string };
export declare function buildNativeEmu(log?: (message: string) => void): Promise<EmuBuild>;
