/**
 * The library's audit tests a table column given as an attribute as `teardown audit` does, with a
 * counterfactual of its own: a classifier that reads only the binary column 'group' flips every
 * prediction when the column is flipped, and the audit says so without being told the transform.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { audit, Tensor } from '../index.ts';

it('flags reliance on a binary column given as an attribute, with the flip counterfactual it implies', async () => {
  const n = 200;
  // Features (x, group): x is noise, group alternates 0/1; the label is group for 90% of rows.
  const features = Float32Array.from({ length: 2 * n }, (_, k) =>
    k % 2 === 0 ? ((k * 37) % 101) / 101 : Math.floor(k / 2) % 2,
  );
  const inputs = new Tensor('float32', [n, 2], features);
  const group = Array.from({ length: n }, (_, row) => row % 2);
  const labels = group.map((g, row) => (row % 10 === 0 ? 1 - g : g));
  // The classifier reads the group column only: P(class 1) = 0.9 where group = 1, 0.1 elsewhere.
  const byGroup = {
    classes: 2,
    predictProba: (batch: Tensor) =>
      Array.from({ length: batch.dims[0] }, (_, row) =>
        batch.at(row, 1) === 1 ? [0.1, 0.9] : [0.9, 0.1],
      ).flat(),
  };
  const result = await audit(byGroup, {
    inputs,
    labels,
    featureNames: ['x', 'group'],
    attributes: { group },
  });
  const finding = result.findings.find(
    (f) => f.detector === 'shortcut-attribute' && f.attribute === 'group',
  );
  assert.ok(
    finding,
    JSON.stringify(result.findings.map((f) => [f.detector, f.attribute ?? f.feature])),
  );
  assert.equal(finding.metric.value, 1, 'flipping the column flips every prediction');
});
