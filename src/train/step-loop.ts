/**
 * Several optimizer steps in one onnxruntime run. The step graph (step-graph.ts) becomes the body
 * of an ONNX Scan whose state variables are the parameters and the optimizer state, so they stay
 * inside onnxruntime between steps: without it every step copies them out to JavaScript and back
 * in (2.1 MB for the 784-256-256-10 MLP, ~0.7 ms of a 3 ms step).
 *
 * Everything else a step reads (the batch, the target, the learning-rate scalars, an objective's
 * weights) is fed stacked along a new first axis, one slice per step: Scan's scan inputs, which
 * onnxruntime hands to the body as views, without copying. What a step reports (loss, scores,
 * BatchNorm batch statistics) leaves as the scan outputs, stacked the same way.
 *
 *   outer: final params, final state, per-step outputs = Scan(initial params, initial state, stacked inputs)
 *   body:  (params, state, one step's inputs) → (step's params, step's state, step's outputs)
 */
import { graph, int, makeNode, valueInfo } from '../graph/builder.ts';
import { derive } from '../graph/edit.ts';
import type { GraphProto, ModelProto, ValueInfoProto } from '../onnx/proto.ts';
import type { StepGraph } from './step-graph.ts';

export interface StepLoop {
  proto: ModelProto;
  /** Step-graph inputs fed once per step → the scan input that holds them stacked, [steps, ...]. */
  stacked: Map<string, string>;
  /** Parameter or state name → the input with its value before the first step. */
  initial: Map<string, string>;
  /** Parameter or state name → the output with its value after the last step. */
  final: Map<string, string>;
  /** Step-graph output (loss, scores, batch statistics) → the output with every step's value, [steps, ...]. */
  perStep: Map<string, string>;
}

/** Names in the outer graph may not shadow the body's (ONNX scoping), so every outer value is prefixed. */
const outer = (role: string, name: string) => `teardown::steps::${role}::${name}`;

export function buildStepLoop(step: StepGraph): StepLoop {
  const stepGraph = step.proto.graph;
  const carried = [...step.parameters, ...step.stateInputs];
  const carriedSet = new Set(carried);
  const inputInfo = new Map(stepGraph.input.map((info) => [info.name, info]));
  const perStepInputs = stepGraph.input.filter((info) => !carriedSet.has(info.name));
  const next = (name: string) => step.nextParameter.get(name) ?? step.nextState.get(name)!;
  const reported = [
    step.loss,
    step.scores,
    ...step.statistics.flatMap((s) => [s.batchMean, s.batchVar]),
  ];

  const body = derive(stepGraph, {
    name: 'teardown_step',
    input: [...carried.map((name) => inputInfo.get(name)!), ...perStepInputs],
    output: [
      ...carried.map((name) => renamed(inputInfo.get(name)!, next(name))),
      ...reported.map((name) => valueInfo(name, 'float32')),
    ],
  });
  const scan = makeNode(
    'teardown/steps',
    'Scan',
    [
      ...carried.map((name) => outer('initial', name)),
      ...perStepInputs.map((info) => outer('stacked', info.name)),
    ],
    [
      ...carried.map((name) => outer('final', name)),
      ...reported.map((name) => outer('each', name)),
    ],
    { body: graph(body), num_scan_inputs: int(perStepInputs.length) },
  );
  const outerGraph: GraphProto = derive(stepGraph, {
    name: 'teardown_steps',
    node: [scan],
    initializer: [],
    valueInfo: [],
    input: [
      ...carried.map((name) => renamed(inputInfo.get(name)!, outer('initial', name))),
      ...perStepInputs.map((info) => stackedInfo(outer('stacked', info.name), info)),
    ],
    output: [
      ...carried.map((name) => renamed(inputInfo.get(name)!, outer('final', name))),
      ...reported.map((name) => valueInfo(outer('each', name), 'float32')),
    ],
  });
  return {
    proto: derive(step.proto, { graph: outerGraph }),
    stacked: new Map(perStepInputs.map((info) => [info.name, outer('stacked', info.name)])),
    initial: new Map(carried.map((name) => [name, outer('initial', name)])),
    final: new Map(carried.map((name) => [name, outer('final', name)])),
    perStep: new Map(reported.map((name) => [name, outer('each', name)])),
  };
}

function renamed(info: ValueInfoProto, name: string): ValueInfoProto {
  return { ...info, name };
}

/** The value info of `info` with a leading `steps` axis. */
function stackedInfo(name: string, info: ValueInfoProto): ValueInfoProto {
  const tensorType = info.type!.tensorType!;
  const shape = tensorType.shape && { dim: [{ dimParam: 'steps' }, ...tensorType.shape.dim] };
  return {
    ...info,
    name,
    type: { ...info.type, tensorType: { ...tensorType, shape } },
  } as ValueInfoProto;
}
