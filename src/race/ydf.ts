/**
 * Google's Yggdrasil Decision Forests (YDF), as the `ydf-training` package ships it: the C++
 * library compiled to WebAssembly, with a small JavaScript API (0.0.1: a learner by name, the
 * label column and the task; no hyperparameters, seed or time limit). YDF trains to its own
 * stopping rule in one synchronous call, so every model lives in a worker thread of its own:
 *   - the budget and the abort signal end training by ending the worker (nothing else can stop
 *     the call), and the event loop stays free meanwhile;
 *   - YDF's log lines (one per ten trees) arrive as it trains and become progress;
 *   - the module's WebAssembly memory, which only grows, goes with the worker (race/trees.ts
 *     releases it once the trees are read).
 * The worker is plain JavaScript (an `eval` worker), so it runs the same under tsx and from
 * dist/, and requires the package by the path resolved here.
 *
 *   const forest = await YdfForest.train('RandomForestLearner', matrix, order, limits);
 *   const files = await forest.savedFiles(); // the trees, for race/ydf-trees.ts
 *   const probabilities = await forest.probabilities(values, rows, classes); // YDF's own
 *   await forest.release();
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { InputError } from '../errors.ts';
import { gatherRows, type FeatureMatrix } from './contender.ts';

export type YdfLearner = 'GradientBoostedTreesLearner' | 'RandomForestLearner';

export interface YdfLimits {
  /** Wall-clock seconds from the call: past it, the worker ends and training is refused. */
  budgetSeconds: number;
  signal?: AbortSignal;
  /** Each line YDF logs while it trains (absl's prefix removed). */
  onLog?: (line: string) => void;
  /** The contender and its stopping rule, for the message when the budget runs out. */
  contender: string;
  stoppingRule: string;
}

/** Lines of YDF's log kept for error messages. */
const KEPT_LOG_LINES = 5;

/**
 * The worker: loads YDF, trains one model on the table it is sent (feature j as column f<j>, the
 * class index as a string label), then answers with its saved files or YDF's raw predictions.
 * Columns are plain arrays because the package takes nothing else (Array.isArray).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const log = (line) => parentPort.postMessage({ kind: 'log', line: String(line) });
const loading = require(workerData.library)({ print: log, printErr: log });
let model = null;
function table(values, rows, features) {
  const columns = {};
  for (let f = 0; f < features; f++) {
    const column = new Array(rows);
    for (let r = 0; r < rows; r++) column[r] = values[r * features + f];
    columns['f' + f] = column;
  }
  return columns;
}
parentPort.on('message', async (request) => {
  try {
    const ydf = await loading;
    if (request.kind === 'train') {
      const columns = table(request.values, request.rows, request.features);
      columns.label = Array.from(request.labels, String);
      model = new ydf[request.learner]('label', 'CLASSIFICATION').train(columns);
      const description = model.describe();
      parentPort.postMessage({ kind: 'trained', labelClasses: model.labelClasses, description });
    } else if (request.kind === 'save') {
      // The files model.save() zips, written without its console.log lines.
      const folder = '/model';
      model.internalModel.save(folder);
      const files = {};
      for (const name of ydf.FS.readdir(folder)) {
        if (name !== '.' && name !== '..') files[name] = ydf.FS.readFile(folder + '/' + name);
      }
      parentPort.postMessage({ kind: 'saved', id: request.id, files });
    } else {
      const rows = table(request.values, request.rows, request.features);
      const output = Float32Array.from(model.predict(rows));
      parentPort.postMessage({ kind: 'predicted', id: request.id, output }, [output.buffer]);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    parentPort.postMessage({ kind: 'failed', id: request.id, message });
  }
});
`;

type WorkerReply =
  | { kind: 'log'; line: string }
  | { kind: 'trained'; labelClasses: string[]; description: string }
  | { kind: 'predicted'; id: number; output: Float32Array }
  | { kind: 'saved'; id: number; files: Record<string, Uint8Array> }
  | { kind: 'failed'; id?: number; message: string };

const LEARNER_NAMES: Record<YdfLearner, string> = {
  GradientBoostedTreesLearner: "YDF's gradient-boosted trees",
  RandomForestLearner: "YDF's random forest",
};

/** A trained YDF model inside its worker. */
export class YdfForest {
  private nextRequest = 0;
  private readonly pending = new Map<
    number,
    { resolve: (answer: never) => void; reject: (error: Error) => void }
  >();

  private constructor(
    private readonly worker: Worker,
    private readonly features: number,
    /** The class index of each of YDF's output columns: its label dictionary's order. */
    readonly labelClasses: number[],
    /** Trees and nodes (splits and leaves) of the whole model, from YDF's description. */
    readonly trees: number,
    readonly nodes: number,
  ) {
    worker.on('message', (reply: WorkerReply) => {
      if (reply.kind === 'predicted') this.settle(reply.id)?.resolve(reply.output as never);
      if (reply.kind === 'saved') this.settle(reply.id)?.resolve(reply.files as never);
      if (reply.kind === 'failed' && reply.id !== undefined)
        this.settle(reply.id)?.reject(new Error(`YDF failed: ${reply.message}`));
    });
    worker.on('error', (error) => this.rejectAll(error));
    worker.on('exit', () => this.rejectAll(new Error('The YDF worker ended before it answered.')));
  }

  /** Trains on the matrix's rows in the given order (YDF's own seed is fixed: see trees.ts). */
  static async train(
    learner: YdfLearner,
    matrix: FeatureMatrix,
    order: readonly number[],
    limits: YdfLimits,
  ): Promise<YdfForest> {
    limits.signal?.throwIfAborted();
    const rows = rowsInOrder(matrix, order);
    const library = createRequire(import.meta.url).resolve('ydf-training');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { library } });
    try {
      const { labelClasses, description } = await trainedReply(
        worker,
        learner,
        matrix,
        rows,
        limits,
      );
      return new YdfForest(
        worker,
        matrix.features,
        labelClasses.map(Number),
        countIn(description, 'Number of trees'),
        countIn(description, 'Total number of nodes'),
      );
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  /**
   * Class probabilities [rows, classes], row-major. YDF answers, per row, one probability per
   * label in its dictionary's order (by frequency, not by value), or for two labels the
   * probability of the second alone; classes absent from the training rows get 0.
   */
  async probabilities(values: Float32Array, rows: number, classes: number): Promise<Float32Array> {
    const output = await this.predict(values, rows);
    const result = new Float32Array(rows * classes); // [rows, classes]
    const present = this.labelClasses;
    for (let r = 0; r < rows; r++) {
      if (present.length === 2) {
        result[r * classes + present[1]] = output[r];
        result[r * classes + present[0]] = 1 - output[r];
      } else {
        for (let k = 0; k < present.length; k++)
          result[r * classes + present[k]] = output[r * present.length + k];
      }
    }
    return result;
  }

  /** The model's files as YDF saves them (race/ydf-trees.ts reads them). */
  savedFiles(): Promise<Record<string, Uint8Array>> {
    return this.request({ kind: 'save' });
  }

  private predict(values: Float32Array, rows: number): Promise<Float32Array> {
    return this.request({ kind: 'predict', values, rows, features: this.features });
  }

  private request<T>(message: Record<string, unknown>): Promise<T> {
    const id = this.nextRequest++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (answer: never) => void, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  release(): Promise<void> {
    return this.worker.terminate().then(() => undefined);
  }

  private settle(id: number) {
    const waiting = this.pending.get(id);
    this.pending.delete(id);
    return waiting;
  }

  private rejectAll(error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }
}

/** Sends the rows to the worker; settles with its trained model, its failure, or the limits. */
function trainedReply(
  worker: Worker,
  learner: YdfLearner,
  matrix: FeatureMatrix,
  rows: { values: Float32Array<ArrayBuffer>; labels: Int32Array<ArrayBuffer> },
  limits: YdfLimits,
): Promise<Extract<WorkerReply, { kind: 'trained' }>> {
  const log: string[] = [];
  const name = LEARNER_NAMES[learner];
  return new Promise((resolve, reject) => {
    const onMessage = (reply: WorkerReply) => {
      if (reply.kind === 'log') {
        const line = reply.line.replace(/^[IWE]\d{4} [^\]]*\] /, '');
        log.push(line);
        if (log.length > KEPT_LOG_LINES) log.shift();
        limits.onLog?.(line);
      } else if (reply.kind === 'trained') {
        settle(() => resolve(reply));
      } else if (reply.kind === 'failed') {
        settle(() => reject(new Error(`${name} failed to train: ${reply.message}`)));
      }
    };
    const onError = (error: Error) =>
      settle(() => reject(new Error(`${name} failed to train: ${error.message}`)));
    const onExit = () =>
      settle(() =>
        reject(new Error(`${name} ended during training; its last log lines: ${log.join(' | ')}`)),
      );
    const onAbort = () => settle(() => reject(limits.signal!.reason));
    const timer = setTimeout(
      () => settle(() => reject(overBudget(learner, matrix, limits))),
      limits.budgetSeconds * 1000,
    );
    const settle = (finish: () => void) => {
      clearTimeout(timer);
      limits.signal?.removeEventListener('abort', onAbort);
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      finish();
    };
    limits.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    const { rows: count, features } = matrix;
    const { values, labels } = rows;
    worker.postMessage({ kind: 'train', learner, values, rows: count, features, labels }, [
      values.buffer,
      labels.buffer,
    ]);
  });
}

/** The rows of the matrix in `order`: values [rows, features] and labels, fresh copies. */
function rowsInOrder(matrix: FeatureMatrix, order: readonly number[]) {
  const values = gatherRows(matrix, order); // [rows, features]
  const labels = Int32Array.from(order, (row) => matrix.labels[row]);
  return { values, labels };
}

/** "Number of trees: 300" → 300, from YDF's model description. */
function countIn(description: string, field: string): number {
  const found = new RegExp(`${field}:\\s*(\\d+)`).exec(description);
  if (!found) throw new Error(`YDF's model description has no '${field}' line.`);
  return Number(found[1]);
}

function overBudget(learner: YdfLearner, matrix: FeatureMatrix, limits: YdfLimits): InputError {
  return new InputError(
    `${LEARNER_NAMES[learner]} had not finished after the ${limits.budgetSeconds} s budget on ` +
      `${matrix.rows} examples × ${matrix.features} features: YDF trains to its own stopping ` +
      `rule (${limits.stoppingRule}) and cannot stop part-way. Give a larger --budget, fewer ` +
      `rows (--fractions), or leave '${limits.contender}' out of --contenders.`,
  );
}
