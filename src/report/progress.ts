/** A progress bar on stderr for anything slow; silent when stderr is not a terminal (CI logs, pipes). */
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private readonly enabled: boolean;

  private lastDrawn = 0;

  /** `enabled: false` silences the bar even on a terminal; it never draws on a non-terminal. */
  constructor(private readonly label: string, private readonly total: number, enabled = true) {
    this.enabled = enabled && process.stderr.isTTY === true && total > 1;
  }

  /** Advances by `count`; `status` (e.g. the current loss) is shown after the bar. */
  tick(count = 1, status = ''): void {
    this.done += count;
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDrawn < 100 && this.done < this.total) return; // at most ten redraws a second
    this.lastDrawn = now;
    const width = 30;
    const filled = Math.round((width * this.done) / this.total);
    const seconds = ((Date.now() - this.started) / 1000).toFixed(1);
    process.stderr.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total} ${seconds}s ${status}\x1b[K`);
  }

  finish(): void {
    if (this.enabled) process.stderr.write('\n');
  }
}
