/**
 * A Node LSP client for tests and the bench: starts the REAL recipe language server process
 * (src/language-server/server.ts through tsx, or the bundle) over stdio and speaks the protocol.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import type { CodeAction, CompletionItem, CompletionList, Diagnostic, Hover, TextEdit } from 'vscode-languageserver-protocol';

const ROOT = resolve(__dirname, '../..');

/** A diagnostic whose message is plain text (what this server sends). */
export type Diag = Omit<Diagnostic, 'message'> & { message: string };

/** One server process and its connection. */
export class LspClient {
  readonly conn: MessageConnection;
  private readonly diags = new Map<string, { version?: number; diagnostics: Diagnostic[] }>();
  private readonly waiters: Array<() => void> = [];
  private versions = new Map<string, number>();
  exited: number | null | undefined;
  stderr = '';

  private constructor(readonly proc: ChildProcess) {
    this.conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    this.conn.onNotification('textDocument/publishDiagnostics', (p: { uri: string; version?: number; diagnostics: Diagnostic[] }) => {
      this.diags.set(p.uri, p);
      for (const w of this.waiters.splice(0)) w();
    });
    this.conn.onRequest('workspace/codeLens/refresh', () => null);
    this.conn.onNotification('window/logMessage', () => undefined);
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    proc.on('exit', (code) => (this.exited = code));
    this.conn.listen();
  }

  /** Spawns the server and completes the initialize handshake. */
  static async start(workspace = resolve(ROOT, 'test/fixtures/recipes'), bundle = false): Promise<LspClient> {
    const args = bundle ? [resolve(ROOT, 'out/languageServer.js'), '--stdio'] : ['--import', 'tsx', resolve(ROOT, 'src/language-server/server.ts'), '--stdio'];
    const c = new LspClient(spawn(process.execPath, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
    await c.conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {}, workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: 'ws' }] });
    await c.conn.sendNotification('initialized', {});
    return c;
  }

  /** Opens (or replaces the text of) a document and resolves with its diagnostics for that version. */
  async open(uri: string, text: string): Promise<Diag[]> {
    const version = (this.versions.get(uri) ?? 0) + 1;
    this.versions.set(uri, version);
    if (version === 1) await this.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'qlora-recipe', version, text } });
    else await this.conn.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: [{ text }] });
    for (;;) {
      const d = this.diags.get(uri);
      if (d && d.version === version) return d.diagnostics as Diag[];
      if (this.exited !== undefined) throw new Error(`server exited (${String(this.exited)}): ${this.stderr}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async completion(uri: string, line: number, character: number): Promise<CompletionItem[]> {
    const r = await this.conn.sendRequest<CompletionItem[] | CompletionList | null>('textDocument/completion', { textDocument: { uri }, position: { line, character } });
    return Array.isArray(r) ? r : (r?.items ?? []);
  }

  hover(uri: string, line: number, character: number): Promise<Hover | null> {
    return this.conn.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character } });
  }

  codeActions(uri: string, diagnostics: Diag[]): Promise<CodeAction[]> {
    const range = diagnostics[0]?.range ?? { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
    return this.conn.sendRequest('textDocument/codeAction', { textDocument: { uri }, range, context: { diagnostics } });
  }

  codeLens(uri: string): Promise<Array<{ command?: { title: string } }>> {
    return this.conn.sendRequest('textDocument/codeLens', { textDocument: { uri } });
  }

  notify(method: string, params: unknown): Promise<void> {
    return this.conn.sendNotification(method, params);
  }

  /** Shuts the server down the LSP way and waits for the process to exit. */
  async stop(): Promise<void> {
    if (this.exited === undefined) {
      const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
      await this.conn.sendRequest('shutdown').catch(() => undefined);
      await this.conn.sendNotification('exit').catch(() => undefined);
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (this.exited === undefined) this.proc.kill();
    }
    this.conn.dispose();
  }
}

/** Applies LSP text edits to a text (edits must not overlap). */
export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  const lines = text.split('\n');
  const offset = (p: { line: number; character: number }): number => {
    let o = 0;
    for (let i = 0; i < p.line && i < lines.length; i++) o += (lines[i] ?? '').length + 1;
    return Math.min(text.length, o + p.character);
  };
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  let out = text;
  for (const e of sorted) out = out.slice(0, offset(e.range.start)) + e.newText + out.slice(offset(e.range.end));
  return out;
}

/** file:// URI of a path under the repository. */
export function uriOf(rel: string): string {
  return pathToFileURL(resolve(ROOT, rel)).href;
}
