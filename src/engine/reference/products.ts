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
