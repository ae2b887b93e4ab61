/**
 * onnxruntime's own messages, put in the project's form: what went wrong, with which model, node
 * or initializer, and the fix. onnxruntime writes its C++ source location and function signature
 * first (`model.cc:202 onnxruntime::Model::Model(onnx::ModelProto&&, ...) Unsupported model IR
 * version: 99, ...`); that is dropped. Messages not recognised here keep onnxruntime's wording
 * behind "onnxruntime cannot load" / "onnxruntime failed to run".
 *
 * The one place these translations live: session.ts words every load and run failure through
 * `ortLoadMessage` and `ortRunMessage`; model.ts adds `explainLoadError` for a user's model, whose
 * graph names the node and opset of an op onnxruntime does not know.
 */
import { describeNode } from '../onnx/validate.ts';
import { toNumber, type ModelProto } from '../onnx/proto.ts';

/** The model description used in messages: `'path.onnx'`, or the name of a graph teardown built. */
type Described = string;

/** onnxruntime's text without its status prefix, source location and C++ signature, on one line. */
export function cleanOrtMessage(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error))
    .replace(/^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*[A-Z_]+\s*:\s*/, '')
    .replace(/\s+/g, ' ')
    .trim();
  const located = SOURCE_LOCATION.exec(message);
  return located ? located[1].replace(SIGNATURE, '') : message;
}

/** `.../model.cc:202 ` before the text, and then the function it came from. */
const SOURCE_LOCATION = /^\S*\.(?:cc|cpp|h):\d+\s+(.*)$/;
/** `ns::Class::Method(args) [const] ` or a bare CamelCase function name. */
const SIGNATURE = /^(?:[\w:~]+::[\w~]+\([^)]*\)(?:\s*const)?|[A-Z][a-z]+(?:[A-Z][a-z0-9]*){2,})\s+/;

/** onnxruntime's wording of the refusals translated below. */
const IR_VERSION = /Unsupported model IR version: (\d+), max supported IR version: (\d+)/;
const RAW_DATA_SIZE = new RegExp(
  "Initializer '([^']*)': raw_data size \\((\\d+) bytes\\) does not match expected size " +
    'from shape and data type \\((\\d+) bytes\\)',
);
const NODE_FAILED = new RegExp(
  "^Non-zero status code returned while running (?:Fused)?(\\w+) node\\. Name:'(?:fused )?([^']*)' " +
    'Status Message: (.*)$',
);
const OUT_OF_MEMORY = /bad_alloc|Failed to allocate memory/i;

/** The message of a ModelError for a session onnxruntime refused to create. */
export function ortLoadMessage(error: unknown, describe: Described): string {
  const message = cleanOrtMessage(error);
  const ir = IR_VERSION.exec(message);
  if (ir) {
    return (
      `${describe} is ONNX IR version ${ir[1]}, and this onnxruntime reads IR versions up to ` +
      `${ir[2]}: export the model again with an exporter (or onnx package) that writes IR ` +
      `version ${ir[2]} or lower.`
    );
  }
  const raw = RAW_DATA_SIZE.exec(message);
  if (raw) {
    return (
      `Initializer '${raw[1]}' of ${describe} holds ${raw[2]} bytes of raw_data where its ` +
      `shape and type need ${raw[3]}: the file is damaged or cut short. Export the model again.`
    );
  }
  if (OUT_OF_MEMORY.test(message)) {
    return (
      `onnxruntime ran out of memory loading ${describe} (${message}): free memory, or use ` +
      'fewer --threads.'
    );
  }
  return `onnxruntime cannot load ${describe}: ${message}`;
}

/** The message of a ModelError for a run onnxruntime stopped. */
export function ortRunMessage(error: unknown, describe: Described): string {
  const message = cleanOrtMessage(error);
  const node = NODE_FAILED.exec(message);
  if (node) {
    const [, op, name, detail] = node;
    return (
      `onnxruntime stopped at node '${name}' (${op}) of ${describe}: ${cleanOrtMessage(detail)}. ` +
      'The inputs do not fit what this node computes with: check their shapes and values against ' +
      "the model's inputs (teardown hooks MODEL lists them)."
    );
  }
  if (OUT_OF_MEMORY.test(message)) {
    return (
      `onnxruntime ran out of memory running ${describe} (${message}): use a smaller ` +
      '--batch-size or fewer --threads.'
    );
  }
  return `onnxruntime failed to run ${describe}: ${message}`;
}

/** An opset or op of `proto` that onnxruntime refused, named by its node; undefined for other messages. */
export function explainLoadError(
  message: string,
  proto: ModelProto,
  modelName: string,
): string | undefined {
  const opset = /Opset (\d+) is under development.*?domain ([\w.]+) is till opset (\d+)/.exec(
    message,
  );
  if (opset) {
    return `${modelName} imports ${opset[2]} opset ${opset[1]}, but this onnxruntime supports up to opset ${opset[3]}: re-export it with an older opset (torch.onnx.export(..., opset_version=17)).`;
  }
  const unknownOp =
    /No Op registered for (\S+) with domain_version of (\d+)/.exec(message) ??
    /Fatal error: (?:([\w.]+):)?(\w+)\(-?\d+\) is not a registered function\/op/.exec(message);
  if (unknownOp) {
    const [opType, domain] = unknownOp[0].startsWith('No Op')
      ? [unknownOp[1], '']
      : [unknownOp[2], unknownOp[1] ?? ''];
    const index = proto.graph.node.findIndex(
      (node) =>
        node.opType === opType && (node.domain || '') === (domain === 'ai.onnx' ? '' : domain),
    );
    const node = index >= 0 ? describeNode(proto.graph.node[index], index) : `op '${opType}'`;
    const opsetVersion = toNumber(
      proto.opsetImport.find(
        (entry) => (entry.domain || '') === (domain === 'ai.onnx' ? '' : domain),
      )?.version,
    );
    return `${modelName} uses an op onnxruntime does not know: ${node}, ${domain || 'ai.onnx'} opset ${opsetVersion}. Re-export the model with standard ONNX ops (or register the custom op with the exporter's fallback disabled).`;
  }
  return undefined;
}
