/**
 * The RWKV-4 WKV operator.
 *
 * For one (batch row, channel) with keys k_t and values v_t, t = 0..T-1:
 *   y_t = (a_t + e^{u+k_t} v_t) / (b_t + e^{u+k_t}),
 *   a_t = sum_{i<t} e^{(t-1-i)w + k_i} v_i,   b_t = the same with v = 1,
 * so y_t is a weighted mean of v_0..v_t with weights α_{t,i} = e^{(t-1-i)w + k_i} (i < t) and
 * α_{t,t} = e^{u+k_t}. It is computed in the stable form with the state (aa, bb, pp), where a = aa e^pp
 * and b = bb e^pp. The kernels below loop over Float32Arrays in float64 arithmetic, one pass per
 * (b, c); `wkvReference` is the same recurrence in composed tfjs ops, the reference they are tested against.
 *
 * Gradient (g_t = dL/dy_t, Z_t = sum_i α_{t,i}): since dy_t/d(log α_{t,i}) = α_{t,i} (v_i - y_t) / Z_t,
 *   du   = sum_t g_t α_{t,t} (v_t - y_t) / Z_t
 *   dw   = sum_t g_t (c_t - y_t d_t) / Z_t, with c_t = sum_{i<t} (t-1-i) α_{t,i} v_i (d_t: v = 1),
 *          carried forward as c_{t+1} = e^w (c_t + a_t)
 *   dv_j = g_j α_{j,j} / Z_j + e^{k_j} R_j,  R_j = sum_{t>j} g_t e^{(t-1-j)w} / Z_t
 *   dk_j = g_j α_{j,j} (v_j - y_j) / Z_j + e^{k_j} (v_j R_j - S_j),  S_j: R_j with g_t y_t
 * R and S are carried backward (R_{j-1} = g_j / Z_j + e^w R_j) with their own running exponent.
 * dw and du are summed over the batch.
 */
import * as tf from '@tensorflow/tfjs-core';
import './gradients.js';
import { timed } from './timers.js';

/** Exponent of an empty state (as RWKV-LM and transformers initialise pp). */
export const WKV_EMPTY_PP = -1e38;

/** The recurrent WKV state of each (batch row, channel): float32 [B, C] each. */
export interface WkvState {
  readonly aa: tf.Tensor2D;
  readonly bb: tf.Tensor2D;
  readonly pp: tf.Tensor2D;
}

interface Dims {
  readonly B: number;
  readonly T: number;
  readonly C: number;
}

interface StateArrays {
  readonly aa: Float32Array;
  readonly bb: Float32Array;
  readonly pp: Float32Array;
}

/** Forward recurrence; `state` ([B*C] each) holds the initial state on entry and the final one on return. */
function forwardKernel({ B, T, C }: Dims, w: Float32Array, u: Float32Array, k: Float32Array, v: Float32Array, state: StateArrays): Float32Array {
  const y = new Float32Array(B * T * C);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const s = b * C + c;
      const wc = w[c]!, uc = u[c]!;
      let aa = state.aa[s]!, bb = state.bb[s]!, pp = state.pp[s]!;
      for (let t = 0, i = b * T * C + c; t < T; t++, i += C) {
        const kt = k[i]!, vt = v[i]!;
        const q = Math.max(pp, uc + kt);
        const e1 = Math.exp(pp - q), e2 = Math.exp(uc + kt - q);
        y[i] = (e1 * aa + e2 * vt) / (e1 * bb + e2);
        const p = Math.max(pp + wc, kt);
        const f1 = Math.exp(pp + wc - p), f2 = Math.exp(kt - p);
        aa = f1 * aa + f2 * vt;
        bb = f1 * bb + f2;
        pp = p;
      }
      state.aa[s] = aa;
      state.bb[s] = bb;
      state.pp[s] = pp;
    }
  }
  return y;
}

interface WkvGrads {
  readonly gw: Float32Array;
  readonly gu: Float32Array;
  readonly gk: Float32Array;
  readonly gv: Float32Array;
}

/** Gradients of sum(gy * wkv(w, u, k, v)) from an empty initial state (see the derivation above). */
function backwardKernel({ B, T, C }: Dims, w: Float32Array, u: Float32Array, k: Float32Array, v: Float32Array, gy: Float32Array): WkvGrads {
  const gw = new Float64Array(C), gu = new Float64Array(C);
  const gk = new Float32Array(B * T * C), gv = new Float32Array(B * T * C);
  const ys = new Float64Array(T), logZ = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const wc = w[c]!, uc = u[c]!;
      const base = b * T * C + c;
      // forward: y_t, log Z_t, and the du, dw sums
      let aa = 0, bb = 0, cc = 0, dd = 0, pp = WKV_EMPTY_PP;
      let sw = 0, su = 0;
      for (let t = 0, i = base; t < T; t++, i += C) {
        const kt = k[i]!, vt = v[i]!, g = gy[i]!;
        const q = Math.max(pp, uc + kt);
        const e1 = Math.exp(pp - q), e2 = Math.exp(uc + kt - q);
        const z = e1 * bb + e2;
        const y = (e1 * aa + e2 * vt) / z;
        su += (g * e2 * (vt - y)) / z;
        sw += (g * e1 * (cc - y * dd)) / z;
        ys[t] = y;
        logZ[t] = q + Math.log(z);
        const p = Math.max(pp + wc, kt);
        const f1 = Math.exp(pp + wc - p), f2 = Math.exp(kt - p);
        cc = f1 * (cc + aa);
        dd = f1 * (dd + bb);
        aa = f1 * aa + f2 * vt;
        bb = f1 * bb + f2;
        pp = p;
      }
      gw[c] = gw[c]! + sw;
      gu[c] = gu[c]! + su;
      // backward: R = rr e^rp, S = ss e^rp over the later positions
      let rr = 0, ss = 0, rp = WKV_EMPTY_PP;
      for (let t = T - 1, i = base + (T - 1) * C; t >= 0; t--, i -= C) {
        const kt = k[i]!, vt = v[i]!, g = gy[i]!, y = ys[t]!;
        const own = g * Math.exp(uc + kt - logZ[t]!);
        const h = Math.exp(kt + rp);
        gv[i] = own + h * rr;
        gk[i] = own * (vt - y) + h * (vt * rr - ss);
        const p = Math.max(-logZ[t]!, wc + rp);
        const f1 = Math.exp(-logZ[t]! - p), f2 = Math.exp(wc + rp - p);
        rr = g * f1 + f2 * rr;
        ss = g * y * f1 + f2 * ss;
        rp = p;
      }
    }
  }
  return { gw: Float32Array.from(gw), gu: Float32Array.from(gu), gk, gv };
}

function dimsOf(w: tf.Tensor, u: tf.Tensor, k: tf.Tensor, v: tf.Tensor): Dims {
  const [B, T, C] = k.shape as [number, number, number];
  const ok = k.rank === 3 && v.rank === 3 && v.shape.every((d, i) => d === k.shape[i])
    && w.rank === 1 && w.shape[0] === C && u.rank === 1 && u.shape[0] === C;
  if (!ok) throw new Error(`wkv: expected w, u [C] and k, v [B, T, C]; got w [${w.shape}], u [${u.shape}], k [${k.shape}], v [${v.shape}]`);
  return { B, T, C };
}

function read(x: tf.Tensor): Float32Array {
  return x.dataSync() as Float32Array;
}

function emptyStateArrays(n: number): StateArrays {
  return { aa: new Float32Array(n), bb: new Float32Array(n), pp: new Float32Array(n).fill(WKV_EMPTY_PP) };
}

const wkvOp = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [w, u, k, v] = args as tf.Tensor[] as [tf.Tensor1D, tf.Tensor1D, tf.Tensor3D, tf.Tensor3D];
  const save = args[4] as tf.GradSaveFunc;
  const dims = dimsOf(w, u, k, v);
  save([w, u, k, v]);
  const y = timed('wkv', () => forwardKernel(dims, read(w), read(u), read(k), read(v), emptyStateArrays(dims.B * dims.C)));
  return {
    value: tf.tensor3d(y, k.shape),
    gradFunc: (dy: tf.Tensor3D, saved: tf.Tensor[]) => {
      const [sw, su, sk, sv] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const g = timed('wkv', () => backwardKernel(dims, read(sw), read(su), read(sk), read(sv), read(dy)));
      return [tf.tensor1d(g.gw), tf.tensor1d(g.gu), tf.tensor3d(g.gk, sk.shape as [number, number, number]), tf.tensor3d(g.gv, sv.shape as [number, number, number])];
    },
  };
});

/**
 * WKV over whole sequences from an empty state, differentiable in all four inputs.
 * w = -exp(time_decay) [C], u = time_first [C], k, v [B, T, C] -> [B, T, C].
 */
export function wkv(w: tf.Tensor1D, u: tf.Tensor1D, k: tf.Tensor3D, v: tf.Tensor3D): tf.Tensor3D {
  return wkvOp(w, u, k, v);
}

/** The state before any token: aa = bb = 0, pp = -1e38. */
export function emptyWkvState(batch: number, channels: number): WkvState {
  const n = batch * channels;
  const s = emptyStateArrays(n);
  return { aa: tf.tensor2d(s.aa, [batch, channels]), bb: tf.tensor2d(s.bb, [batch, channels]), pp: tf.tensor2d(s.pp, [batch, channels]) };
}

/**
 * WKV continuing from `state` (for generation): returns the outputs and the state after the last token.
 * Not differentiable (no gradient flows through it); the input state is left as it is.
 */
export function wkvWithState(w: tf.Tensor1D, u: tf.Tensor1D, k: tf.Tensor3D, v: tf.Tensor3D, state: WkvState): { y: tf.Tensor3D; state: WkvState } {
  const dims = dimsOf(w, u, k, v);
  const shape: [number, number] = [dims.B, dims.C];
  for (const s of [state.aa, state.bb, state.pp]) {
    if (s.shape[0] !== dims.B || s.shape[1] !== dims.C) throw new Error(`wkvWithState: state is [${s.shape}], expected [${shape}]`);
  }
  const arrays: StateArrays = { aa: read(state.aa).slice(), bb: read(state.bb).slice(), pp: read(state.pp).slice() };
  const y = forwardKernel(dims, read(w), read(u), read(k), read(v), arrays);
  return {
    y: tf.tensor3d(y, k.shape),
    state: { aa: tf.tensor2d(arrays.aa, shape), bb: tf.tensor2d(arrays.bb, shape), pp: tf.tensor2d(arrays.pp, shape) },
  };
}

/** The same stable recurrence in composed tfjs ops (a loop over t), differentiable by autograd. Slow; for tests. */
export function wkvReference(w: tf.Tensor1D, u: tf.Tensor1D, k: tf.Tensor3D, v: tf.Tensor3D): tf.Tensor3D {
  const { B, T, C } = dimsOf(w, u, k, v);
  return tf.tidy(() => {
    let aa: tf.Tensor = tf.zeros([B, C]);
    let bb: tf.Tensor = tf.zeros([B, C]);
    let pp: tf.Tensor = tf.fill([B, C], WKV_EMPTY_PP);
    const ks = tf.unstack(k, 1), vs = tf.unstack(v, 1);
    const ys: tf.Tensor[] = [];
    for (let t = 0; t < T; t++) {
      const kt = ks[t]!, vt = vs[t]!;
      const uk = tf.add(u, kt);
      let q = tf.maximum(pp, uk);
      let e1 = tf.exp(tf.sub(pp, q)), e2 = tf.exp(tf.sub(uk, q));
      ys.push(tf.div(tf.add(tf.mul(e1, aa), tf.mul(e2, vt)), tf.add(tf.mul(e1, bb), e2)));
      const pw = tf.add(pp, w);
      q = tf.maximum(pw, kt);
      e1 = tf.exp(tf.sub(pw, q));
      e2 = tf.exp(tf.sub(kt, q));
      aa = tf.add(tf.mul(e1, aa), tf.mul(e2, vt));
      bb = tf.add(tf.mul(e1, bb), e2);
      pp = q;
    }
    return tf.stack(ys, 1) as tf.Tensor3D;
  });
}
