/**
 * The attributes of an LSTM, GRU or RNN node that its gradient rule (recurrent.ts) depends on, and
 * the refusal of the configurations the rule does not make exact: LSTM and GRU with non-default
 * `activations`, cell clipping (`clip`) and LSTM's coupled input and forget gates (`input_forget`).
 * RNN takes Tanh (default), Sigmoid or Relu per direction.
 */
import type { GradContext } from './context.ts';
import { AutodiffError } from './errors.ts';
import { RNN_ACTIVATION_NAMES } from './recurrent-cells.ts';

export type RecurrentKind = 'LSTM' | 'GRU' | 'RNN';

export interface RecurrentConfig {
  kind: RecurrentKind;
  /** Gate blocks stacked in W, R and each half of B: LSTM 4 (i, o, f, c), GRU 3 (z, r, h), RNN 1. */
  gates: number;
  hidden: number;
  inputSize: number;
  /** One entry per direction, in ONNX order: false = forward, true = reverse. */
  directions: boolean[];
  layout: 0 | 1;
  linearBeforeReset: boolean;
  /** RNN: the activation of each direction, as an ONNX op name. */
  rnnActivations: string[];
}

const GATES: Record<RecurrentKind, number> = { LSTM: 4, GRU: 3, RNN: 1 };
const DEFAULT_ACTIVATIONS: Record<RecurrentKind, string[]> = {
  LSTM: ['Sigmoid', 'Tanh', 'Tanh'],
  GRU: ['Sigmoid', 'Tanh'],
  RNN: ['Tanh'],
};

export function readRecurrentConfig(c: GradContext, kind: RecurrentKind): RecurrentConfig {
  const refuse = (attribute: string, value: string, why: string) =>
    new AutodiffError(
      `The gradient of ${c.describe()} is not built for ${attribute} = ${value}: ${why}. Ask for gradients of values after it (--wrt a later hook), or export the model without it.`,
    );
  const direction = c.attrString('direction', 'forward');
  if (!['forward', 'reverse', 'bidirectional'].includes(direction))
    throw refuse(
      'direction',
      `'${direction}'`,
      "ONNX knows 'forward', 'reverse' and 'bidirectional'",
    );
  const directions = direction === 'bidirectional' ? [false, true] : [direction === 'reverse'];
  if (c.attr('clip'))
    throw refuse(
      'clip',
      String(c.attrFloat('clip', 0)),
      'clipped cell inputs are not differentiated',
    );
  if (kind === 'LSTM' && c.attrInt('input_forget', 0) !== 0)
    throw refuse('input_forget', '1', 'coupled input and forget gates are not differentiated');
  const rnnActivations = checkActivations(c, kind, directions.length, refuse);
  const layout = c.attrInt('layout', 0);
  if (layout !== 0 && layout !== 1)
    throw refuse('layout', String(layout), 'ONNX knows layouts 0 and 1');
  const weightShape = c.shape(c.x(1)); // [dirs, gates·H, in]
  const inputSize = weightShape[2];
  const hidden = c.attrInt('hidden_size', Number(c.shape(c.x(2))[2]));
  if (typeof inputSize !== 'number' || !Number.isInteger(hidden)) {
    throw new AutodiffError(
      `The gradient of ${c.describe()} needs a static input size and hidden size; W '${c.x(1)}' has shape [${weightShape.join(', ')}].`,
    );
  }
  return {
    kind,
    gates: GATES[kind],
    hidden,
    inputSize,
    directions,
    layout,
    linearBeforeReset: c.attrInt('linear_before_reset', 0) !== 0,
    rnnActivations,
  };
}

/** The `activations` attribute, checked; for RNN, the activation of each direction. */
function checkActivations(
  c: GradContext,
  kind: RecurrentKind,
  directionCount: number,
  refuse: (attribute: string, value: string, why: string) => Error,
): string[] {
  const given = c.attr('activations')?.strings.map((bytes) => new TextDecoder().decode(bytes));
  const defaults = DEFAULT_ACTIVATIONS[kind];
  if (!given || given.length === 0) return Array(directionCount).fill('Tanh');
  const canonical = (name: string) =>
    [...RNN_ACTIVATION_NAMES, 'Sigmoid', 'Tanh'].find(
      (known) => known.toLowerCase() === name.toLowerCase(),
    ) ?? name;
  const names = given.map(canonical);
  const shown = `[${given.map((name) => `'${name}'`).join(', ')}]`;
  if (kind === 'RNN') {
    if (
      names.length !== directionCount ||
      !names.every((name) => RNN_ACTIVATION_NAMES.includes(name))
    ) {
      throw refuse(
        'activations',
        shown,
        `RNN gradients cover ${RNN_ACTIVATION_NAMES.join(', ')}, one per direction`,
      );
    }
    return names;
  }
  const expected = Array.from({ length: directionCount }, () => defaults).flat();
  if (names.length !== expected.length || names.some((name, k) => name !== expected[k])) {
    throw refuse(
      'activations',
      shown,
      `${kind} gradients cover the default activations (${defaults.join(', ')} per direction) only`,
    );
  }
  return [];
}
