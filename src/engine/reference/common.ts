/**
 * Plain float64 references for the native shared kernels where the tfjs op is not exact enough to
 * hold them to: tfjs's layer norm sums its moments in float32 (an error of ~1e-4 relative at
 * C = 768, more when |mean| >> std), the native kernel in double.
 */

/** torch.nn.LayerNorm over rows of x [N, C] (biased variance, eps inside the sqrt), in float64. */
export function layerNormReference(x: Float32Array, w: Float32Array, b: Float32Array, N: number, C: number, eps: number): Float64Array {
  const out = new Float64Array(N * C);
  for (let r = 0; r < N; r++) {
    const { mean, rstd } = moments(x, r, C, eps);
    for (let c = 0; c < C; c++) out[r * C + c] = (x[r * C + c]! - mean) * rstd * w[c]! + b[c]!;
  }
  return out;
}

/** dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy w (weight and bias frozen), in float64. */
export function layerNormBackwardReference(dy: Float32Array, x: Float32Array, w: Float32Array, N: number, C: number, eps: number): Float64Array {
  const dx = new Float64Array(N * C);
  for (let r = 0; r < N; r++) {
    const { mean, rstd } = moments(x, r, C, eps);
    let mg = 0, mgx = 0;
    for (let c = 0; c < C; c++) {
      const g = dy[r * C + c]! * w[c]!;
      mg += g;
      mgx += g * (x[r * C + c]! - mean) * rstd;
    }
    mg /= C;
    mgx /= C;
    for (let c = 0; c < C; c++) {
      const xhat = (x[r * C + c]! - mean) * rstd;
      dx[r * C + c] = rstd * (dy[r * C + c]! * w[c]! - mg - xhat * mgx);
    }
  }
  return dx;
}

function moments(x: Float32Array, r: number, C: number, eps: number): { mean: number; rstd: number } {
  let s = 0;
  for (let c = 0; c < C; c++) s += x[r * C + c]!;
  const mean = s / C;
  let ss = 0;
  for (let c = 0; c < C; c++) ss += (x[r * C + c]! - mean) ** 2;
  return { mean, rstd: 1 / Math.sqrt(ss / C + eps) };
}
