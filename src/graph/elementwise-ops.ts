/**
 * Ops with one data input computed element by element: each output element depends only on the
 * input element at the same index, so they commute with slicing any axis (f(x)[i] = f(x[i])).
 * Rewrites that compute a model on fewer positions (autodiff/last-position.ts, the patch sweep's
 * causal suffix in inspect/causal-suffix.ts) copy them as they are onto the slice. Dropout counts:
 * at inference it is the identity, and its mask output is elementwise too.
 */
export const ELEMENTWISE_UNARY: ReadonlySet<string> = new Set([
  'Relu',
  'LeakyRelu',
  'Gelu',
  'Tanh',
  'Sigmoid',
  'Erf',
  'Exp',
  'Log',
  'Neg',
  'Sqrt',
  'Identity',
  'Abs',
  'Cast',
  'Reciprocal',
  'Softplus',
  'Softsign',
  'Elu',
  'Selu',
  'Celu',
  'HardSigmoid',
  'HardSwish',
  'Mish',
  'Sin',
  'Cos',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'Not',
  'Dropout',
]);
