/**
 * add (a steering vector) and project-out, checked against closed forms on a hand-built linear
 * model: h = x·W + b, y = h·U, with x [batch, seq, 4]. Adding v at positions P gives
 * y' = y + (v·U) at P; projecting out d̂ gives h' = h − (h·d̂)d̂, so h'·d̂ = 0 and h' − (h'·ê)ê is h's
 * orthogonal part unchanged.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { GraphBuilder } from './builder.ts';
import { addVector, projectOut } from './interventions.ts';
import { Model } from '../runtime/model.ts';
import { runWithInterventions } from '../runtime/run.ts';
import { InterventionError } from '../errors.ts';
import { floatTensor, type Tensor } from '../tensor.ts';

const [batch, seq, width, classes] = [2, 3, 4, 2];
const W = [0.5, -1, 0.25, 2, 1, 0, -0.5, 0.3, -0.2, 0.7, 1.5, 0, 0.1, 0.9, -1.1, 0.4];
const b = [0.1, -0.2, 0.3, 0];
const U = [1, -1, 0.5, 2, -0.3, 0.8, 1.2, 0.1];
const x = floatTensor(
  [batch, seq, width],
  Array.from({ length: batch * seq * width }, (_, i) => Math.sin(1.7 * i) * 2),
);

function linearModel(opset: number): Model {
  const g = new GraphBuilder('linear', opset);
  const input = g.input('x', 'float32', ['batch', seq, width]);
  const product = g.node('MatMul', [input, g.initializer('W', floatTensor([width, width], W))]);
  g.node('Add', [product, g.initializer('b', floatTensor([width], b))], {}, '/h', 'h');
  g.node('MatMul', ['h', g.initializer('U', floatTensor([width, classes], U))], {}, '/y', 'y');
  g.output('y', 'float32');
  return Model.fromProto(g.build(), `linear (opset ${opset})`, { threads: 1 });
}

/** h by hand in float64: [batch·seq][width]. */
function hByHand(): number[][] {
  return Array.from({ length: batch * seq }, (_, row) =>
    Array.from({ length: width }, (_, j) => {
      let sum = b[j];
      for (let i = 0; i < width; i++) sum += Number(x.data[row * width + i]) * W[i * width + j];
      return sum;
    }),
  );
}
const yOf = (h: number[]) =>
  Array.from({ length: classes }, (_, c) =>
    h.reduce((sum, value, j) => sum + value * U[j * classes + c], 0),
  );
const dot = (a: number[], d: number[]) => a.reduce((sum, value, j) => sum + value * d[j], 0);

function assertRowsClose(actual: Tensor, expected: number[][], tolerance = 1e-5): void {
  const flat = expected.flat();
  assert.equal(actual.data.length, flat.length);
  flat.forEach((value, i) =>
    assert.ok(
      Math.abs(Number(actual.data[i]) - value) <= tolerance,
      `element ${i}: ${actual.data[i]} vs ${value}`,
    ),
  );
}

for (const opset of [11, 17]) {
  describe(`add and project-out on a linear model (opset ${opset})`, () => {
    const model = linearModel(opset);
    after(() => model.release());
    const v = [1.5, -2, 0.5, 3];
    const d = [2, 1, -1, 0.5];
    const norm = Math.hypot(...d);
    const dHat = d.map((value) => value / norm);

    it('add puts v on every position: y + v·U', async () => {
      const { outputs } = await runWithInterventions(model, { x }, [addVector('h', v)]);
      assertRowsClose(
        outputs.y,
        hByHand().map((h) => yOf(h.map((value, j) => value + v[j]))),
      );
    });

    it('add at chosen positions leaves the others alone', async () => {
      const { outputs, cache } = await runWithInterventions(
        model,
        { x },
        [addVector('h', v, { positions: [-1] })],
        { cache: ['h'] },
      );
      const expected = hByHand().map((h, row) =>
        row % seq === seq - 1 ? h.map((value, j) => value + v[j]) : h,
      );
      assertRowsClose(cache.get('h')!, expected);
      assertRowsClose(outputs.y, expected.map(yOf));
    });

    it('project-out leaves h·d̂ = 0 and the orthogonal part unchanged', async () => {
      const { cache } = await runWithInterventions(model, { x }, [projectOut('h', d)], {
        cache: ['h'],
      });
      const edited = cache.get('h')!;
      hByHand().forEach((h, row) => {
        const after = Array.from(
          edited.data.subarray(row * width, (row + 1) * width) as Float32Array,
        );
        assert.ok(Math.abs(dot(after, dHat)) < 1e-5, `row ${row}: h'·d̂ = ${dot(after, dHat)}`);
        const orthogonal = h.map((value, j) => value - dot(h, dHat) * dHat[j]);
        after.forEach((value, j) => assert.ok(Math.abs(value - orthogonal[j]) < 1e-5));
      });
    });

    it('project-out at a position only changes that position', async () => {
      const { cache } = await runWithInterventions(
        model,
        { x },
        [projectOut('h', d, { positions: [0] })],
        { cache: ['h'] },
      );
      const expected = hByHand().map((h, row) =>
        row % seq === 0 ? h.map((value, j) => value - dot(h, dHat) * dHat[j]) : h,
      );
      assertRowsClose(cache.get('h')!, expected);
    });

    it('refuses a direction of the wrong length, a zero direction and units', async () => {
      await assert.rejects(
        runWithInterventions(model, { x }, [projectOut('h', [1, 2])]),
        /has 2 values but the hook has 4 units/,
      );
      await assert.rejects(
        runWithInterventions(model, { x }, [projectOut('h', [0, 0, 0, 0])]),
        InterventionError,
      );
      await assert.rejects(
        runWithInterventions(model, { x }, [
          { kind: 'project-out', hook: 'h', direction: d, units: [0] } as never,
        ]),
        /takes no units/,
      );
    });
  });
}
