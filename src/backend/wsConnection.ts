/**
 * BackendConnection over WebSocket (`ws`): authenticates with the token in the handshake header,
 * says `hello` first, parses every inbound frame with zod, reconnects with backoff and re-attaches
 * every watched run from the last seq it delivered. No `vscode` import.
 */
import WebSocket from 'ws';
import { PROTOCOL_VERSION, methods, runEventSchema, serverFrameSchema, type MethodName, type ParamsOf, type ResultOf, type RunEvent, type RunEventEnvelope } from '../protocol';
import { BackendError, Emitter, type BackendConnection, type ConnectionState, type Disposable, type RequestOptions } from './connection';
import { silentLogger, type Logger } from './logger';
import { PendingRequests } from './pendingRequests';
import { RunWatches } from './runWatches';

export interface ReconnectOptions {
  /** First retry delay (doubled per failed attempt, with jitter). Default 200 ms. */
  initialDelayMs?: number;
  /** Ceiling of the retry delay. Default 5000 ms. */
  maxDelayMs?: number;
}

export interface ConnectOptions {
  url: string;
  token: string;
  logger?: Logger;
  /** Reconnect after a drop (default true); false = the connection stays down. */
  reconnect?: boolean | ReconnectOptions;
  /** Default request timeout, ms (default 30 s; 0 = none). */
  requestTimeoutMs?: number;
  /** Sent in hello, for the server's log. */
  clientName?: string;
  /** Sent in hello as `client_version`. */
  clientVersion?: string;
  /** Where to reconnect to: called before each retry (a restarted server has a new port and token). */
  resolveEndpoint?: () => Promise<{ url: string; token: string }>;
  /**
   * What was delivered of each watched run. Pass the same object to the next connection (after a
   * server restart) and it re-attaches every run from there: exactly once across connections.
   */
  watches?: RunWatches;
  /**
   * Listens from the first frame on: with shared `watches`, the first connect already replays
   * the watched runs, before the caller could subscribe with onRunEvent.
   */
  onRunEvent?: (ev: RunEvent) => void;
  /** Ping period; a ping unanswered for a whole period drops the socket (half-open SSH tunnels). Default 15 s. */
  heartbeatMs?: number;
}

/** Open a connection (socket + hello); rejects with BackendError when the first attempt fails. */
export async function connectWebSocket(opts: ConnectOptions): Promise<BackendConnection> {
  const conn = new WsBackendConnection(opts);
  try {
    await conn.connectOnce(opts.url, opts.token);
  } catch (e) {
    conn.dispose();
    throw e;
  }
  return conn;
}

const MAX_PAYLOAD = 512 * 1024 * 1024;

class WsBackendConnection implements BackendConnection {
  private currentState: ConnectionState = 'disconnected';
  private socket: WebSocket | undefined;
  private disposed = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly pending: PendingRequests;
  private readonly watches: RunWatches;
  private readonly reattaching = new Set<string>();
  private readonly events = new Emitter<RunEvent>();
  private readonly states = new Emitter<ConnectionState>();
  private endpoint: { url: string; token: string };
  private helloResult: ResultOf<'hello'> | undefined;

  constructor(private readonly opts: ConnectOptions) {
    this.log = opts.logger ?? silentLogger();
    this.endpoint = { url: opts.url, token: opts.token };
    this.watches = opts.watches ?? new RunWatches();
    if (opts.onRunEvent) this.events.on(opts.onRunEvent);
    this.pending = new PendingRequests(opts.requestTimeoutMs ?? 30_000, (id, method) => {
      if (method === 'generate' && this.socket?.readyState === WebSocket.OPEN) {
        this.send('generate.cancel', { request_id: id }, { timeoutMs: 5000 }).catch(() => undefined);
      }
    });
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  get hello(): ResultOf<'hello'> {
    if (!this.helloResult) throw new Error('the backend has not answered hello yet');
    return this.helloResult;
  }

  request<M extends MethodName>(method: M, params: ParamsOf<M>, opts: RequestOptions<M> = {}): Promise<ResultOf<M>> {
    if (this.currentState !== 'connected') {
      return Promise.reject(new BackendError('disconnected', `${method}: the backend is not connected (${this.disposed ? 'connection closed' : 'reconnecting'}); try again shortly`));
    }
    return this.send(method, params, opts);
  }

  async attach(runId: string, afterSeq?: number): Promise<void> {
    const after = this.watches.watch(runId, afterSeq);
    if (this.currentState === 'connected') await this.send('run.attach', { run_id: runId, after_seq: after });
  }

  isWatching(runId: string): boolean {
    return this.watches.has(runId);
  }

  detach(runId: string): void {
    this.watches.unwatch(runId);
    if (this.currentState === 'connected') this.send('run.detach', { run_id: runId }).catch(() => undefined);
  }

  onRunEvent(listener: (ev: RunEvent) => void): Disposable {
    return this.events.on(listener);
  }

  onStateChange(listener: (s: ConnectionState) => void): Disposable {
    return this.states.on(listener);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeat);
    this.socket?.close(1000, 'client disposed');
    this.socket = undefined;
    this.pending.failAll('the backend connection was closed');
    this.setState('disconnected');
    this.events.clear();
    this.states.clear();
  }

  /** Open a socket, say hello, re-attach watched runs; the connection is `connected` when it resolves. */
  async connectOnce(url: string, token: string): Promise<void> {
    this.setState('connecting');
    const ws = await openSocket(url, token);
    if (this.disposed) {
      ws.close(1000, 'client disposed');
      throw new BackendError('disconnected', 'the connection was disposed while connecting');
    }
    this.socket = ws;
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(ws, code, reason.toString()));
    ws.on('error', (e) => this.log.warn(`backend socket error: ${e.message}`));
    this.startHeartbeat(ws);
    try {
      const hello = await this.send(
        'hello',
        { protocol: PROTOCOL_VERSION, client: this.opts.clientName ?? 'qlora-studio-extension', ...(this.opts.clientVersion ? { client_version: this.opts.clientVersion } : {}) },
        { timeoutMs: 60_000 },
      );
      if (hello.protocol !== PROTOCOL_VERSION) {
        throw new BackendError('version_mismatch', `the backend speaks protocol ${hello.protocol}, this extension ${PROTOCOL_VERSION}: ` +
          (hello.protocol < PROTOCOL_VERSION ? 'update the backend (pip install -U qlora-studio)' : 'update the QLoRA Studio extension'));
      }
      this.helloResult = hello;
      await Promise.all(this.watches.entries().map(([runId, seq]) => this.reattach(runId, seq)));
    } catch (e) {
      clearInterval(this.heartbeat);
      ws.terminate();
      throw e;
    }
    this.attempt = 0;
    this.setState('connected');
  }

  private send<M extends MethodName>(method: M, params: ParamsOf<M>, opts: RequestOptions<M> = {}): Promise<ResultOf<M>> {
    const checked = methods[method].params.safeParse(params);
    if (!checked.success) return Promise.reject(new BackendError('invalid_params', `invalid params for ${method}: ${checked.error.message}`));
    const ws = this.socket;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new BackendError('disconnected', `${method}: the backend is not connected`));
    const { id, promise } = this.pending.add(method, opts);
    ws.send(JSON.stringify({ id, method, params: checked.data }), (err) => {
      if (err) this.pending.fail(id, new BackendError('disconnected', `${method} could not be sent: ${err.message}`));
    });
    return promise as Promise<ResultOf<M>>;
  }

  private async reattach(runId: string, afterSeq: number): Promise<void> {
    try {
      await this.send('run.attach', { run_id: runId, after_seq: afterSeq });
    } catch (e) {
      if (e instanceof BackendError && e.code === 'not_found') {
        this.log.warn(`run ${runId} is gone from the backend; no longer watching it`);
        this.watches.unwatch(runId);
        return;
      }
      throw e;
    }
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    // A disposed connection's socket may still hand over frames while it closes; they must not
    // touch the shared delivery state (their listeners are gone: the seq would be lost).
    if (this.disposed) return;
    if (isBinary) return this.log.warn('dropped a binary frame from the backend');
    let json: unknown;
    try {
      json = JSON.parse(data.toString());
    } catch {
      return this.log.warn('dropped a frame from the backend that is not JSON');
    }
    const r = serverFrameSchema.safeParse(json);
    if (!r.success) return this.log.warn(`dropped a frame the protocol does not allow: ${r.error.message.slice(0, 300)}`);
    const f = r.data;
    if ('events' in f) for (const ev of f.events) this.deliver(ev);
    else if ('seq' in f) this.deliver(f);
    else if ('partial' in f) this.pending.partial(Number(f.id), f.partial);
    else if ('error' in f) {
      if (typeof f.id === 'number') this.pending.reject(f.id, f.error);
      else this.log.warn(`backend error without a request: ${f.error.code}: ${f.error.message}`);
    } else if (typeof f.id === 'number') this.pending.resolve(f.id, f.result);
  }

  /**
   * The gate: each (run_id, seq) passes once, in order, parsed with the typed event schema. An
   * event whose data this client cannot read still uses up its seq (logged), so it can never
   * stall the run's stream behind it.
   */
  private deliver(ev: RunEventEnvelope): void {
    const verdict = this.watches.accept(ev);
    if (verdict === 'deliver') {
      this.reattaching.delete(ev.run_id);
      const typed = runEventSchema.safeParse(ev);
      if (!typed.success) {
        this.log.warn(`run ${ev.run_id}: skipped ${ev.type} event ${ev.seq} this client cannot read: ${typed.error.message.slice(0, 300)}`);
        return;
      }
      this.events.fire(typed.data, (e) => this.log.error(`a run event listener failed: ${String(e)}`));
    } else if (verdict === 'gap' && !this.reattaching.has(ev.run_id)) {
      // Never expected (the server replays exactly), but a gap must heal itself, not show a hole.
      const last = this.watches.last(ev.run_id);
      this.log.warn(`run ${ev.run_id}: got seq ${ev.seq} after ${last}; re-attaching from ${last}`);
      this.reattaching.add(ev.run_id);
      this.send('run.attach', { run_id: ev.run_id, after_seq: last }).catch((e: unknown) => this.log.warn(`re-attach failed: ${String(e)}`));
    }
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.socket) return;
    // A drop during connectOnce (hello, re-attach) is retried by whoever called connectOnce.
    const wasConnected = this.currentState === 'connected';
    this.socket = undefined;
    clearInterval(this.heartbeat);
    this.reattaching.clear();
    this.pending.failAll(`the backend connection dropped (code ${code}${reason ? `: ${reason}` : ''})`);
    this.setState('disconnected');
    if (this.disposed) return;
    this.log.info(`backend connection closed (code ${code}${reason ? `: ${reason}` : ''})`);
    if (wasConnected && this.opts.reconnect !== false) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const cfg = typeof this.opts.reconnect === 'object' ? this.opts.reconnect : {};
    const base = Math.min(cfg.maxDelayMs ?? 5000, (cfg.initialDelayMs ?? 200) * 2 ** this.attempt);
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    this.attempt = Math.min(this.attempt + 1, 16);
    this.setState('connecting');
    this.retryTimer = setTimeout(() => void this.retry(), delay);
  }

  private async retry(): Promise<void> {
    if (this.disposed) return;
    try {
      if (this.opts.resolveEndpoint) this.endpoint = await this.opts.resolveEndpoint();
      await this.connectOnce(this.endpoint.url, this.endpoint.token);
      this.log.info('reconnected to the backend');
    } catch (e) {
      if (this.disposed) return;
      const fatal = e instanceof BackendError && e.code === 'version_mismatch';
      this.log.warn(`reconnect failed: ${e instanceof Error ? e.message : String(e)}${fatal ? ' (giving up)' : ''}`);
      this.socket = undefined;
      this.setState('disconnected');
      if (!fatal) this.scheduleReconnect();
    }
  }

  private startHeartbeat(ws: WebSocket): void {
    let answered = true;
    ws.on('pong', () => (answered = true));
    clearInterval(this.heartbeat);
    const timer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) {
        clearInterval(timer); // ping() on a closed socket throws, from a timer nobody catches
        return;
      }
      if (!answered) {
        this.log.warn('backend stopped answering pings; dropping the connection');
        ws.terminate();
        return;
      }
      answered = false;
      ws.ping();
    }, this.opts.heartbeatMs ?? 15_000);
    timer.unref?.();
    this.heartbeat = timer;
  }

  private setState(s: ConnectionState): void {
    if (s === this.currentState) return;
    this.currentState = s;
    this.states.fire(s, (e) => this.log.error(`a state listener failed: ${String(e)}`));
  }
}

/** Open an authenticated socket; HTTP refusals become BackendErrors that say what to do. */
function openSocket(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` }, maxPayload: MAX_PAYLOAD, perMessageDeflate: false, handshakeTimeout: 15_000 });
    let refused = false;
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      refused = true;
      const status = res.statusCode ?? 0;
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        const code = status === 401 || status === 403 ? 'unauthorized' : 'disconnected';
        reject(new BackendError(code, `the backend refused the connection (HTTP ${status}): ${body.trim() || 'no reason given'}`));
        ws.terminate();
      });
    });
    ws.on('error', (e) => {
      if (!refused) reject(new BackendError('disconnected', `cannot reach the backend at ${url}: ${e.message}`));
    });
  });
}
