/**
 * The hooks attribution patching patches position by position (`inspect --patch-from`): among
 * those named (default: every module hook), the sequence values [batch, seq, d] that are not
 * model outputs, in the order of the model's hooks.
 */
import { InputError } from '../errors.ts';
import type { Model } from '../runtime/model.ts';
import { probeHookShapes } from '../runtime/probe.ts';
import type { Feeds } from '../tensor.ts';

export async function sequenceHooks(
  model: Model,
  sample: Feeds,
  patterns?: string[],
): Promise<string[]> {
  const candidates = patterns
    ? model.hooks.match(patterns)
    : model.hooks.hooks.filter((hook) => hook.kind === 'module');
  const shapes = await probeHookShapes(model, sample, candidates);
  const isOutput = (name: string) => model.outputNames.includes(model.hooks.resolve(name).value);
  const hooks = [...shapes]
    .filter(([name, dims]) => dims.length === 3 && !isOutput(name))
    .map(([name]) => name);
  if (!hooks.length) {
    throw new InputError(
      '--patch-from patches hooks position by position: it needs sequence hooks [batch, seq, d] (a transformer); none of the inspected hooks has that shape.',
    );
  }
  return hooks;
}
