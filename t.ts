import { train } from './src/train/trainer.ts';
import { DEFAULT_OPTIMIZER } from './src/train/spec.ts';
const t0 = Date.now();
const result = await train({ task: 'mnist', taskOptions: {}, model: 'mlp:hidden=128', optimizer: { ...DEFAULT_OPTIMIZER }, lr: 1e-3, schedule: { warmupSteps: 0, cosine: false }, steps: 500, batch: 64, seed: 0, evalEvery: 100 }, { runtime: { threads: 1 } });
for (const p of result.curve) console.log(JSON.stringify(p));
console.log('seconds', (Date.now() - t0) / 1000);
