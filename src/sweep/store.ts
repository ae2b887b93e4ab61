/**
 * The sweep's store: one SQLite file, DIR/sweep.db (better-sqlite3, WAL mode, so other processes
 * read it while the sweep writes). Every planned trial is a row from the start, unique by
 * (configuration, seed), and moves pending → running → done | failed; each change is its own
 * committed statement, so a coordinator killed at any moment leaves a store that `--resume`
 * continues: running rows go back to pending, finished rows stay. A result for a row that is
 * already finished (a late duplicate from a worker thought dead) is discarded and counted. A new
store appears whole (see createStoreFile).
 *
 * better-sqlite3 is a native module: it is imported here, when a store is opened, and never by
 * `import 'backprop-teardown'` or the other commands.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { InputError } from '../errors.ts';
import { OUTPUT_MARKER } from '../files.ts';
import type { Configuration, Params, PlannedTrial } from './plan.ts';
import type { SweepSpec } from './spec.ts';

export type TrialStatus = 'pending' | 'running' | 'done' | 'failed';

export interface TrialRecord {
  id: number;
  configuration: number;
  seed: number;
  params: Params;
  status: TrialStatus;
  metric: number | null;
  seconds: number | null;
  worker: string | null;
  /** Why a failed trial failed, with the tail of its standard error. */
  error: string | null;
  /** Learning curve of a teardown training trial: [step, metric value] pairs. */
  curve: [number, number][] | null;
}

/** What a trial reports when it ends. */
export interface TrialOutcome {
  status: 'done' | 'failed';
  metric: number | null;
  seconds: number;
  error?: string;
  curve?: [number, number][];
}

export interface StoreCounts {
  pending: number;
  running: number;
  done: number;
  failed: number;
  /** Late results discarded because their trial had already finished. */
  duplicates: number;
}

export const STORE_FILE = 'sweep.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
  id INTEGER PRIMARY KEY,
  configuration INTEGER NOT NULL,
  seed INTEGER NOT NULL,
  params TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'running', 'done', 'failed')),
  metric REAL,
  seconds REAL,
  worker TEXT,
  error TEXT,
  curve TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  finished_at TEXT,
  UNIQUE (configuration, seed)
);
CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY);`;

type Database = BetterSqlite3.Database;

export class SweepStore {
  private constructor(private readonly db: Database) {}

  /**
   * Opens DIR/sweep.db for this spec: a new store (DIR new or empty) with every planned trial
   * pending, or, with `resume`, the store a sweep of the same spec left, its running trials pending
   * again. Refuses a DIR that already holds a sweep without `resume`, and a resume of another spec
   * or other `settings` (what else the trials' results depend on: smoke size, threads).
   */
  static async open(
    dir: string,
    spec: SweepSpec,
    plan: { configurations: Configuration[]; trials: PlannedTrial[] },
    resume: boolean,
    settings: Record<string, unknown> = {},
  ): Promise<SweepStore> {
    const path = join(dir, STORE_FILE);
    const exists = existsSync(path);
    if (exists && !resume) {
      throw new InputError(
        `--out '${dir}' already holds a sweep (${STORE_FILE}): add --resume to continue it, or give another folder.`,
      );
    }
    if (!exists && resume) {
      throw new InputError(
        `--resume: '${dir}' holds no sweep (${STORE_FILE} is missing): drop --resume to start one there.`,
      );
    }
    mkdirSync(dir, { recursive: true });
    if (!exists) await createStoreFile(path, spec, plan, settings);
    const store = new SweepStore(await openDatabase(path));
    if (exists) store.checkSame(spec, settings, dir);
    if (!existsSync(join(dir, OUTPUT_MARKER)))
      writeFileSync(
        join(dir, OUTPUT_MARKER),
        'A sweep written by teardown (teardown sweep --resume continues it).\n',
      );
    return store;
  }

  /** Opens an existing store read-only (while a sweep runs, or after). */
  static async read(dir: string): Promise<SweepStore> {
    const path = join(dir, STORE_FILE);
    if (!existsSync(path))
      throw new InputError(`'${dir}' holds no sweep: ${STORE_FILE} is missing.`);
    return new SweepStore(await openDatabase(path, true));
  }

  private checkSame(spec: SweepSpec, settings: Record<string, unknown>, dir: string): void {
    const specField = firstDifference(this.meta('spec'), spec);
    if (specField !== undefined) {
      throw new InputError(
        `--resume: the sweep in '${dir}' was started with another spec (field ` +
          `'${specField}' differs): resume with the same SPEC.json, or give another --out.`,
      );
    }
    const setting = firstDifference(this.meta('settings') ?? '{}', settings);
    if (setting !== undefined) {
      throw new InputError(
        `--resume: the sweep in '${dir}' was started with ${setting} ` +
          `${JSON.stringify(JSON.parse(this.meta('settings') ?? '{}')[setting])}, not ` +
          `${JSON.stringify(settings[setting])}: resume with the same --${setting}.`,
      );
    }
  }

  /** A crashed or killed coordinator's running trials, back to pending; how many. */
  requeueRunning(): number {
    return this.db
      .prepare("UPDATE trials SET status = 'pending', worker = NULL WHERE status = 'running'")
      .run().changes;
  }

  pendingTrials(): TrialRecord[] {
    return this.select("WHERE status = 'pending' ORDER BY id");
  }

  trials(): TrialRecord[] {
    return this.select('ORDER BY id');
  }

  markRunning(id: number, worker: string): void {
    this.db
      .prepare(
        "UPDATE trials SET status = 'running', worker = ?, attempts = attempts + 1 WHERE id = ?",
      )
      .run(worker, id);
  }

  /** Back to pending (its worker was stopped before it finished). */
  markPending(id: number): void {
    this.db
      .prepare(
        "UPDATE trials SET status = 'pending', worker = NULL WHERE id = ? AND status = 'running'",
      )
      .run(id);
  }

  /** Records a result; false (and counted) when the trial had already finished. */
  record(id: number, outcome: TrialOutcome, worker: string): boolean {
    const finished = this.db
      .prepare(
        `UPDATE trials SET status = ?, metric = ?, seconds = ?, error = ?, curve = ?, worker = ?,
       finished_at = datetime('now') WHERE id = ? AND status IN ('pending', 'running')`,
      )
      .run(
        outcome.status,
        outcome.metric,
        outcome.seconds,
        outcome.error ?? null,
        outcome.curve ? JSON.stringify(outcome.curve) : null,
        worker,
        id,
      );
    if (finished.changes === 1) return true;
    this.db
      .prepare("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'duplicates'")
      .run();
    return false;
  }

  /**
   * Records the result of one run of a trial, named by `run` (unique per run, chosen by the
   * worker): 'seen' when this run was recorded before (a result read back twice, e.g. by a
   * coordinator resumed between recording it and removing it from the queue), else as `record`:
   * 'recorded', or 'duplicate' (counted) when the trial had already finished.
   */
  recordRun(
    run: string,
    id: number,
    outcome: TrialOutcome,
    worker: string,
  ): 'recorded' | 'duplicate' | 'seen' {
    return this.db.transaction(() => {
      const seen = this.db.prepare('INSERT OR IGNORE INTO runs (run) VALUES (?)').run(run);
      if (seen.changes === 0) return 'seen' as const;
      return this.record(id, outcome, worker) ? ('recorded' as const) : ('duplicate' as const);
    })();
  }

  /** The sweep's key on a queue (job ids `<key>-<trial id>`): made once, kept in meta. */
  queueKey(): string {
    const stored = this.meta('queueKey');
    if (stored !== undefined) return stored;
    const key = randomUUID();
    this.db.prepare("INSERT INTO meta (key, value) VALUES ('queueKey', ?)").run(key);
    return key;
  }

  counts(): StoreCounts {
    const rows = this.db
      .prepare('SELECT status, COUNT(*) AS n FROM trials GROUP BY status')
      .all() as { status: TrialStatus; n: number }[];
    const counts: StoreCounts = {
      pending: 0,
      running: 0,
      done: 0,
      failed: 0,
      duplicates: Number(this.meta('duplicates') ?? 0),
    };
    for (const { status, n } of rows) counts[status] = n;
    return counts;
  }

  storedSpec(): SweepSpec {
    return JSON.parse(this.meta('spec') ?? 'null') as SweepSpec;
  }

  close(): void {
    this.db.close();
  }

  private meta(key: string): string | undefined {
    return (
      this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as
        { value: string } | undefined
    )?.value;
  }

  private select(clause: string): TrialRecord[] {
    const rows = this.db
      .prepare(
        `SELECT id, configuration, seed, params, status, metric, seconds, worker, error, curve FROM trials ${clause}`,
      )
      .all() as (Omit<TrialRecord, 'params' | 'curve'> & {
      params: string;
      curve: string | null;
    })[];
    return rows.map((row) => ({
      ...row,
      params: JSON.parse(row.params) as Params,
      curve: row.curve ? (JSON.parse(row.curve) as [number, number][]) : null,
    }));
  }
}

/** The first top-level key whose value differs between stored JSON and a value; undefined if none. */
function firstDifference(storedJson: string | undefined, value: object): string | undefined {
  const stored = JSON.parse(storedJson ?? 'null') as Record<string, unknown> | null;
  const given = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  return Object.keys({ ...stored, ...given }).find(
    (key) => JSON.stringify(stored?.[key]) !== JSON.stringify(given[key]),
  );
}

/**
 * Writes a new store, schema and every planned trial, to a side file and renames it to `path`
 * once whole, so that DIR/sweep.db never exists half-made: a reader opening it while the sweep
 * starts, or a coordinator killed during set-up, sees either no sweep or the whole plan.
 */
async function createStoreFile(
  path: string,
  spec: SweepSpec,
  plan: { configurations: Configuration[]; trials: PlannedTrial[] },
  settings: Record<string, unknown>,
): Promise<void> {
  const partial = `${path}.partial`;
  rmSync(partial, { force: true });
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(partial);
  try {
    db.exec(SCHEMA);
    const meta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    const insert = db.prepare('INSERT INTO trials (configuration, seed, params) VALUES (?, ?, ?)');
    db.transaction(() => {
      meta.run('spec', JSON.stringify(spec));
      meta.run('settings', JSON.stringify(settings));
      meta.run('duplicates', '0');
      for (const trial of plan.trials) {
        const params = plan.configurations[trial.configuration].params;
        insert.run(trial.configuration, trial.seed, JSON.stringify(params));
      }
    })();
  } finally {
    db.close();
  }
  renameSync(partial, path);
}

async function openDatabase(path: string, readonly = false): Promise<Database> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path, { readonly, fileMustExist: readonly });
  if (!readonly) {
    db.pragma('journal_mode = WAL');
    // In WAL mode NORMAL loses no committed transaction when a process is killed (only on power loss).
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
  }
  db.pragma('busy_timeout = 5000');
  return db;
}
