/**
 * Gradients of the tfjs kernels ditty differentiates through.
 *
 * @tensorflow/tfjs-core registers no gradients in its Node build (the @tensorflow/tfjs bundle does,
 * and its sources are ES modules Node cannot load), so tf.grad fails with "gradient function not
 * found". Importing this module registers, for each kernel below that has no gradient yet, the
 * same mathematics as tfjs's own gradient, with broadcasting reduced back to the input shape.
 */
import * as tf from '@tensorflow/tfjs-core';
import { matMul } from './matmul.js';

type Dy = tf.Tensor | tf.Tensor[];
type Grads = Record<string, () => tf.Tensor>;

function one(dy: Dy): tf.Tensor {
  if (Array.isArray(dy)) throw new Error('expected a single-output gradient');
  return dy;
}

function many(dy: Dy): tf.Tensor[] {
  return Array.isArray(dy) ? dy : [dy];
}

function attrNumber(attrs: tf.NamedAttrMap, name: string): number {
  return attrs[name] as number;
}

function attrAxes(attrs: tf.NamedAttrMap, name: string, shape: number[]): number[] {
  return tf.util.parseAxisParam(attrs[name] as number | number[], shape);
}

/** Sum a broadcast gradient back to `shape`. */
function reduceTo(g: tf.Tensor, shape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, g.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
}

/** dy of a reduction over `axes` spread back over x (mean: divided by the reduced count). */
function expandReduced(dy: tf.Tensor, x: tf.Tensor, axes: number[]): tf.Tensor {
  const shape = x.shape.slice();
  for (const a of axes) shape[a] = 1;
  return tf.mul(tf.reshape(dy, shape), tf.ones(x.shape));
}

/** max/min: dy goes to the positions equal to the result. */
function extremeGrad(dy: tf.Tensor, x: tf.Tensor, y: tf.Tensor, axes: number[]): tf.Tensor {
  const shape = x.shape.slice();
  for (const a of axes) shape[a] = 1;
  return tf.mul(tf.reshape(dy, shape), tf.cast(tf.equal(x, tf.reshape(y, shape)), 'float32'));
}

function unary(kernelName: string, grad: (dy: tf.Tensor, x: tf.Tensor) => tf.Tensor): tf.GradConfig {
  return { kernelName, inputsToSave: ['x'], gradFunc: (dy, [x]) => ({ x: () => grad(one(dy), x!) }) };
}

function unaryOfOutput(kernelName: string, grad: (dy: tf.Tensor, y: tf.Tensor) => tf.Tensor): tf.GradConfig {
  return { kernelName, outputsToSave: [true], gradFunc: (dy, [y]) => ({ x: () => grad(one(dy), y!) }) };
}

function binary(kernelName: string, grads: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => [tf.Tensor, tf.Tensor]): tf.GradConfig {
  return {
    kernelName,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => {
      const [ga, gb] = grads(one(dy), a!, b!);
      return { a: () => reduceTo(ga, a!.shape), b: () => reduceTo(gb, b!.shape) };
    },
  };
}

function matMulGrads(dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor, attrs: tf.NamedAttrMap): Grads {
  const tA = attrs['transposeA'] === true, tB = attrs['transposeB'] === true;
  const mm = (x: tf.Tensor, y: tf.Tensor, tx: boolean, ty: boolean): tf.Tensor => matMul(x, y, tx, ty);
  const [ga, gb] = !tA && !tB ? [() => mm(dy, b, false, true), () => mm(a, dy, true, false)]
    : !tA && tB ? [() => mm(dy, b, false, false), () => mm(dy, a, true, false)]
      : tA && !tB ? [() => mm(b, dy, false, true), () => mm(a, dy, false, false)]
        : [() => mm(b, dy, true, true), () => mm(dy, a, true, true)];
  return { a: () => reduceTo(ga(), a.shape), b: () => reduceTo(gb(), b.shape) };
}

/** Gradient of tile: view dy [r0*d0, r1*d1, ...] as [r0, d0, r1, d1, ...] and sum the r axes. */
function untile(dy: tf.Tensor, shape: number[], reps: number[]): tf.Tensor {
  const split = shape.flatMap((d, i) => [reps[i]!, d]);
  const repAxes = shape.map((_d, i) => 2 * i);
  return tf.reshape(tf.sum(tf.reshape(dy, split), repAxes), shape);
}

function gatherGrad(dy: tf.Tensor, x: tf.Tensor, indices: tf.Tensor, attrs: tf.NamedAttrMap): tf.Tensor {
  const axis = tf.util.parseAxisParam(attrNumber(attrs, 'axis'), x.shape)[0];
  if (axis !== 0 || (attrs['batchDims'] ?? 0) !== 0) throw new Error('gather gradient: only axis 0 without batch dims is supported');
  const rows = x.shape[0]!;
  const flatIdx: tf.Tensor1D = tf.reshape(indices, [-1]);
  const flatDy = tf.reshape(dy, [flatIdx.size, -1]);
  const summed = tf.getKernel('UnsortedSegmentSum', tf.getBackend())
    ? tf.unsortedSegmentSum(flatDy, flatIdx, rows)
    : tf.matMul(tf.oneHot(flatIdx, rows), flatDy, true, false); // wasm has no UnsortedSegmentSum
  return tf.reshape(summed, x.shape);
}

const CONFIGS: tf.GradConfig[] = [
  binary(tf.Add, (dy) => [dy, dy]),
  binary(tf.Sub, (dy) => [dy, tf.neg(dy)]),
  binary(tf.Multiply, (dy, a, b) => [tf.mul(dy, b), tf.mul(dy, a)]),
  binary(tf.RealDiv, (dy, a, b) => [tf.div(dy, b), tf.neg(tf.div(tf.mul(dy, a), tf.square(b)))]),
  binary(tf.Maximum, (dy, a, b) => [tf.mul(dy, tf.cast(tf.greaterEqual(a, b), 'float32')), tf.mul(dy, tf.cast(tf.less(a, b), 'float32'))]),
  binary(tf.Minimum, (dy, a, b) => [tf.mul(dy, tf.cast(tf.lessEqual(a, b), 'float32')), tf.mul(dy, tf.cast(tf.greater(a, b), 'float32'))]),
  binary(tf.SquaredDifference, (dy, a, b) => {
    const g = tf.mul(dy, tf.mul(tf.sub(a, b), 2));
    return [g, tf.neg(g)];
  }),
  binary(tf.Pow, (dy, a, b) => {
    const y = tf.pow(a, b);
    const logA = tf.where(tf.greater(a, 0), tf.log(a), tf.zerosLike(a));
    return [tf.mul(dy, tf.mul(b, tf.pow(a, tf.sub(b, 1)))), tf.mul(dy, tf.mul(y, logA))];
  }),
  unary(tf.Neg, (dy) => tf.neg(dy)),
  unary(tf.Identity, (dy) => dy.clone()),
  unary(tf.Cast, (dy) => dy.clone()),
  unary(tf.Log, (dy, x) => tf.div(dy, x)),
  unary(tf.Log1p, (dy, x) => tf.div(dy, tf.add(x, 1))),
  unary(tf.Square, (dy, x) => tf.mul(dy, tf.mul(x, 2))),
  unary(tf.Abs, (dy, x) => tf.mul(dy, tf.sign(x))),
  unary(tf.Relu, (dy, x) => tf.mul(dy, tf.step(x))),
  unary(tf.Erf, (dy, x) => tf.mul(dy, tf.mul(tf.exp(tf.neg(tf.square(x))), 2 / Math.sqrt(Math.PI)))),
  unaryOfOutput(tf.Exp, (dy, y) => tf.mul(dy, y)),
  unaryOfOutput(tf.Sqrt, (dy, y) => tf.div(dy, tf.mul(y, 2))),
  unaryOfOutput(tf.Rsqrt, (dy, y) => tf.mul(dy, tf.mul(tf.mul(tf.square(y), y), -0.5))),
  unaryOfOutput(tf.Sigmoid, (dy, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y)))),
  unaryOfOutput(tf.Tanh, (dy, y) => tf.mul(dy, tf.sub(1, tf.square(y)))),
  {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs) => matMulGrads(one(dy), a!, b!, attrs),
  },
  {
    kernelName: tf.Reshape,
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.reshape(one(dy), x!.shape) }),
  },
  {
    kernelName: tf.ExpandDims,
    inputsToSave: ['input'],
    gradFunc: (dy, [input]) => ({ input: () => tf.reshape(one(dy), input!.shape) }),
  },
  {
    kernelName: tf.Transpose,
    gradFunc: (dy, _saved, attrs) => ({ x: () => tf.transpose(one(dy), tf.backend_util.getUndoAxesPermutation(attrs['perm'] as number[])) }),
  },
  {
    kernelName: tf.BroadcastTo,
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => reduceTo(one(dy), x!.shape) }),
  },
  {
    kernelName: tf.Tile,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({ x: () => untile(one(dy), x!.shape, attrs['reps'] as number[]) }),
  },
  {
    kernelName: tf.Slice,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const [begin, size] = tf.slice_util.parseSliceParams(x!, attrs['begin'] as number[], attrs['size'] as number[]);
      const paddings = x!.shape.map((d, i): [number, number] => [begin[i]!, d - begin[i]! - size[i]!]);
      return { x: () => tf.pad(one(dy), paddings) };
    },
  },
  {
    kernelName: tf.PadV2,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const begin = (attrs['paddings'] as unknown as Array<[number, number]>).map((p) => p[0]);
      return { x: () => tf.slice(one(dy), begin, x!.shape) };
    },
  },
  {
    kernelName: tf.Concat,
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = attrAxes(attrs, 'axis', saved[0]!.shape)[0]!;
      const parts = tf.split(one(dy), saved.map((t) => t.shape[axis]!), axis);
      return Object.fromEntries(parts.map((p, i) => [String(i), () => p]));
    },
  },
  {
    kernelName: tf.SplitV,
    gradFunc: (dy, _saved, attrs) => ({ x: () => tf.concat(many(dy), attrNumber(attrs, 'axis')) }),
  },
  {
    kernelName: tf.Pack,
    saveAllInputs: true,
    gradFunc: (dy, _saved, attrs) => Object.fromEntries(tf.unstack(one(dy), attrNumber(attrs, 'axis')).map((p, i) => [String(i), () => p])),
  },
  {
    kernelName: tf.Unpack,
    gradFunc: (dy, _saved, attrs) => ({ value: () => tf.stack(many(dy), attrNumber(attrs, 'axis')) }),
  },
  {
    kernelName: tf.AddN,
    saveAllInputs: true,
    gradFunc: (dy, saved) => Object.fromEntries(saved.map((_t, i) => [String(i), () => one(dy).clone()])),
  },
  {
    kernelName: tf.Sum,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({ x: () => expandReduced(one(dy), x!, attrAxes(attrs, 'axis', x!.shape)) }),
  },
  {
    kernelName: tf.Mean,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const axes = attrAxes(attrs, 'axis', x!.shape);
      const count = axes.reduce((n, a) => n * x!.shape[a]!, 1);
      return { x: () => tf.div(expandReduced(one(dy), x!, axes), count) };
    },
  },
  {
    kernelName: tf.Max,
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, [x, y], attrs) => ({ x: () => extremeGrad(one(dy), x!, y!, attrAxes(attrs, 'reductionIndices', x!.shape)) }),
  },
  {
    kernelName: tf.Min,
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, [x, y], attrs) => ({ x: () => extremeGrad(one(dy), x!, y!, attrAxes(attrs, 'axis', x!.shape)) }),
  },
  {
    kernelName: tf.Softmax,
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => {
      const dyY = tf.mul(one(dy), y!);
      return { logits: () => tf.sub(dyY, tf.mul(tf.sum(dyY, [attrNumber(attrs, 'dim')], true), y!)) };
    },
  },
  {
    kernelName: tf.LogSoftmax,
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => ({ logits: () => tf.sub(one(dy), tf.mul(tf.sum(one(dy), attrNumber(attrs, 'axis'), true), tf.exp(y!))) }),
  },
  {
    kernelName: tf.Select,
    inputsToSave: ['condition'],
    gradFunc: (dy, [condition]) => ({
      condition: () => tf.cast(tf.zerosLike(condition!), 'float32'),
      t: () => tf.mul(one(dy), tf.cast(condition!, 'float32')),
      e: () => tf.mul(one(dy), tf.cast(tf.logicalNot(condition!), 'float32')),
    }),
  },
  {
    kernelName: tf.GatherV2,
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, [x, indices], attrs) => ({ x: () => gatherGrad(one(dy), x!, indices!, attrs), indices: () => tf.cast(tf.zerosLike(indices!), 'float32') }),
  },
];

/** Register the gradients above for the kernels that have none yet (so tfjs's own, if loaded, win). */
export function registerMissingGradients(): void {
  for (const config of CONFIGS) {
    if (tf.getGradient(config.kernelName) === undefined) tf.registerGradient(config);
  }
}

registerMissingGradients();
