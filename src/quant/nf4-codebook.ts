/**
 * Code tables of bitsandbytes' 4-bit NF4 and 8-bit signed dynamic quantizers, bit-exact in float32.
 *
 * Codes are chosen with the threshold rule: code = number of float32 midpoints strictly below the
 * scaled value, so an exact tie goes to the LOWER index (not argmin |x - code|; see REFERENCE.md).
 */

const fr = Math.fround;

/** The 16 NF4 code values (float32), index 0..15. Index 7 is 0.0. */
export const NF4_CODE: Float32Array = Float32Array.of(
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
);

/** The NF4 index that dequantizes to exactly 0 (also the padding nibble). */
export const NF4_ZERO_CODE = 7;

/** float32 midpoints of adjacent entries of a sorted code table (length - 1 thresholds). */
export function midpoints(code: Float32Array): Float32Array {
  const out = new Float32Array(code.length - 1);
  for (let i = 0; i < out.length; i++) out[i] = fr(fr(code[i]! + code[i + 1]!) / 2);
  return out;
}

/** The 15 NF4 decision thresholds. */
export const NF4_THRESHOLDS: Float32Array = midpoints(NF4_CODE);

/** torch CPU `linspace(start, end, steps)` in float32, evaluated without FMA. */
function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const a = fr(start);
  const b = fr(end);
  const step = fr(fr(b - a) / (steps - 1));
  const half = steps >> 1;
  for (let i = 0; i < steps; i++) {
    out[i] = i < half ? fr(a + fr(step * i)) : fr(b - fr(step * (steps - 1 - i)));
  }
  return out;
}

/** Decimal powers 10^-6 .. 10^0 as correctly rounded literals (Math.pow may be off by an ulp). */
const POW10 = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1] as const;

/**
 * bitsandbytes `create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)`: 256 sorted
 * float32 values from -0.99296875 to 1.0, with 0 at index 127.
 */
export function createDynamicMap(): Float32Array {
  const values: number[] = [];
  for (let k = 0; k < POW10.length; k++) {
    const bounds = linspaceF32(0.1, 1, 2 ** k + 1);
    const scale = fr(POW10[k]);
    for (let i = 0; i + 1 < bounds.length; i++) {
      const mean = fr(fr(bounds[i]! + bounds[i + 1]!) / 2);
      const v = fr(scale * mean);
      values.push(v, -v);
    }
  }
  values.push(0, 1);
  if (values.length !== 256) throw new Error(`dynamic map has ${values.length} entries, expected 256`);
  return Float32Array.from(values).sort();
}

/** The signed dynamic map used for the nested (8-bit) quantization of absmax. */
export const DYNAMIC_MAP: Float32Array = createDynamicMap();

/** Its 255 decision thresholds. */
export const DYNAMIC_THRESHOLDS: Float32Array = midpoints(DYNAMIC_MAP);

/**
 * NF4 code of a scaled value: the number of NF4 thresholds strictly below `s` (NaN -> 0).
 * A 4-step binary search over the 15 thresholds.
 */
export function nf4Index(s: number): number {
  const t = NF4_THRESHOLDS;
  let i = s > t[7]! ? 8 : 0;
  if (s > t[i + 3]!) i += 4;
  if (s > t[i + 1]!) i += 2;
  if (s > t[i]!) i += 1;
  return i;
}

/**
 * Index into a 256-entry map: the number of its 255 `thresholds` strictly below `s` (NaN -> 0).
 * An 8-step binary search.
 */
export function index256(s: number, thresholds: Float32Array): number {
  let i = 0;
  for (let step = 128; step >= 1; step >>= 1) {
    if (s > thresholds[i + step - 1]!) i += step;
  }
  return i;
}
