// Types of scripts/build-native-emu.mjs for the TypeScript tests that build and load the emulated addon.
export declare const EMU_ADDON: string;
export type EmuToolchain = { ok: true } | { ok: false; reason: string };
export declare function emuToolchain(): EmuToolchain;
export type EmuBuild = { ok: true; addon: string; cublaslt?: string } | { ok: false; reason: string };
export declare function buildNativeEmu(log?: (message: string) => void): Promise<EmuBuild>;
