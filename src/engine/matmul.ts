import * as tf from '@tensorflow/tfjs-core';
import { timed } from './timers.js';

/** Swap the last two axes. */
export function transposeLast2(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_d, i) => i);
  const r = x.rank;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return tf.transpose(x, perm);
}

/**
 * op(a) · op(b), batched over leading axes like tf.matMul.
 *
 * tfjs-backend-wasm (XNNPACK) is fast only when neither operand is transposed: with a transpose flag it
 * runs 10-20x slower. So on wasm the product is computed with plain operands, either by transposing the
 * flagged operands explicitly or as (op(b)^T · op(a)^T)^T, whichever moves fewer elements. A frozen
 * weight W [out, in] is then never copied: x · W^T becomes (W · x^T)^T.
 */
export function matMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  return timed('gemm', () => product(a, b, transposeA, transposeB));
}

function product(a: tf.Tensor, b: tf.Tensor, transposeA: boolean, transposeB: boolean): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB);
  if (!transposeA && !transposeB) return plainMatMul(a, b);
  return tf.tidy(() => {
    const m = a.shape[a.rank - (transposeA ? 1 : 2)]!;
    const n = b.shape[b.rank - (transposeB ? 2 : 1)]!;
    const batch = Math.max(a.size / (a.shape[a.rank - 1]! * a.shape[a.rank - 2]!), b.size / (b.shape[b.rank - 1]! * b.shape[b.rank - 2]!));
    const direct = (transposeA ? a.size : 0) + (transposeB ? b.size : 0);
    const swapped = (transposeA ? 0 : a.size) + (transposeB ? 0 : b.size) + batch * m * n;
    if (direct <= swapped) {
      return plainMatMul(transposeA ? transposeLast2(a) : a, transposeB ? transposeLast2(b) : b);
    }
    const bt = transposeB ? b : transposeLast2(b);
    const at = transposeA ? a : transposeLast2(a);
    return transposeLast2(plainMatMul(bt, at));
  });
}

/**
 * Untransposed product. wasm's batched kernel does not use XNNPACK (about 7x slower than 2-D products),
 * so batches of equal leading shape are done as one 2-D product per matrix.
 */
function plainMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank <= 2 && b.rank <= 2) return tf.matMul(a, b);
  const lead = a.shape.slice(0, -2);
  if (a.rank !== b.rank || !b.shape.slice(0, -2).every((d, i) => d === lead[i])) return tf.matMul(a, b);
  return tf.tidy(() => {
    const [m, k] = a.shape.slice(-2) as [number, number];
    const n = b.shape[b.rank - 1]!;
    const batch = a.size / (m * k);
    const a3 = tf.reshape(a, [batch, m, k]);
    const b3 = tf.reshape(b, [batch, k, n]);
    const parts: tf.Tensor[] = [];
    for (let i = 0; i < batch; i++) {
      parts.push(tf.matMul(tf.reshape(tf.slice(a3, [i, 0, 0], [1, m, k]), [m, k]), tf.reshape(tf.slice(b3, [i, 0, 0], [1, k, n]), [k, n])));
    }
    return tf.reshape(tf.stack(parts), [...lead, m, n]);
  });
}
