/**
 * RWKV-4 on the native engine: the same block as src/models/rwkv4.ts, written as kernel calls with a
 * hand-written backward. Forward (per block, N = B*T rows):
 *   xn = i == 0 ? LN(x; pre_ln) : x;  z = LN(xn; ln1);  xk, xv, xr = mix(z, shift(z))
 *   k, v, rp = key(xk), value(xv), receptance(xr);  y = WKV(k, v);  ry = sigmoid(rp) * y
 *   att = output(ry);  x2 = xn + att;  z2 = LN(x2; ln2);  fk, fr = mix(z2, shift(z2))
 *   kk = ffn.key(fk);  kr = relu(kk)^2;  vv = ffn.value(kr);  rr = ffn.receptance(fr)
 *   out = x2 + sigmoid(rr) * vv
 * Products' outputs (k, v, rp, att, kk, vv, rr) and the adapters' h are what selective
 * checkpointing keeps; everything else is element-wise and recomputed.
 */
import type { Buf, NativeDevice } from '../engine/native/device.js';
import type { NativeLinear } from '../engine/native/linear.js';
import type { RwkvConfig } from './config.js';
import { need, NativeProgramBase, type NativeBlockProgram, type PassContext, type Saved } from './native-program.js';

const ELEMENTWISE = ['xn', 'z', 'xk', 'xv', 'xr', 'y', 'ry', 'x2', 'z2', 'fk', 'fr', 'kr'];

export class RwkvNativeProgram extends NativeProgramBase implements NativeBlockProgram {
  readonly numLayers: number;
  protected readonly elementwise = ELEMENTWISE;
  private readonly A: number;
  private readonly F: number;

  constructor(device: NativeDevice, config: RwkvConfig, params: ReadonlyMap<string, Buf>, linears: ReadonlyMap<string, NativeLinear>) {
    super(device, config.hidden_size, config.layer_norm_epsilon, params, linears);
    this.numLayers = config.num_hidden_layers;
    this.A = config.attention_hidden_size;
    this.F = config.intermediate_size;
  }

  materialize(i: number, x: Buf, s: Saved, ctx: PassContext, output: boolean): Buf | undefined {
    const a = this.device.addon;
    const { B, T } = ctx;
    const N = B * T, C = this.hiddenSize, A = this.A, F = this.F;
    const b = `rwkv.blocks.${i}`;
    const get = (name: string, make: () => Buf): Buf => NativeProgramBase.get(s, name, make);
    const xn = i === 0 ? get('xn', () => this.norm(x, `${b}.pre_ln`, s, 'ln0', N)) : x;
    const z = get('z', () => this.norm(xn, `${b}.ln1`, s, 'ln1', N));
    const st = ctx.decode?.layer(i);
    if (!s.has('xk') || !s.has('xv') || !s.has('xr')) {
      for (const n of ['xk', 'xv', 'xr']) this.device.release(s.get(n));
      const outs = [this.device.act(N * C), this.device.act(N * C), this.device.act(N * C)];
      a.timeMixForward(z.id, st?.get('att')?.id ?? -1, B, T, C, ['key', 'value', 'receptance'].map((m) => this.p(`${b}.attention.time_mix_${m}`).id), outs.map((o) => o.id));
      s.set('xk', outs[0]!).set('xv', outs[1]!).set('xr', outs[2]!);
      if (st) this.keepLastToken(z, st.get('att')!, B, T);
    }
    const k = this.product(s, 'k', `${b}.attention.key`, need(s, 'xk'), N, A, ctx);
    const v = this.product(s, 'v', `${b}.attention.value`, need(s, 'xv'), N, A, ctx);
    const rp = this.product(s, 'rp', `${b}.attention.receptance`, need(s, 'xr'), N, A, ctx);
    const y = get('y', () => {
      const out = this.device.act(N * A);
      a.wkvForward(this.p(`${b}.attention.time_decay`).id, this.p(`${b}.attention.time_first`).id, k.id, v.id, B, T, A, out.id, st?.get('wkv')?.id ?? -1);
      return out;
    });
    const ry = get('ry', () => {
      const out = this.device.act(N * A);
      a.sigmoidGateForward(rp.id, y.id, out.id, N * A);
      return out;
    });
    const att = this.product(s, 'att', `${b}.attention.output`, ry, N, C, ctx);
    const x2 = get('x2', () => {
      const out = this.device.act(N * C);
      a.add(xn.id, att.id, out.id, N * C);
      return out;
    });
    const z2 = get('z2', () => this.norm(x2, `${b}.ln2`, s, 'ln2', N));
    if (!s.has('fk') || !s.has('fr')) {
      for (const n of ['fk', 'fr']) this.device.release(s.get(n));
      const outs = [this.device.act(N * C), this.device.act(N * C)];
      a.timeMixForward(z2.id, st?.get('ffn')?.id ?? -1, B, T, C, ['key', 'receptance'].map((m) => this.p(`${b}.feed_forward.time_mix_${m}`).id), outs.map((o) => o.id));
      s.set('fk', outs[0]!).set('fr', outs[1]!);
      if (st) this.keepLastToken(z2, st.get('ffn')!, B, T);
    }
    const kk = this.product(s, 'kk', `${b}.feed_forward.key`, need(s, 'fk'), N, F, ctx);
    const kr = get('kr', () => {
      const out = this.device.act(N * F);
      a.reluSquareForward(kk.id, out.id, N * F);
      return out;
    });
    const vv = this.product(s, 'vv', `${b}.feed_forward.value`, kr, N, C, ctx);
    const rr = this.product(s, 'rr', `${b}.feed_forward.receptance`, need(s, 'fr'), N, C, ctx);
    if (!output) return undefined;
    const out = this.device.act(N * C);
    a.sigmoidGateForward(rr.id, vv.id, out.id, N * C);
    a.addInplace(out.id, x2.id, N * C);
    return out;
  }

  /** att, ffn: the ln outputs of the last token [B, C]; wkv: aa, bb, pp [3, B, A] with pp from -1e38 (empty). */
  initLayerState(B: number): Saved {
    const a = this.device.addon;
    const att = this.device.act(B * this.hiddenSize), ffn = this.device.act(B * this.hiddenSize), wkv = this.device.f32(3 * B * this.A);
    for (const b of [att, ffn, wkv]) a.fill(b.id, 0);
    const pp = a.view(wkv.id, 2 * B * this.A, B * this.A);
    a.fill(pp, -1e38);
    a.free(pp);
    return new Map([['att', att], ['ffn', ffn], ['wkv', wkv]]);
  }

  /** state[b] = x[b, T-1] for x [B, T, C] */
  private keepLastToken(x: Buf, state: Buf, B: number, T: number): void {
    const C = this.hiddenSize;
    for (let r = 0; r < B; r++) this.device.addon.copy(state.id, r * C, x.id, (r * T + T - 1) * C, C);
  }

  backward(i: number, x: Buf, s: Saved, dout: Buf, ctx: PassContext, inputGrad: boolean): Buf | undefined {
    const a = this.device.addon;
    const dev = this.device;
    const { B, T } = ctx;
    const N = B * T, C = this.hiddenSize, A = this.A, F = this.F;
    const b = `rwkv.blocks.${i}`;
    const lin = (name: string, path: string, input: Buf, dy: Buf, dx: Buf | undefined): void =>
      this.linear(path).backward(input, s.get(`${name}.h`), dy, N, dx, ctx.dropoutSeed(path));
    const lnBack = this.normBackward(s, N);

    // feed-forward: out = x2 + sigmoid(rr) * vv
    const drr = dev.act(N * C), dvv = dev.act(N * C);
    a.sigmoidGateBackward(need(s, 'rr').id, need(s, 'vv').id, dout.id, drr.id, dvv.id, N * C);
    const dfr = dev.act(N * C);
    lin('rr', `${b}.feed_forward.receptance`, need(s, 'fr'), drr, dfr);
    const dkr = dev.act(N * F);
    lin('vv', `${b}.feed_forward.value`, need(s, 'kr'), dvv, dkr);
    dev.release(drr, dvv);
    const dkk = dev.act(N * F);
    a.reluSquareBackward(need(s, 'kk').id, dkr.id, dkk.id, N * F);
    dev.release(dkr);
    const dfk = dev.act(N * C);
    lin('kk', `${b}.feed_forward.key`, need(s, 'fk'), dkk, dfk);
    dev.release(dkk);
    const dz2 = dev.act(N * C);
    a.timeMixBackward([dfk.id, dfr.id], ['key', 'receptance'].map((m) => this.p(`${b}.feed_forward.time_mix_${m}`).id), B, T, C, dz2.id, false);
    dev.release(dfk, dfr);
    // dx2 = dout + LN2'(dz2)
    const dx2 = dev.act(N * C);
    a.copy(dx2.id, 0, dout.id, 0, N * C);
    lnBack(dz2, need(s, 'x2'), `${b}.ln2`, 'ln2', dx2, true);
    dev.release(dz2);

    // attention: x2 = xn + output(sigmoid(rp) * WKV(k, v))
    const dry = dev.act(N * A);
    lin('att', `${b}.attention.output`, need(s, 'ry'), dx2, dry);
    const drp = dev.act(N * A), dy = dev.act(N * A);
    a.sigmoidGateBackward(need(s, 'rp').id, need(s, 'y').id, dry.id, drp.id, dy.id, N * A);
    dev.release(dry);
    const dk = dev.act(N * A), dv = dev.act(N * A);
    a.wkvBackward(this.p(`${b}.attention.time_decay`).id, this.p(`${b}.attention.time_first`).id, need(s, 'k').id, need(s, 'v').id, dy.id, B, T, A, dk.id, dv.id);
    dev.release(dy);
    // the input of block 0 is the frozen embedding: no input gradient below it
    const below = inputGrad;
    const dxk = below ? dev.act(N * C) : undefined, dxv = below ? dev.act(N * C) : undefined, dxr = below ? dev.act(N * C) : undefined;
    lin('rp', `${b}.attention.receptance`, need(s, 'xr'), drp, dxr);
    lin('v', `${b}.attention.value`, need(s, 'xv'), dv, dxv);
    lin('k', `${b}.attention.key`, need(s, 'xk'), dk, dxk);
    dev.release(drp, dk, dv);
    if (!below) {
      dev.release(dx2);
      return undefined;
    }
    const dz = dev.act(N * C);
    a.timeMixBackward([dxk!.id, dxv!.id, dxr!.id], ['key', 'value', 'receptance'].map((m) => this.p(`${b}.attention.time_mix_${m}`).id), B, T, C, dz.id, false);
    dev.release(dxk, dxv, dxr);
    // dxn = dx2 + LN1'(dz)
    const xn = i === 0 ? need(s, 'xn') : x;
    lnBack(dz, xn, `${b}.ln1`, 'ln1', dx2, true);
    dev.release(dz);
    if (i !== 0) return dx2;
    const dx = dev.act(N * C);
    lnBack(dx2, x, `${b}.pre_ln`, 'ln0', dx, false);
    dev.release(dx2);
    return dx;
  }
}
