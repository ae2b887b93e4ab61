/**
 * The opset gradient graphs are built at. Their rules use ops of opset 16 (scatter-add through
 * ScatterElements/ScatterND `reduction`) and 14 (training-mode BatchNormalization), but PyTorch 1.13
 * exports opset 14 by default. Every ai.onnx op of opsets 13–15 means the same at opset 17 with the
 * attributes an exporter writes: the changes in between add types, attributes whose defaults keep
 * the old behaviour (Reshape's allowzero, Shape's start/end, BatchNormalization's training_mode,
 * LSTM/GRU/RNN's layout, Scatter*'s reduction) or new ops — except RoiAlign, whose default
 * coordinate_transformation_mode changed at 16. So a model of opset 13–15 is differentiated as the
 * same model importing opset 17. Below 13, Squeeze/Unsqueeze/Split/ReduceSum took axes as
 * attributes: such a model must be re-exported.
 */
import { AutodiffError } from './errors.ts';
import { defaultOpset } from '../onnx/model-file.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { derive } from '../graph/edit.ts';
import Long from 'long';

export const GRADIENT_OPSET = 17;
export const LOWEST_UPGRADABLE = 13;
/** From this opset on, a model is differentiated at its own opset (its scatter-adds exist there). */
export const OWN_OPSET_FROM = 16;
/** The newest opset whose op signatures the rules read and emit (checked by autodiff/opsets.test.ts). */
export const NEWEST_CHECKED_OPSET = 23;

/** The model as gradient graphs see it: unchanged at opset ≥ 16, importing opset 17 from 13–15. */
export function gradientProto(proto: ModelProto): ModelProto {
  const opset = defaultOpset(proto);
  if (opset >= OWN_OPSET_FROM) return proto;
  if (opset < LOWEST_UPGRADABLE) {
    throw new AutodiffError(
      `Gradients need ai.onnx opset ${LOWEST_UPGRADABLE} or later; this model imports opset ${opset}, whose Squeeze, Unsqueeze, Split and ReduceSum take their axes as attributes. Re-export it with opset_version=17 (torch.onnx.export(..., opset_version=17)).`,
    );
  }
  const roiAlign = proto.graph.node.find(
    (node) =>
      node.opType === 'RoiAlign' &&
      !node.attribute.some((attribute) => attribute.name === 'coordinate_transformation_mode'),
  );
  if (roiAlign) {
    throw new AutodiffError(
      `Node '${roiAlign.name}' (RoiAlign, opset ${opset}) relies on a default that changed at opset 16, so gradients cannot be built at opset ${GRADIENT_OPSET}: re-export the model with opset_version=17.`,
    );
  }
  const opsetImport = proto.opsetImport.map((entry) =>
    entry.domain === '' || entry.domain === 'ai.onnx'
      ? derive(entry, { version: Long.fromNumber(GRADIENT_OPSET) })
      : entry,
  );
  return derive(proto, { opsetImport });
}
