/**
 * Checkpoints: the model as trained so far (a plain ONNX file any runtime loads) with the
 * optimizer state as extra initializers and the loop's position in its metadata, so --resume
 * continues exactly where the run stopped.
 */
import { InputError } from '../errors.ts';
import { readModelFile, writeModelFile } from '../onnx/model-file.ts';
import { DataType, type ModelProto } from '../onnx/proto.ts';
import { tensorFromProto, tensorToProto } from '../onnx/tensor-proto.ts';
import { derive } from '../graph/edit.ts';
import type { TrainSpec } from './spec.ts';
import { storedTrainSpec, TRAIN_SPEC_KEY } from './read-spec.ts';
import type { ResumeState, TrainState } from './trainer.ts';

const POSITION_KEY = 'teardown.checkpoint';

export function saveCheckpoint(path: string, state: TrainState, model: ModelProto): void {
  const stateTensors = [...state.optimizerState].map(([name, value]) =>
    tensorToProto(`teardown::optimizer::${name}`, value),
  );
  const position = {
    key: POSITION_KEY,
    value: JSON.stringify({ step: state.step, secondsBefore: state.secondsBefore }),
  };
  writeModelFile(
    path,
    derive(model, {
      graph: derive(model.graph, { initializer: [...model.graph.initializer, ...stateTensors] }),
      metadataProps: [...model.metadataProps, position],
    }),
  );
}

export function loadCheckpoint(path: string): { spec: TrainSpec; state: ResumeState } {
  const { proto } = readModelFile(path);
  const meta = new Map(proto.metadataProps.map((entry) => [entry.key, entry.value]));
  const specText = meta.get(TRAIN_SPEC_KEY);
  const positionText = meta.get(POSITION_KEY);
  if (!specText || !positionText)
    throw new InputError(
      `'${path}' is not a teardown training checkpoint (no ${specText ? POSITION_KEY : TRAIN_SPEC_KEY} metadata): give the file written with --checkpoint.`,
    );
  const position = JSON.parse(positionText) as { step: number; secondsBefore: number };
  const values = new Map<string, ReturnType<typeof tensorFromProto>>();
  const optimizerState = new Map<string, ReturnType<typeof tensorFromProto>>();
  for (const tensor of proto.graph.initializer) {
    if (tensor.name.startsWith('teardown::optimizer::'))
      optimizerState.set(
        tensor.name.slice('teardown::optimizer::'.length),
        tensorFromProto(tensor),
      );
    else if (tensor.dataType === DataType.FLOAT) values.set(tensor.name, tensorFromProto(tensor));
  }
  return {
    spec: storedTrainSpec(proto, `checkpoint '${path}'`)!,
    state: {
      step: position.step,
      values,
      optimizerState,
      curve: JSON.parse(meta.get('teardown.train_curve') ?? '[]'),
      secondsBefore: position.secondsBefore,
    },
  };
}
