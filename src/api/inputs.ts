/**
 * What the library accepts as a model's inputs: one tensor (for a one-input model) — a teardown
 * tensor, onnxruntime's `Tensor`, or `{ data, dims }` over a typed array — or a record of them by
 * input name. None is copied.
 */
import { InputError } from '../errors.ts';
import type { Model as RuntimeModel } from '../runtime/model.ts';
import type { Feeds } from '../tensor.ts';
import { Tensor, type OrtTensor, type TensorData, type TensorLike } from './tensor.ts';

/** One input value: a tensor, onnxruntime's tensor, or a typed array with its dims. */
export type InputValue = TensorLike | OrtTensor | { data: TensorData; dims: readonly number[] };

export type Inputs = InputValue | Record<string, InputValue>;

export function toFeeds(model: RuntimeModel, inputs: Inputs): Feeds {
  if (isInputValue(inputs)) {
    if (model.inputs.length !== 1) {
      throw new InputError(
        `The model has ${model.inputs.length} inputs (${model.describeInputs()}): give them as a record by name, e.g. { ${model.inputs.map((input) => `${input.name}: ...`).join(', ')} }.`,
      );
    }
    return { [model.inputs[0].name]: toTensor(inputs) };
  }
  return Object.fromEntries(Object.entries(inputs).map(([name, value]) => [name, toTensor(value)]));
}

function toTensor(value: InputValue): Tensor {
  if ('dtype' in value || 'type' in value) return Tensor.from(value as TensorLike | OrtTensor);
  return Tensor.from(value.data, value.dims);
}

function isInputValue(value: Inputs): value is InputValue {
  const candidate = value as { data?: unknown; dims?: unknown };
  return ArrayBuffer.isView(candidate.data) && Array.isArray(candidate.dims);
}
