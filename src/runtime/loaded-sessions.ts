/**
 * A bound on the weights that loaded sessions keep mapped.
 *
 * Sessions whose weights are mapped from the model file (runtime/weight-file.ts) cost little to
 * unload and load again (0.05–0.3 s for a GPT-2-small, against ~1 s and a copy of the weights
 * for one that embeds them). Each loaded session maps the weights anew, and every mapping counts
 * in the process's resident memory although the page cache holds the pages once. So at most
 * `limit` bytes of mapped weights stay loaded: when a session loads or runs, others are unloaded
 * until the rest fit (never one that is running, never the one being used), and each loads again
 * when it next runs.
 *
 * The largest go first (the least recently used first among equal sizes): loading again reads no
 * weights, so it costs about the same for any session, and the fewest unloads make the fewest
 * loads. Least recently used alone fails on a cycle: the seven segments of the GPT-2-small cache
 * (runtime/segmented-run.ts) add up to 0.05% more than the weights (they share a few small
 * initializers), and each one loaded pushed out the next one needed, so all seven were loaded
 * again in every batch (49 loads in 8 batches). Largest first unloads the embedding's segment
 * when the unembedding's loads and the other way round: two loads a batch.
 */
export interface Unloadable {
  /** Not running now: it can be unloaded. */
  readonly idle: boolean;
  unload(): void;
}

export class LoadedSessions {
  /** Loaded sessions, least recently used first, with the bytes of weights each maps. */
  private readonly order: { session: Unloadable; bytes: number }[] = [];

  constructor(readonly limit: number) {}

  /** `session` (mapping `bytes` of weights) was just loaded or run: others are unloaded while the total exceeds the limit. */
  use(session: Unloadable, bytes: number): void {
    this.forget(session);
    this.order.push({ session, bytes });
    let total = this.order.reduce((sum, entry) => sum + entry.bytes, 0);
    // A stable sort: among equal sizes the order stays least recently used first.
    const largestFirst = [...this.order].sort((a, b) => b.bytes - a.bytes);
    for (const entry of largestFirst) {
      if (total <= this.limit) break;
      if (entry.session === session || !entry.session.idle) continue;
      entry.session.unload();
      this.forget(entry.session);
      total -= entry.bytes;
    }
  }

  /** `session` was unloaded or released. */
  forget(session: Unloadable): void {
    const at = this.order.findIndex((entry) => entry.session === session);
    if (at >= 0) this.order.splice(at, 1);
  }

  /** Bytes of weights mapped by loaded sessions. */
  get loadedBytes(): number {
    return this.order.reduce((sum, entry) => sum + entry.bytes, 0);
  }
}
