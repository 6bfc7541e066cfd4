/**
 * The backend connection as the rest of the extension sees it: typed requests, run events
 * (replayed, then live, re-attached after every reconnect) and connection state. Implemented over
 * WebSocket in wsConnection.ts. No `vscode` import.
 */
import type { ErrorCode, MethodName, ParamsOf, PartialOf, ResultOf, RunEvent } from '../protocol';

export type ConnectionState = 'disconnected' | 'connecting' | 'connected';

export interface Disposable {
  dispose(): void;
}

/** Options of one request. */
export interface RequestOptions<M extends MethodName> {
  /** Reject with `timeout` after this long; 0 waits forever. Default: the connection's default. */
  timeoutMs?: number;
  /** Abort rejects with `cancelled`; for `generate` it also cancels the generation on the backend. */
  signal?: AbortSignal;
  /** Called for every partial frame of a streamed method (generate text, merge progress). */
  onPartial?: (p: PartialOf<M>) => void;
}

export interface BackendConnection {
  readonly state: ConnectionState;
  /** The backend's answer to this connection's `hello` (refreshed on every reconnect): versions, runs folder, devices. */
  readonly hello: ResultOf<'hello'>;
  /** Send a request; resolves with its result parsed by the method's zod schema. Rejects with BackendError. */
  request<M extends MethodName>(method: M, params: ParamsOf<M>, opts?: RequestOptions<M>): Promise<ResultOf<M>>;
  /**
   * Watch a run: events with seq > afterSeq (default: the last one this connection delivered, or 0)
   * are delivered to onRunEvent in order, exactly once, across reconnects, parsed with the typed
   * event schema. This is the one place that checks seqs: listeners trust what they get.
   */
  attach(runId: string, afterSeq?: number): Promise<void>;
  /** Whether the run is watched (attached, and re-attached after every reconnect). */
  isWatching(runId: string): boolean;
  /** Stop watching a run. */
  detach(runId: string): void;
  onRunEvent(listener: (ev: RunEvent) => void): Disposable;
  onStateChange(listener: (s: ConnectionState) => void): Disposable;
  dispose(): void;
}

/** A failed request or connection, with a protocol error code the caller can switch on. */
export class BackendError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}

/** A tiny typed listener set (one per event kind of a connection). */
export class Emitter<T> {
  private readonly listeners = new Set<(v: T) => void>();

  /** Add a listener; dispose the result to remove it. */
  on(listener: (v: T) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Call every listener; one throwing listener does not starve the others. */
  fire(v: T, onError: (e: unknown) => void): void {
    for (const l of [...this.listeners]) {
      try {
        l(v);
      } catch (e) {
        onError(e);
      }
    }
  }

  /** Drop all listeners. */
  clear(): void {
    this.listeners.clear();
  }
}
