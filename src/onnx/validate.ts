/**
 * Structural checks of a ModelProto before onnxruntime sees it, so that the common defects get a
 * message naming the node, its op and what is wrong (onnxruntime's own messages are terse).
 * onnxruntime still has the last word on op support; runtime/ words its refusals.
 */
import { ModelError } from '../errors.ts';
import { toNumber, type ModelProto, type NodeProto } from './proto.ts';

export function describeNode(node: NodeProto, index: number): string {
  const domain = node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.` : '';
  return `node '${node.name || `#${index}`}' (${domain}${node.opType || '<no op_type>'})`;
}

export function validateModel(proto: ModelProto, path: string): void {
  const graph = proto.graph;
  const domains = new Map(
    proto.opsetImport.map((opset) => [
      opset.domain === 'ai.onnx' ? '' : opset.domain,
      toNumber(opset.version),
    ]),
  );
  const defined = new Set<string>([
    ...graph.input.map((v) => v.name),
    ...graph.initializer.map((t) => t.name),
  ]);
  graph.node.forEach((node, index) => {
    const where = `${describeNode(node, index)} in '${path}'`;
    if (!node.opType)
      throw new ModelError(
        `The ${where} has no op_type: the file is damaged or was written by a broken exporter.`,
      );
    const domain = node.domain === 'ai.onnx' ? '' : node.domain;
    if (!domains.has(domain)) {
      throw new ModelError(
        `The ${where} uses domain '${domain || 'ai.onnx'}', which the model does not import (opset_import has ${[...domains.keys()].map((d) => `'${d || 'ai.onnx'}'`).join(', ')}): re-export the model.`,
      );
    }
    for (const input of node.input) {
      if (input !== '' && !defined.has(input)) {
        throw new ModelError(
          `The ${where} reads value '${input}', which no graph input, initializer or earlier node defines: the graph is not topologically sorted or is missing a node. Re-export the model.`,
        );
      }
    }
    for (const output of node.output) {
      if (output === '') continue;
      if (defined.has(output))
        throw new ModelError(
          `The ${where} redefines value '${output}': every value must be produced once. Re-export the model.`,
        );
      defined.add(output);
    }
  });
  for (const output of graph.output) {
    if (!defined.has(output.name))
      throw new ModelError(
        `Graph output '${output.name}' of '${path}' is produced by no node: re-export the model.`,
      );
  }
}
