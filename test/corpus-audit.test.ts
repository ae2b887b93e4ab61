/**
 * `teardown audit` on every classifier of the conformance corpus (opset 17), every input given by
 * name. The labels are PyTorch's own predictions (argmax of its recorded logits), so the audit
 * must find the model 100% accurate: anything less means it fed, batched or scored the model
 * differently from PyTorch.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { encodeNpy, readNpy } from '../src/data/npy.ts';
import { predictedClasses } from '../src/tensor-math.ts';
import { tensor } from '../src/tensor.ts';
import { CORPUS, corpusManifest, corpusModels } from './corpus-oracle.ts';
import { tempDir } from './model-files.ts';

const BIN = fileURLToPath(new URL('../bin/teardown.js', import.meta.url));

describe('teardown audit on the corpus classifiers', () => {
  for (const name of corpusModels().filter((model) => corpusManifest(model).classifier)) {
    it(`${name}: exit 0, 100% accurate against PyTorch's own predictions`, () => {
      const dir = join(CORPUS, name);
      const manifest = corpusManifest(name);
      const work = tempDir();
      const logits = readNpy(join(dir, manifest.outputs[0].file));
      writeFileSync(
        join(work, 'labels.npy'),
        encodeNpy(tensor('int64', [logits.dims[0]], Array.from(predictedClasses(logits)))),
      );
      const inputs = manifest.inputs.flatMap((input) => [
        '--input',
        `${input.name}=${join(dir, input.file)}`,
      ]);
      const result = spawnSync(
        process.execPath,
        [
          BIN,
          'audit',
          join(dir, manifest.files['17']),
          ...inputs,
          '--labels',
          'labels.npy',
          '--json',
          'audit.json',
        ],
        { cwd: work, encoding: 'utf8' },
      );
      assert.equal(result.status, 0, result.stderr);
      const audit = JSON.parse(readFileSync(join(work, 'audit.json'), 'utf8'));
      assert.equal(audit.accuracy.data.value, 1);
    });
  }
});
