/**
 * The corpus table: per model and opset, the largest max|Δ| / max|reference| between teardown
 * and PyTorch over the outputs and module calls (run with cache '*') and over the outputs under
 * every intervention, with counts of what was compared and skipped. Not a test (test/corpus.test.ts
 * asserts the tolerance); a table for notes and reviews:
 *
 *   node --import tsx test/corpus/error-table.ts
 */
import { join } from 'node:path';
import { readNpy } from '../../src/data/npy.ts';
import { Model } from '../../src/runtime/model.ts';
import { runWithCache, runWithInterventions } from '../../src/runtime/run.ts';
import { relativeError } from '../../src/tensor.ts';
import {
  CORPUS,
  corpusManifest,
  corpusModels,
  counterparts,
  inputsOf,
  interventionOf,
} from '../corpus-oracle.ts';

console.log(
  '| model | opset | hooks compared (skipped) | max error, outputs + hooks | interventions compared (skipped) | max error, interventions |',
);
console.log('|---|---|---|---|---|---|');
for (const name of corpusModels()) {
  const dir = join(CORPUS, name);
  const manifest = corpusManifest(name);
  for (const [opset, file] of Object.entries(manifest.files)) {
    const model = Model.load(join(dir, file), { threads: 1 });
    const feeds = inputsOf(dir, manifest);
    const mapped = counterparts(model, manifest);
    const { outputs, cache } = await runWithCache(model, feeds, ['*']);
    let hookError = Math.max(
      ...manifest.outputs.map((output) =>
        relativeError(outputs[output.name], readNpy(join(dir, output.file))),
      ),
    );
    let hooks = 0;
    for (const hook of manifest.hooks) {
      const counterpart = mapped.get(hook.hook)!;
      if ('skip' in counterpart) continue;
      hooks++;
      hookError = Math.max(
        hookError,
        relativeError(cache.get(counterpart.hook)!, readNpy(join(dir, hook.file))),
      );
    }
    let interventionError = 0;
    let interventions = 0;
    for (const spec of manifest.interventions) {
      const counterpart = mapped.get(spec.hook)!;
      if ('skip' in counterpart) continue;
      interventions++;
      const result = await runWithInterventions(model, feeds, [
        interventionOf(dir, manifest, { ...spec, hook: counterpart.hook }),
      ]);
      for (const [output, expected] of Object.entries(spec.outputs))
        interventionError = Math.max(
          interventionError,
          relativeError(result.outputs[output], readNpy(join(dir, expected))),
        );
    }
    const skippedHooks = manifest.hooks.length - hooks;
    const skippedInterventions = manifest.interventions.length - interventions;
    console.log(
      `| ${name} | ${opset} | ${hooks} (${skippedHooks}) | ${hookError.toExponential(1)} | ${interventions} (${skippedInterventions}) | ${manifest.interventions.length ? interventionError.toExponential(1) : '–'} |`,
    );
    await model.release();
  }
}
