/**
 * onnxruntime's refusals to load a model, reworded to say which node, which op, which opset,
 * and what to do. Unrecognised messages pass through as onnxruntime wrote them.
 */
import { describeNode } from '../onnx/validate.ts';
import { toNumber, type ModelProto } from '../onnx/proto.ts';

export function explainLoadError(message: string, proto: ModelProto, modelName: string): string | undefined {
  const opset = /Opset (\d+) is under development.*?domain ([\w.]+) is till opset (\d+)/.exec(message);
  if (opset) {
    return `${modelName} imports ${opset[2]} opset ${opset[1]}, but this onnxruntime supports up to opset ${opset[3]}: re-export it with an older opset (torch.onnx.export(..., opset_version=17)).`;
  }
  const unknownOp = /No Op registered for (\S+) with domain_version of (\d+)/.exec(message) ?? /Fatal error: (?:([\w.]+):)?(\w+)\(-?\d+\) is not a registered function\/op/.exec(message);
  if (unknownOp) {
    const [opType, domain] = unknownOp[0].startsWith('No Op') ? [unknownOp[1], ''] : [unknownOp[2], unknownOp[1] ?? ''];
    const index = proto.graph.node.findIndex((node) => node.opType === opType && (node.domain || '') === (domain === 'ai.onnx' ? '' : domain));
    const node = index >= 0 ? describeNode(proto.graph.node[index], index) : `op '${opType}'`;
    const opsetVersion = toNumber(proto.opsetImport.find((entry) => (entry.domain || '') === (domain === 'ai.onnx' ? '' : domain))?.version);
    return `${modelName} uses an op onnxruntime does not know: ${node}, ${domain || 'ai.onnx'} opset ${opsetVersion}. Re-export the model with standard ONNX ops (or register the custom op with the exporter's fallback disabled).`;
  }
  return undefined;
}
