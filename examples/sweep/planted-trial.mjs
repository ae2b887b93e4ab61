#!/usr/bin/env node
// A stand-in for a user's training script, with a planted answer: it prints one JSON line,
//   {"metric": 3x + 0.5y + 0z + 0.1·(seed − 2) + noise(x, y, z, seed)}
// for x, y, z in [0, 1]: x matters most, y a little, z not at all; the seed shifts every
// configuration alike (0.1 per seed) and adds ±0.05 of its own per configuration. Arguments are
// key=value (x=0.3 y=0.7 z=0.1 seed=2); mode=crash|nan|hang makes a failed trial; sleep=MS waits
// first; log=FILE appends one line per run (tests count runs with it).
import { appendFileSync } from 'node:fs';

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => arg.split(/=(.*)/s).slice(0, 2)),
);
const [x, y, z, seed] = ['x', 'y', 'z', 'seed'].map((key) => Number(args[key] ?? 0));
if (args.log) appendFileSync(args.log, `${JSON.stringify({ x, y, z, seed })}\n`);
if (args.sleep) await new Promise((resolve) => setTimeout(resolve, Number(args.sleep)));
if (args.mode === 'crash') {
  console.error('Traceback (most recent call last):\nRuntimeError: loss is nan (planted crash)');
  process.exit(3);
}
if (args.mode === 'hang') await new Promise((resolve) => setTimeout(resolve, 60_000));

/** A uniform number in [−½, ½) from the configuration and the seed (a 32-bit integer hash). */
function noise() {
  let h = Math.imul(Math.round(x * 1e6) ^ 0x9e3779b9, 0x85ebca6b);
  for (const value of [y, z, seed])
    h = Math.imul(h ^ Math.round(value * 1e6), 0xc2b2ae35) ^ (h >>> 15);
  h = Math.imul(h ^ (h >>> 13), 0x85ebca6b);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32 - 0.5;
}

const metric =
  args.mode === 'nan' ? Number.NaN : 3 * x + 0.5 * y + 0 * z + 0.1 * (seed - 2) + 0.1 * noise();
console.log(`epoch 1 loss ${(1 / (1 + metric)).toFixed(3)}`);
// JSON.stringify writes NaN as null: the sweep records that trial as failed.
console.log(JSON.stringify({ metric, steps: 100 }));
