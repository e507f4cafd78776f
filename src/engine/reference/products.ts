/**
 * Plain references for the native products (native/include/ditty/gemm.h) where the project has no
 * tfjs op of the same shape: float64 loops, short and obviously correct, for tests only.
 */

/** C = alpha op(A) op(B) + beta C, row-major with row strides; sums in float64, stores float32. */
export function gemmReference(
  transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number,
): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let acc = 0;
      for (let k = 0; k < K; k++) {
        const a = transA ? A[k * lda + i]! : A[i * lda + k]!;
        const b = transB ? B[j * ldb + k]! : B[k * ldb + j]!;
        acc += a * b;
      }
      const old = beta === 0 ? 0 : beta * C[i * ldc + j]!;
      C[i * ldc + j] = alpha * acc + old;
    }
  }
}

/**
 * sum_i w_i (logsumexp(z_i) - z_i[t_i]) with z = hidden head^T, and its gradient
 * grad_scale w_i (softmax(z_i) - onehot(t_i)) head, all in float64.
 */
export function headCrossEntropyReference(
  hidden: Float32Array, N: number, C: number, head: Float32Array, V: number, targets: Int32Array, weights: Float32Array,
  gradScale: number,
): { loss: number; dhidden: Float64Array } {
  const dhidden = new Float64Array(N * C);
  const z = new Float64Array(V);
  let loss = 0;
  for (let i = 0; i < N; i++) {
    const w = weights[i]!;
    if (w === 0) continue;
    let m = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += hidden[i * C + c]! * head[v * C + c]!;
      z[v] = s;
      m = Math.max(m, s);
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(z[v]! - m);
    const t = targets[i]!;
    loss += w * (m + Math.log(sum) - z[t]!);
    for (let v = 0; v < V; v++) {
      // p - onehot, with p_t - 1 = -(sum of the others) / sum to avoid cancelling
      const g = v === t ? -(sum - Math.exp(z[t]! - m)) / sum : Math.exp(z[v]! - m) / sum;
      for (let c = 0; c < C; c++) dhidden[i * C + c] += gradScale * w * g * head[v * C + c]!;
    }
  }
  return { loss, dhidden };
}
