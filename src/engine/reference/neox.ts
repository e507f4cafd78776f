/**
 * Plain loops that the native neox kernels are tested against where the tfjs engine has no single
 * op for them: the qkv split + partial rotary of src/models/gpt-neox.ts `attention` (its tables and
 * float32 rounding), its backward, and the attention row log-sum-exp.
 */

/** cos and sin [T, R/2] of positions offset.. as GptNeoXModel.rotaryTables: double, then float32. */
export function rotaryTables(T: number, R: number, base: number, offset: number): { cos: Float32Array; sin: Float32Array } {
  const half = R / 2;
  const cos = new Float32Array(T * half), sin = new Float32Array(T * half);
  for (let t = 0; t < T; t++) {
    for (let m = 0; m < half; m++) {
      const angle = (offset + t) * base ** (-2 * m / R);
      cos[t * half + m] = Math.cos(angle);
      sin[t * half + m] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

export interface RotaryShape {
  readonly B: number;
  readonly T: number;
  readonly heads: number;
  readonly d: number;
  readonly R: number;
  readonly base: number;
  readonly offset: number;
}

const f = Math.fround;

/** qkv [B, T, heads * 3d] (per head q | k | v) -> q, k, v [B, heads, T, d], q and k rotated on their first R dims. */
export function qkvRotary(qkv: Float32Array, s: RotaryShape): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const { B, T, heads, d, R } = s;
  const half = R / 2;
  const { cos, sin } = rotaryTables(T, R, s.base, s.offset);
  const [q, k, v] = [0, 1, 2].map(() => new Float32Array(B * heads * T * d)) as [Float32Array, Float32Array, Float32Array];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < heads; h++) {
        const src = ((b * T + t) * heads + h) * 3 * d, dst = ((b * heads + h) * T + t) * d;
        [q, k, v].forEach((out, part) => {
          const x = (i: number): number => qkv[src + part * d + i]!;
          for (let i = 0; i < d; i++) out[dst + i] = x(i);
          if (part === 2) return;
          // x cos + rotate_half(x) sin, each tfjs op rounded to float32
          for (let m = 0; m < half; m++) {
            const c = cos[t * half + m]!, sn = sin[t * half + m]!;
            out[dst + m] = f(f(x(m) * c) + f(-x(m + half) * sn));
            out[dst + m + half] = f(f(x(m + half) * c) + f(x(m) * sn));
          }
        });
      }
    }
  }
  return { q, k, v };
}

/** dqkv [B, T, heads * 3d] from dq, dk, dv [B, heads, T, d]: the transposed rotation, then the transposed split. */
export function qkvRotaryBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, s: RotaryShape): Float32Array {
  const { B, T, heads, d, R } = s;
  const half = R / 2;
  const { cos, sin } = rotaryTables(T, R, s.base, s.offset);
  const dqkv = new Float32Array(B * T * heads * 3 * d);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < heads; h++) {
        const dst = ((b * T + t) * heads + h) * 3 * d, src = ((b * heads + h) * T + t) * d;
        [dq, dk, dv].forEach((g, part) => {
          const y = (i: number): number => g[src + i]!;
          for (let i = 0; i < d; i++) dqkv[dst + part * d + i] = y(i);
          if (part === 2) return;
          for (let m = 0; m < half; m++) {
            const c = cos[t * half + m]!, sn = sin[t * half + m]!;
            dqkv[dst + part * d + m] = y(m) * c + y(m + half) * sn;
            dqkv[dst + part * d + m + half] = y(m + half) * c - y(m) * sn;
          }
        });
      }
    }
  }
  return dqkv;
}

/** lse [B, H, T] of the scaled causal scores (query t at position S - T + t sees keys 0..S-T+t), in double. */
export function attentionLse(q: Float32Array, k: Float32Array, B: number, H: number, T: number, S: number, d: number): Float32Array {
  const lse = new Float32Array(B * H * T);
  const scale = 1 / Math.sqrt(d);
  for (let bh = 0; bh < B * H; bh++) {
    for (let t = 0; t < T; t++) {
      const scores: number[] = [];
      for (let j = 0; j <= S - T + t; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += q[(bh * T + t) * d + c]! * k[(bh * S + j) * d + c]!;
        scores.push(s * scale);
      }
      const max = Math.max(...scores);
      lse[bh * T + t] = max + Math.log(scores.reduce((sum, s) => sum + Math.exp(s - max), 0));
    }
  }
  return lse;
}
