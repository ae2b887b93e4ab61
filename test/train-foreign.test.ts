/**
 * Fine-tuning models teardown did not build (train/fine-tune.ts) against PyTorch: for corpus
 * models without a folded BatchNorm (LSTM and GRU included), at opsets 14 and 17, 20 full-batch SGD steps from the
 * exported weights give PyTorch's loss at every step and its final parameters
 * (test/corpus/make_finetune.py: the same steps in eval() mode on the same weights), each within
 * 1e-4 of max |reference| — GPT-2's tied lm_head included, whose saved copy must be the new wteᵀ.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readNpy } from '../src/data/npy.ts';
import { Model } from '../src/runtime/model.ts';
import { tensorFromProto } from '../src/onnx/tensor-proto.ts';
import { moveAxis, relativeError } from '../src/tensor.ts';
import { fineTunedModel, setUpFineTuning } from '../src/train/fine-tune.ts';
import { fineTuningPlan, globMatches, valuesUnderPyTorchNames } from '../src/train/foreign.ts';
import { CORPUS, corpusManifest, inputsOf } from './corpus-oracle.ts';

interface FineTuneOracle {
  lr: number;
  momentum: number;
  steps: number;
  target: string;
  losses: number[];
  params: Record<string, string>;
  /** Folded models: PyTorch trained the fused model (every parameter named here); its eval()-mode curve unfused. */
  fused?: boolean;
  parameters?: string[];
  losses_unfused?: number[];
  /** AdamW oracles (adamw.json). */
  optimizer?: 'sgd' | 'adamw';
  weight_decay?: number;
  betas?: [number, number];
  eps?: number;
}

const TOLERANCE = 1e-4;
const MODELS = [
  'bare_transformer',
  'encoder',
  'gpt2',
  'gru',
  'lstm',
  'norms',
  'token_classifier',
  'unet',
  'vit',
];
/** Exports with a BatchNorm folded into a Conv: the oracle is PyTorch training the fused model. */
const FOLDED = ['audio_conv1d', 'mobilenet_v3_small', 'resnet18'];

/** `layer1.0.conv1.weight (+layer1.0.bn1 folded)` → `layer1.0.conv1.weight`, the fused model's name. */
const fusedName = (name: string) => name.replace(/ \(\+.* folded\)$/, '');

/** The oracle's optimizer in teardown's terms (PyTorch's defaults where it names none). */
const optimizerOf = (oracle: FineTuneOracle) =>
  oracle.optimizer === 'adamw'
    ? {
        kind: 'adamw' as const,
        momentum: 0,
        weightDecay: oracle.weight_decay!,
        betas: oracle.betas!,
        eps: oracle.eps!,
      }
    : {
        kind: 'sgd' as const,
        momentum: oracle.momentum,
        weightDecay: 0,
        betas: [0.9, 0.999] as [number, number],
        eps: 1e-8,
      };

/** Fine-tunes `file` for the oracle's steps; checks its losses and saved parameters (under `rename`d PyTorch names) against the oracle's. */
async function checkFineTuning(
  dir: string,
  file: string,
  oracle: FineTuneOracle,
  expectedParameters: string[],
  rename: (name: string) => string,
  t: { diagnostic(message: string): void },
) {
  const manifest = corpusManifest(dir.split('/').at(-1)!);
  const feeds = inputsOf(dir, manifest);
  const target = readNpy(join(dir, oracle.target));
  const model = Model.load(file, { threads: 1 });
  const { plan, trainingModel, stepper } = await setUpFineTuning(
    model,
    {},
    feeds,
    target,
    { kind: 'cross-entropy' },
    optimizerOf(oracle),
    undefined,
    { threads: 1 },
  );
  try {
    // Every PyTorch parameter trains, under its name, and nothing else does.
    assert.deepEqual(
      [...new Set(plan.parameters.flatMap((p) => p.pytorchNames.map(rename)))].sort(),
      [...expectedParameters].sort(),
    );
    const state = stepper.initialState(trainingModel);
    const steps = Array.from({ length: oracle.steps }, (_, k) => ({
      feeds,
      target,
      lr: oracle.lr,
      t: k + 1,
    }));
    const losses = (await stepper.steps(state, steps)).map((step) => step.loss);
    const lossErrors = losses.map(
      (loss, k) => Math.abs(loss - oracle.losses[k]) / Math.abs(oracle.losses[k]),
    );
    lossErrors.forEach((error, k) =>
      assert.ok(
        error <= TOLERANCE,
        `step ${k + 1}: loss ${losses[k]} vs PyTorch ${oracle.losses[k]} (relative ${error.toExponential(2)})`,
      ),
    );
    const saved = fineTunedModel(model.proto, plan, state.parameters, []);
    const values = new Map(
      [...valuesUnderPyTorchNames(saved, plan)].map(([name, value]) => [rename(name), value]),
    );
    const parameterErrors = Object.entries(oracle.params).map(([parameter, path]) => {
      const error = relativeError(values.get(parameter)!, readNpy(join(dir, path)));
      assert.ok(
        error <= TOLERANCE,
        `${parameter} after ${oracle.steps} steps: relative error ${error.toExponential(2)}`,
      );
      return error;
    });
    t.diagnostic(
      `loss ${oracle.losses[0].toFixed(4)} -> ${oracle.losses.at(-1)!.toFixed(4)}; max relative error: losses ${Math.max(...lossErrors).toExponential(1)}, final parameters ${Math.max(...parameterErrors).toExponential(1)}`,
    );
    return { plan, saved, values, losses };
  } finally {
    await stepper.release();
    await trainingModel.release();
    await model.release();
  }
}

describe("fine-tuning a PyTorch export equals PyTorch's SGD steps in eval() mode", () => {
  for (const name of MODELS) {
    for (const opset of ['14', '17']) {
      it(`${name}, opset ${opset}`, async (t) => {
        const dir = join(CORPUS, name);
        const oraclePath = join(dir, 'finetune', 'finetune.json');
        assert.ok(existsSync(oraclePath), `${oraclePath} (make_finetune.py)`);
        const oracle = JSON.parse(readFileSync(oraclePath, 'utf8')) as FineTuneOracle;
        const manifest = corpusManifest(name);
        const { plan, saved, values } = await checkFineTuning(
          dir,
          join(dir, manifest.files[opset]),
          oracle,
          Object.keys(manifest.gradients.params),
          (n) => n,
          t,
        );
        for (const { copy, source } of plan.tied) {
          const stored = tensorFromProto(
            saved.graph.initializer.find((tensor) => tensor.name === copy)!,
          );
          assert.equal(
            relativeError(stored, moveAxis(values.get(source)!, 1, 0)),
            0,
            `the tied copy ${copy} holds the trained ${source}ᵀ`,
          );
        }
        if (name === 'gpt2')
          assert.equal(plan.tied.length, 1, "GPT-2's lm_head is a tied copy of wte");
      });
    }
  }
});

describe("fine-tuning an export with a folded BatchNorm equals PyTorch's SGD steps on the fused model, not on Conv and BatchNorm apart", () => {
  for (const name of FOLDED) {
    for (const opset of ['14', '17']) {
      it(`${name}, opset ${opset}`, async (t) => {
        const dir = join(CORPUS, name);
        const oracle = JSON.parse(
          readFileSync(join(dir, 'finetune', 'finetune.json'), 'utf8'),
        ) as FineTuneOracle;
        assert.ok(oracle.fused && oracle.parameters && oracle.losses_unfused);
        const { losses } = await checkFineTuning(
          dir,
          join(dir, corpusManifest(name).files[opset]),
          oracle,
          oracle.parameters!,
          fusedName,
          t,
        );
        // What PyTorch does in eval() mode with Conv and BatchNorm as separate parameters is another path.
        const gap = Math.max(
          ...losses.map(
            (loss, k) => Math.abs(loss - oracle.losses_unfused![k]) / oracle.losses_unfused![k],
          ),
        );
        assert.ok(
          gap > 1e-3,
          `unfused eval()-mode training differs (largest relative gap ${gap.toExponential(1)})`,
        );
      });
    }
  }

  it('audio_conv1d exported without constant folding: BatchNorm scale and bias train, its running statistics stay frozen, as PyTorch in eval()', async (t) => {
    const dir = join(CORPUS, 'audio_conv1d');
    const oracle = JSON.parse(
      readFileSync(join(dir, 'finetune', 'unfolded.json'), 'utf8'),
    ) as FineTuneOracle & { model: string };
    const { plan } = await checkFineTuning(
      dir,
      join(dir, oracle.model),
      oracle,
      Object.keys(corpusManifest('audio_conv1d').gradients.params),
      (n) => n,
      t,
    );
    assert.deepEqual(
      plan.frozen
        .filter((f) => f.reason === 'BatchNorm running statistic')
        .map((f) => f.initializer)
        .sort(),
      [
        'features.0.1.running_mean',
        'features.0.1.running_var',
        'features.1.1.running_mean',
        'features.1.1.running_var',
        'features.2.1.running_mean',
        'features.2.1.running_var',
      ],
    );
  });
});

describe("fine-tuning with AdamW equals PyTorch's torch.optim.AdamW steps in eval() mode", () => {
  for (const name of ['bare_transformer', 'token_classifier']) {
    for (const opset of ['14', '17']) {
      it(`${name}, opset ${opset}`, async (t) => {
        const dir = join(CORPUS, name);
        const oracle = JSON.parse(
          readFileSync(join(dir, 'finetune', 'adamw.json'), 'utf8'),
        ) as FineTuneOracle;
        const manifest = corpusManifest(name);
        await checkFineTuning(
          dir,
          join(dir, manifest.files[opset]),
          oracle,
          Object.keys(manifest.gradients.params),
          (n) => n,
          t,
        );
      });
    }
  }
});

describe('parameters the exporter merged (identical values, one initializer and Identity copies) train apart', () => {
  it("the gpt fixture's LayerNorms: one SGD step moves each by its own PyTorch gradient (test/fixtures/gpt)", async () => {
    const dir = fileURLToPath(new URL('./fixtures/gpt/', import.meta.url));
    const model = Model.load(join(dir, 'model.onnx'), { threads: 1 });
    const feeds = { [model.inputs[0].name]: readNpy(join(dir, 'input.npy')) };
    const target = readNpy(join(dir, 'target.npy'));
    const { plan, trainingModel, stepper } = await setUpFineTuning(
      model,
      {},
      feeds,
      target,
      { kind: 'cross-entropy' },
      optimizerOf({ momentum: 0 } as FineTuneOracle),
      undefined,
      { threads: 1 },
    );
    try {
      const merged = model.graph.nodes
        .filter(
          (node) => node.opType === 'Identity' && model.graph.initializerNames.has(node.input[0]),
        )
        .map((node) => node.output[0]);
      assert.ok(merged.length >= 4, `merged copies: ${merged.join(', ')}`);
      const state = stepper.initialState(trainingModel);
      const before = new Map(state.parameters);
      const [{ loss }] = await stepper.steps(state, [{ feeds, target, lr: 1, t: 1 }]);
      assert.ok(
        Math.abs(loss - JSON.parse(readFileSync(join(dir, 'loss.json'), 'utf8')).loss) <
          1e-5 * loss,
      );
      for (const parameter of plan.parameters.map((p) => p.initializer)) {
        const gradient = readNpy(join(dir, 'grad', 'param', `${parameter}.npy`));
        const moved = Float32Array.from(
          state.parameters.get(parameter)!.data as Float32Array,
          (value, k) => Number(before.get(parameter)!.data[k]) - value,
        ); // lr·g
        assert.ok(
          relativeError({ ...gradient, data: moved }, gradient) <= 1e-4,
          `${parameter}${merged.includes(parameter) ? ' (merged copy)' : ''}: step vs PyTorch's gradient ${relativeError({ ...gradient, data: moved }, gradient).toExponential(2)}`,
        );
      }
      const saved = fineTunedModel(model.proto, plan, state.parameters, []);
      assert.ok(
        merged.every((name) => saved.graph.initializer.some((t) => t.name === name)),
        'each merged parameter is saved as an initializer of its own',
      );
    } finally {
      await stepper.release();
      await trainingModel.release();
      await model.release();
    }
  });
});

describe('choosing what trains: --train / --freeze globs over PyTorch names', () => {
  const planOf = async (name: string, selection: Parameters<typeof fineTuningPlan>[1]) => {
    const model = Model.load(join(CORPUS, name, 'opset17.onnx'), { threads: 1 });
    try {
      return fineTuningPlan(model, selection);
    } finally {
      await model.release();
    }
  };

  it('globs: * spans dots, ? one character, everything else literal', () => {
    assert.ok(globMatches('layer1.*', 'layer1.0.conv1.weight'));
    assert.ok(globMatches('h.?.ln_1.weight', 'h.0.ln_1.weight'));
    assert.ok(!globMatches('h.?.ln_1.weight', 'h.10.ln_1.weight'));
    assert.ok(!globMatches('fc.weight', 'fcXweight'));
  });

  it("an LSTM layer's packed W, R, B train or stay frozen whole: a pattern matching part of one is refused", async () => {
    const frozen = await planOf('lstm', { freeze: ['rnn.*'] });
    assert.deepEqual([...new Set(frozen.parameters.flatMap((p) => p.pytorchNames))].sort(), [
      'embed.weight',
      'fc.bias',
      'fc.weight',
    ]);
    await assert.rejects(
      planOf('lstm', { freeze: ['rnn.*_reverse'] }),
      /matches some of the PyTorch parameters stored together in 'onnx::LSTM_\d+' \(rnn\.\w+_l0, .*rnn\.\w+_l0_reverse.*\) but not all/,
    );
  });

  it("GPT-2: --train 'wte.weight' trains the tied embedding (and with it lm_head) and nothing else", async () => {
    const plan = await planOf('gpt2', { train: ['wte.weight'] });
    assert.deepEqual(
      plan.parameters.map((p) => p.initializer),
      ['wte.weight'],
    );
    assert.equal(plan.tied.length, 1);
    assert.ok(
      plan.frozen.some(
        (f) => f.reason === 'not matched by --train' && f.initializer === 'wpe.weight',
      ),
    );
  });
});
