/**
 * The RWKV-4 WKV by its definition in float64, for tests of src/engine/wkv.ts (the tfjs op and its
 * composed reference) and of the native kernels: direct sums with no running maximum, so only for
 * keys well below 700, where exp does not overflow.
 */

/**
 * y[b, t, c] = (sum_{i<t} e^{(t-1-i) w_c + k_i} v_i + e^{u_c + k_t} v_t) / (the same sums with v = 1)
 * for w, u [C] and k, v [B, T, C] row-major (w is the decay, -exp(time_decay)).
 */
export function wkvFloat64(
  B: number, T: number, C: number, w: ArrayLike<number>, u: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let ch = 0; ch < C; ch++) {
      const at = (t: number): number => (b * T + t) * C + ch;
      for (let t = 0; t < T; t++) {
        let num = Math.exp(u[ch]! + k[at(t)]!) * v[at(t)]!;
        let den = Math.exp(u[ch]! + k[at(t)]!);
        for (let i = 0; i < t; i++) {
          const e = Math.exp((t - 1 - i) * w[ch]! + k[at(i)]!);
          num += e * v[at(i)]!;
          den += e;
        }
        y[at(t)] = num / den;
      }
    }
  }
  return y;
}
