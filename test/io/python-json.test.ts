import { describe, expect, it } from 'vitest';
import { pythonFloatRepr, pythonJsonFloat } from '../../src/io/python-json.js';

describe('pythonFloatRepr', () => {
  // Pairs checked against CPython 3 repr().
  const cases: Array<[number, string]> = [
    [1.0, '1.0'], [0.1, '0.1'], [1e-5, '1e-05'], [1e16, '1e+16'], [123456789.0, '123456789.0'],
    [3.0517578125e-05, '3.0517578125e-05'], [-0.5, '-0.5'], [0.0001, '0.0001'],
    [1e15, '1000000000000000.0'], [9999999999999998.0, '9999999999999998.0'], [1.5e300, '1.5e+300'],
    [5e-324, '5e-324'], [0, '0.0'], [-0, '-0.0'], [0.012345678918063641, '0.012345678918063641'],
    [100, '100.0'], [1e22, '1e+22'], [2.5e-7, '2.5e-07'], [Math.fround(0.7009578943252563), '0.7009578943252563'],
    [12345.678, '12345.678'],
  ];
  it.each(cases)('%s -> %s', (x, want) => {
    expect(pythonFloatRepr(x)).toBe(want);
  });

  it('non-finite values as repr and as json.dumps writes them', () => {
    expect(pythonFloatRepr(NaN)).toBe('nan');
    expect(pythonFloatRepr(-Infinity)).toBe('-inf');
    expect(pythonJsonFloat(NaN)).toBe('NaN');
    expect(pythonJsonFloat(Infinity)).toBe('Infinity');
    expect(pythonJsonFloat(0.5)).toBe('0.5');
  });
});
