import { describe, expect, it } from 'vitest';
import { WeightFileError } from '../../src/io/errors.js';
import { ALLOWED_GLOBALS, PyDict, PyTuple, TorchStorage, TorchTensor, unpickle, type PyValue } from '../../src/io/pickle.js';
import { maliciousPickle, PickleWriter } from '../helpers/torch-save.js';

const FILE = '/models/x/data.pkl';

function load(w: PickleWriter): PyValue {
  return unpickle(w.op(0x2e).bytes(), FILE);
}

function refusal(bytes: Uint8Array): string {
  try {
    unpickle(bytes, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as Error).message).toContain(FILE);
    return (err as Error).message;
  }
  throw new Error('unpickled without error');
}

describe('unpickle: values', () => {
  it('reads ints of every width, floats, bools, None and strings', () => {
    const w = new PickleWriter().proto(2).op(0x28);
    w.int(7).int(300).int(-5).int(2 ** 31 + 1).int(-(2 ** 40)).float(-1.25).bool(true).bool(false).none().str2('héllo');
    w.op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1); // LONG1 2^64: not a safe integer
    w.op(0x74);
    const t = load(w);
    expect(t).toBeInstanceOf(PyTuple);
    expect((t as PyTuple).items).toEqual([7, 300, -5, 2 ** 31 + 1, -(2 ** 40), -1.25, true, false, null, 'héllo', 18446744073709551616n]);
  });

  it('builds lists, dicts, nested tuples and follows the memo', () => {
    const w = new PickleWriter().proto(2);
    w.op(0x7d).put(); // {}
    w.op(0x28);
    w.str2('list').op(0x5d).put().op(0x28).int(1).int(2).op(0x65).int(3).op(0x61); // [1, 2, 3]
    w.str2('again').get(0); // the dict itself, by memo
    w.str2('t').tuple(2, () => w.int(1).tuple(1, () => w.str2('x')));
    w.op(0x75);
    const d = load(w) as PyDict;
    expect(d).toBeInstanceOf(PyDict);
    expect(d.map.get('list')).toEqual([1, 2, 3]);
    expect(d.map.get('again')).toBe(d);
    const t = d.map.get('t') as PyTuple;
    expect(t.items[0]).toBe(1);
    expect((t.items[1] as PyTuple).items).toEqual(['x']);
  });

  it('handles protocol 4 framing, MEMOIZE, POP, SHORT_BINUNICODE, BINUNICODE8 and bytes', () => {
    const body = new PickleWriter();
    body.op(0x8c, 2, 0x61, 0x62, 0x94, 0x30); // SHORT_BINUNICODE "ab", MEMOIZE (memo 0), POP
    body.op(0x8d, 1, 0, 0, 0, 0, 0, 0, 0, 0x7a); // BINUNICODE8 "z"
    body.op(0x43, 3, 1, 2, 3); // SHORT_BINBYTES
    body.op(0x68, 0); // BINGET 0
    body.op(0x28, 0x31); // MARK POP_MARK
    body.op(0x87, 0x2e); // TUPLE3 STOP
    const inner = body.bytes();
    const framed = Uint8Array.from([0x80, 4, 0x95, inner.length, 0, 0, 0, 0, 0, 0, 0, ...inner]);
    expect((unpickle(framed, FILE) as PyTuple).items).toEqual(['z', Uint8Array.of(1, 2, 3), 'ab']);
  });

  it('refuses values left on the stack at STOP', () => {
    expect(refusal(Uint8Array.of(0x80, 2, 0x4e, 0x4e, 0x2e))).toMatch(/1 values left on the stack at STOP/);
  });

  it('rebuilds a state dict of tensors, sharing storages by key', () => {
    const w = new PickleWriter().proto(2).emptyOrderedDict();
    const tensor = (key: string, numel: number, offset: number, size: number[], stride: number[]): void => {
      w.global('torch._utils', '_rebuild_tensor_v2');
      w.tuple(6, () => {
        w.tuple(5, () => { w.str2('storage').global('torch', 'HalfStorage').str2(key).str2('cuda:0').int(numel); });
        w.op(0x51).int(offset).intTuple(size).intTuple(stride).bool(true).emptyOrderedDict();
      });
      w.op(0x52);
    };
    w.items([
      [() => w.str2('a'), () => tensor('0', 12, 0, [3, 4], [4, 1])],
      [() => w.str2('b'), () => tensor('0', 12, 2, [4, 2], [1, 4])],
    ]);
    const d = load(w) as PyDict;
    expect(d.ordered).toBe(true);
    const a = d.map.get('a') as TorchTensor;
    const b = d.map.get('b') as TorchTensor;
    expect(a).toBeInstanceOf(TorchTensor);
    expect(a.storage).toBeInstanceOf(TorchStorage);
    expect(a.storage).toBe(b.storage);
    expect(a.storage).toEqual(new TorchStorage('0', 'F16', 'cuda:0', 12));
    expect([b.storageOffset, b.shape, b.stride, b.requiresGrad]).toEqual([2, [4, 2], [1, 4], true]);
  });

  it('unwraps _rebuild_parameter, _rebuild_from_type_v2 and the old _rebuild_tensor', () => {
    const w = new PickleWriter().proto(2);
    const args = (key: string, v2: boolean): void => {
      w.tuple(v2 ? 6 : 4, () => {
        w.tuple(5, () => { w.str2('storage').global('torch', 'BFloat16Storage').str2(key).str2('cpu').int(4); });
        w.op(0x51).int(0).intTuple([2, 2]).intTuple([2, 1]);
        if (v2) w.bool(false).emptyOrderedDict();
      });
    };
    w.op(0x7d).op(0x28);
    w.str2('param').global('torch._utils', '_rebuild_parameter');
    w.tuple(3, () => { w.global('torch._utils', '_rebuild_tensor_v2'); args('0', true); w.op(0x52).bool(true).emptyOrderedDict(); });
    w.op(0x52);
    w.str2('typed').global('torch._tensor', '_rebuild_from_type_v2');
    w.tuple(4, () => { w.global('torch._utils', '_rebuild_tensor_v2').global('torch', 'Tensor'); args('1', true); w.op(0x7d); });
    w.op(0x52);
    w.str2('old').global('torch._utils', '_rebuild_tensor');
    args('2', false);
    w.op(0x52, 0x75);
    const d = load(w) as PyDict;
    const [param, typed, old] = ['param', 'typed', 'old'].map((k) => d.map.get(k) as TorchTensor);
    expect(param).toBeInstanceOf(TorchTensor);
    expect(param!.requiresGrad).toBe(true);
    expect([typed!.storage.key, typed!.storage.dtype, typed!.shape]).toEqual(['1', 'BF16', [2, 2]]);
    expect([old!.storage.key, old!.stride]).toEqual(['2', [2, 1]]);
  });

  it('refuses _rebuild_from_type_v2 for anything but plain tensors and parameters', () => {
    const w = new PickleWriter().proto(2).global('torch._tensor', '_rebuild_from_type_v2');
    w.tuple(4, () => { w.global('torch._utils', '_rebuild_tensor_v2').global('torch', 'FloatStorage').op(0x29, 0x7d); });
    w.op(0x52, 0x2e);
    expect(refusal(w.bytes())).toMatch(/tensor type torch\.FloatStorage is not supported/);
  });

  it('refuses a view that reaches past its storage', () => {
    const w = new PickleWriter().proto(2).global('torch._utils', '_rebuild_tensor_v2');
    w.tuple(6, () => {
      w.tuple(5, () => { w.str2('storage').global('torch', 'FloatStorage').str2('0').str2('cpu').int(6); });
      w.op(0x51).int(1).intTuple([2, 3]).intTuple([3, 1]).bool(false).emptyOrderedDict();
    });
    w.op(0x52, 0x2e);
    expect(refusal(w.bytes())).toMatch(/reaches element 7 of storage "0" which has 6/);
  });
});

describe('unpickle: refusals', () => {
  it.each([
    ['os', 'system'],
    ['posix', 'system'],
    ['nt', 'system'],
    ['builtins', 'eval'],
    ['builtins', 'exec'],
    ['__builtin__', 'eval'],
    ['subprocess', 'Popen'],
    ['torch', 'load'],
    ['collections', 'defaultdict'],
  ])('refuses GLOBAL %s.%s before anything is called', (module, name) => {
    const msg = refusal(maliciousPickle(module, name, 'touch /tmp/pwned'));
    expect(msg).toContain(`refusing global ${module}.${name}`);
    expect(msg).toMatch(/nothing was executed/);
  });

  it('refuses STACK_GLOBAL builtins.eval the same way', () => {
    expect(refusal(maliciousPickle('builtins', 'eval', '1+1', { stackGlobal: true }))).toContain('refusing global builtins.eval');
  });

  it('refuses calling an allowlisted global that is not a constructor', () => {
    const w = new PickleWriter().proto(2).global('torch', 'FloatStorage');
    w.tuple(1, () => w.int(3)).op(0x52, 0x2e);
    expect(refusal(w.bytes())).toMatch(/torch\.FloatStorage cannot be called/);
  });

  it('refuses NEWOBJ of anything but OrderedDict', () => {
    const w = new PickleWriter().proto(2).global('torch', 'Tensor').op(0x29, 0x81, 0x2e);
    expect(refusal(w.bytes())).toMatch(/NEWOBJ of torch\.Tensor is not supported/);
  });

  it('refuses BUILD on something that is not a dict or tensor', () => {
    expect(refusal(new PickleWriter().proto(2).op(0x5d, 0x7d, 0x62, 0x2e).bytes())).toMatch(/BUILD on list\(0\) is not supported/);
  });

  it.each([
    ['INST (text protocol)', [0x69]],
    ['OBJ', [0x28, 0x6f]],
    ['INT (text protocol)', [0x49]],
    ['EXT1', [0x82, 1]],
    ['an unknown byte', [0xff]],
  ])('refuses %s as an unsupported opcode', (_what, ops) => {
    expect(refusal(Uint8Array.from([0x80, 2, ...ops, 0x2e]))).toMatch(/unsupported opcode 0x/);
  });

  it('refuses persistent ids other than torch storages', () => {
    const w = new PickleWriter().proto(2).str2('module').op(0x51, 0x2e);
    expect(refusal(w.bytes())).toMatch(/unsupported persistent id/);
  });

  it('refuses truncated input, a missing memo entry and stack underflow', () => {
    expect(refusal(Uint8Array.of(0x80, 2, 0x58, 10, 0, 0, 0, 0x61))).toMatch(/truncated/);
    expect(refusal(Uint8Array.of(0x80, 2, 0x68, 5, 0x2e))).toMatch(/memo key 5 is not set/);
    expect(refusal(Uint8Array.of(0x80, 2, 0x52))).toMatch(/stack underflow/);
    expect(refusal(Uint8Array.of(0x80, 2, 0x4e))).toMatch(/truncated/);
  });

  it('lists only tensor-related globals as allowed', () => {
    for (const g of ALLOWED_GLOBALS) expect(g).toMatch(/^(collections\.OrderedDict|torch\.)/);
  });
});
