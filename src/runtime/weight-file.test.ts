import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ModelError } from '../errors.ts';
import { decodeModel } from '../onnx/proto.ts';
import { relativeError } from '../tensor.ts';
import { loadFixture } from '../../test/helpers.ts';
import { LoadedSessions, type Unloadable } from './loaded-sessions.ts';
import { Model } from './model.ts';
import { runWithCache } from './run.ts';

describe('sessions read the weights from the model file', () => {
  it('gpt fixture: mapped, its outputs and module values equal PyTorch, and an in-memory copy agrees', async () => {
    const fixture = loadFixture('gpt');
    const embedded = Model.fromProto(fixture.model.proto, 'embedded', { threads: 1 });
    after(() => Promise.all([fixture.model.release(), embedded.release()]));
    assert.ok(fixture.model.mapsWeights);
    assert.ok(!embedded.mapsWeights);
    const mapped = await runWithCache(fixture.model, { input: fixture.input }, fixture.activations);
    assert.ok(relativeError(mapped.outputs.output, fixture.output) < 1e-5);
    for (const name of fixture.activations)
      assert.ok(relativeError(mapped.cache.get(name)!, fixture.activation(name)) < 1e-5, name);
    const copied = await runWithCache(embedded, { input: fixture.input }, []);
    assert.ok(relativeError(mapped.outputs.output, copied.outputs.output) < 1e-6);
  });

  it('JavaScript reads the large weights from the file: the same bytes; a weight assigned anew is used instead', async () => {
    const fixture = loadFixture('gpt');
    after(() => fixture.model.release());
    const decoded = decodeModel(readFileSync(fixture.modelPath));
    fixture.model.proto.graph.initializer.forEach((tensor, k) =>
      assert.deepEqual(tensor.rawData, decoded.graph.initializer[k].rawData, tensor.name),
    );
    const before = await runWithCache(fixture.model, { input: fixture.input }, []);
    const embed = fixture.model.proto.graph.initializer.find(
      (tensor) => tensor.name === 'embed.weight',
    )!;
    embed.rawData = new Uint8Array(embed.rawData!.length); // every token embedded as zeros
    const zeroed = Model.fromProto(fixture.model.proto, 'zeroed', { threads: 1 });
    after(() => zeroed.release());
    const after_ = await runWithCache(zeroed, { input: fixture.input }, []);
    assert.ok(relativeError(after_.outputs.output, before.outputs.output) > 0.01);
    assert.deepEqual(embed.rawData, new Uint8Array(embed.rawData!.length));
  });

  it('an unloaded session loads again when it runs, with the same outputs', async () => {
    const fixture = loadFixture('gpt');
    after(() => fixture.model.release());
    const first = await runWithCache(fixture.model, { input: fixture.input }, ['blocks.1']);
    const { session } = await fixture.model.prepare({
      expose: [fixture.model.hooks.resolve('blocks.1').value],
      rewrites: [],
      inputTypes: new Map(),
    });
    assert.ok(session.idle);
    session.unload();
    const again = await runWithCache(fixture.model, { input: fixture.input }, ['blocks.1']);
    assert.deepEqual(again.outputs.output.data, first.outputs.output.data);
    assert.deepEqual(again.cache.get('blocks.1')!.data, first.cache.get('blocks.1')!.data);
  });

  it('refuses to make a session once the file changed since loading', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'teardown-weights-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(join(loadFixture('gpt').dir, 'model.onnx'), join(dir, 'model.onnx'));
    const model = Model.load(join(dir, 'model.onnx'), { threads: 1 });
    after(() => model.release());
    utimesSync(join(dir, 'model.onnx'), new Date(), new Date(Date.now() + 5000));
    await assert.rejects(
      runWithCache(model, { input: loadFixture('gpt').input }, []),
      (error: Error) =>
        error instanceof ModelError &&
        /changed or disappeared since it was loaded/.test(error.message),
    );
  });
});

describe('LoadedSessions', () => {
  const fake = (name: string, log: string[], running = false): Unloadable => ({
    idle: !running,
    unload: () => log.push(name),
  });

  it('unloads the least recently used idle sessions until the rest fit, never the one in use or a running one', () => {
    const log: string[] = [];
    const loaded = new LoadedSessions(100);
    const [a, b, c, busy] = [
      fake('a', log),
      fake('b', log),
      fake('c', log),
      fake('busy', log, true),
    ];
    loaded.use(busy, 40);
    loaded.use(a, 30);
    loaded.use(b, 30);
    assert.deepEqual(log, []);
    loaded.use(a, 30); // a is now the most recent
    loaded.use(c, 60); // 160 > 100: busy is running, b is the least recent idle one, then a
    assert.deepEqual(log, ['b', 'a']);
    assert.equal(loaded.loadedBytes, 100);
    loaded.use(c, 200); // alone over the limit: kept, as it is the one in use
    assert.deepEqual(log, ['b', 'a']);
  });

  it('unloads the largest idle session first, so that a cycle slightly over the limit reloads two sessions a pass, not all', () => {
    // The scale bench's cache: seven segments whose weights add up to 0.05% over the bound.
    const sizes = [218, 69, 57, 66, 66, 19, 154];
    const bound = sizes.reduce((sum, size) => sum + size, 0) - 0.3;
    const log: string[] = [];
    const segments = sizes.map((_, s) => fake(`segment ${s + 1}`, log));
    const loaded = new LoadedSessions(bound);
    const unloadsPerPass: number[] = [];
    for (let pass = 0; pass < 4; pass++) {
      const before = log.length;
      for (const [s, segment] of segments.entries()) loaded.use(segment, sizes[s]);
      unloadsPerPass.push(log.length - before);
      assert.ok(loaded.loadedBytes <= bound);
    }
    // Least recently used first unloaded the next segment needed each time: seven a pass.
    assert.deepEqual(unloadsPerPass, [1, 2, 2, 2]);
    assert.deepEqual(log.slice(0, 3), ['segment 1', 'segment 7', 'segment 1']);
  });
});
