/**
 * Importance by mean ablation run on the part of the graph downstream of each hook, on a GPT-2
 * export whose attention reshapes to a target computed from `Shape` (shape arithmetic in the cut):
 * the part is fed that arithmetic at the stacked size, and must give exactly what ablating the
 * hook in the whole model gives (forced by an explicit unit axis, which runs whole-model sweeps).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import { runWithCache } from '../src/runtime/run.ts';
import { unitImportance } from '../src/inspect/importance.ts';
import { unitAxisOf } from '../src/graph/units.ts';
import { RowSum } from '../src/tensor-math.ts';
import { sliceRows } from '../src/tensor.ts';

const dir = fileURLToPath(new URL('./corpus/gpt2', import.meta.url));

describe('importance on downstream parts with shape arithmetic in their cut', () => {
  it('equals whole-model ablation, hook by hook and unit by unit (GPT-2 corpus model)', async () => {
    const model = Model.load(join(dir, 'opset17.onnx'), { threads: 1 });
    const tokens = readNpy(join(dir, 'inputs/input_ids.npy'));
    const data = {
      examples: tokens.dims[0],
      read: (start: number, end: number) => ({ input_ids: sliceRows(tokens, start, end) }),
    };
    const hooks = ['/h.0/attn/Softmax_output_0', 'h.1.mlp.c_fc'].map((name) =>
      model.hooks.resolve(name),
    );
    const part = await model.downstream(hooks[0].value, 'logits');
    assert.ok(
      part?.inputs.some((value) => !model.graph.isActivation(value)),
      "the first hook's downstream part reads shape arithmetic",
    );
    const { cache } = await runWithCache(
      model,
      data.read(0, data.examples),
      hooks.map((hook) => hook.name),
    );
    const means = new Map(
      hooks.map((hook) => {
        const sum = new RowSum();
        sum.add(cache.get(hook.name)!);
        return [hook.name, sum.mean('float32')];
      }),
    );
    const axes = hooks.map((hook) => unitAxisOf(hook, cache.get(hook.name)!.dims.length));
    const unitCounts = new Map(
      hooks.map((hook, h) => [hook.name, cache.get(hook.name)!.dims[axes[h]]]),
    );
    const metric = { kind: 'output-change' } as const;
    const viaParts = await unitImportance(
      model,
      data,
      undefined,
      hooks,
      means,
      unitCounts,
      metric,
      { batchSize: 4 },
    );
    for (const [h, hook] of hooks.entries()) {
      const [whole] = await unitImportance(
        model,
        data,
        undefined,
        [hook],
        means,
        unitCounts,
        metric,
        { batchSize: 4, unitAxis: axes[h] },
      );
      const scale = Math.max(
        ...whole.units.map((unit) => Math.abs(unit.importance)),
        whole.wholeHook.importance,
      );
      assert.ok(scale > 0);
      viaParts[h].units.forEach((unit, u) =>
        assert.ok(
          Math.abs(unit.importance - whole.units[u].importance) <= 1e-4 * scale,
          `${hook.name} unit ${u}: ${unit.importance} vs ${whole.units[u].importance}`,
        ),
      );
      assert.ok(
        Math.abs(viaParts[h].wholeHook.importance - whole.wholeHook.importance) <= 1e-4 * scale,
      );
    }
    await model.release();
  });
});
