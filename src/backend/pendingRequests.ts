/**
 * Requests in flight on one connection: ids, timeouts, aborts, partials, and result parsing with
 * the method's zod schema (parse at the boundary, then trust the types).
 */
import { methods, type ErrorBody, type MethodName } from '../protocol';
import { BackendError, type RequestOptions } from './connection';

interface Pending {
  method: MethodName;
  resolve: (v: unknown) => void;
  reject: (e: BackendError) => void;
  onPartial?: (p: never) => void;
  cleanup: () => void;
}

/** Tracks requests by id; the connection feeds it responses and tells it when the socket drops. */
export class PendingRequests {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly defaultTimeoutMs: number,
    private readonly onAbort: (id: number, method: MethodName) => void,
  ) {}

  /** Register a request; returns its id and the promise of its parsed result. */
  add<M extends MethodName>(method: M, opts: RequestOptions<M>): { id: number; promise: Promise<unknown> } {
    const id = this.nextId++;
    const promise = new Promise<unknown>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => this.fail(id, new BackendError('timeout', `${method} got no answer from the backend within ${timeoutMs} ms`)), timeoutMs)
          : undefined;
      const abort = (): void => {
        this.onAbort(id, method);
        this.fail(id, new BackendError('cancelled', `${method} was cancelled`));
      };
      opts.signal?.addEventListener('abort', abort, { once: true });
      this.pending.set(id, {
        method,
        resolve,
        reject,
        onPartial: opts.onPartial as ((p: never) => void) | undefined,
        cleanup: () => {
          if (timer) clearTimeout(timer);
          opts.signal?.removeEventListener('abort', abort);
        },
      });
    });
    return { id, promise };
  }

  /** A result frame arrived: validate it against the method's result schema and settle. */
  resolve(id: number, result: unknown): void {
    const p = this.take(id);
    if (!p) return;
    const parsed = methods[p.method].result.safeParse(result);
    if (parsed.success) p.resolve(parsed.data);
    else p.reject(new BackendError('internal', `the backend's answer to ${p.method} has an unexpected shape (is the backend up to date?): ${parsed.error.message}`));
  }

  /** An error frame arrived for this id. */
  reject(id: number, body: ErrorBody): void {
    this.take(id)?.reject(new BackendError(body.code, body.message, body.data));
  }

  /** A partial frame arrived: validate it and hand it to the caller. */
  partial(id: number, partial: unknown): void {
    const p = this.pending.get(id);
    if (!p?.onPartial) return;
    const parsed = methods[p.method].partial.safeParse(partial);
    if (parsed.success) p.onPartial(parsed.data as never);
  }

  /** Fail one request (timeout, abort, send failure). */
  fail(id: number, err: BackendError): void {
    this.take(id)?.reject(err);
  }

  /** The socket dropped: every request in flight fails with `disconnected` (the caller may retry). */
  failAll(message: string): void {
    for (const id of [...this.pending.keys()]) this.fail(id, new BackendError('disconnected', message));
  }

  /** How many requests are in flight. */
  get size(): number {
    return this.pending.size;
  }

  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    p.cleanup();
    return p;
  }
}
