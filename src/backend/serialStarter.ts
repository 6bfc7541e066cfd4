/**
 * Serializes starts and restarts of one resource: at most one attempt runs; requests arriving
 * meanwhile collapse into a single queued attempt, so two backends never start at once.
 */
export class SerialStarter<T> {
  private running: Promise<T> | undefined;
  private queued: Promise<T> | undefined;

  constructor(private readonly startOnce: () => Promise<T>) {}

  /** Runs a start now, or after the running one when a start is in progress (once, for all callers). */
  request(): Promise<T> {
    if (!this.running) return this.launch();
    if (!this.queued) {
      const after = this.running.then(
        () => undefined,
        () => undefined,
      );
      this.queued = after.then(() => {
        this.queued = undefined;
        return this.launch();
      });
    }
    return this.queued;
  }

  /** The running attempt, if any: callers that only need "a" start wait for it instead. */
  current(): Promise<T> | undefined {
    return this.running;
  }

  private launch(): Promise<T> {
    const p = this.startOnce();
    this.running = p;
    const clear = () => {
      if (this.running === p) this.running = undefined;
    };
    p.then(clear, clear);
    return p;
  }
}
