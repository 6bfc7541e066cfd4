/**
 * The recipe language server: a Node process speaking LSP over stdio or IPC for `*.qlora.yaml`.
 * Completion, hover, diagnostics as you type, quick fixes and the memory CodeLens. No `vscode`
 * import; every request is guarded so that no text can crash the process.
 *   node out/languageServer.js --stdio
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CodeActionKind,
  createConnection,
  ProposedFeatures,
  TextDocuments,
  TextDocumentSyncKind,
  type CodeAction,
  type Connection,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { MAX_RECIPE_CHARS } from '../recipe/yamlSource';
import { analyze, type Analysis, type Fix } from './analysis';
import { completeAt } from './completion';
import { hoverAt } from './hover';
import { estimateLine } from './lens';
import { BACKEND_DEVICES, backendDevicesSchema, SERVER_PID } from './protocol';

const connection: Connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);
const cache = new Map<string, { version: number; analysis: Analysis }>();
let workspaceFolders: string[] = [];
let gpuMemoryMb: number | undefined;
let hasCuda: boolean | undefined;

function fsPath(uri: string): string | undefined {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : undefined;
  } catch {
    return undefined;
  }
}

function recipeDir(uri: string): string {
  const p = fsPath(uri);
  return p ? path.dirname(p) : (workspaceFolders[0] ?? process.cwd());
}

/** The analysis of the document's current version (computed once per version). */
function analysisOf(doc: TextDocument): Analysis {
  const hit = cache.get(doc.uri);
  if (hit && hit.version === doc.version) return hit.analysis;
  const analysis = analyze(doc.getText(), { recipeDir: recipeDir(doc.uri), gpuMemoryMb, hasCuda });
  cache.set(doc.uri, { version: doc.version, analysis });
  return analysis;
}

/** Runs a handler; a bug becomes a logged error and an empty answer, never a dead server. */
function guarded<A extends unknown[], R>(name: string, empty: R, fn: (...args: A) => R): (...args: A) => R {
  return (...args: A) => {
    try {
      return fn(...args);
    } catch (err) {
      connection.console.error(`${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return empty;
    }
  };
}

let lensRefresh = false;
const lensTitles = new Map<string, string>();

const publish = guarded('diagnostics', undefined, (doc: TextDocument): void => {
  const analysis = analysisOf(doc);
  void connection.sendDiagnostics({ uri: doc.uri, version: doc.version, diagnostics: analysis.diagnostics });
  // the client asks for lenses on its own schedule; a changed estimate asks it again now
  const title = estimateLine(analysis);
  if (lensRefresh && lensTitles.get(doc.uri) !== title) void connection.sendRequest('workspace/codeLens/refresh').catch(() => undefined);
  lensTitles.set(doc.uri, title);
});

connection.onInitialize((params) => {
  lensRefresh = params.capabilities.workspace?.codeLens?.refreshSupport === true;
  workspaceFolders = (params.workspaceFolders ?? []).map((f) => fsPath(f.uri)).filter((p): p is string => !!p);
  return {
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      completionProvider: { triggerCharacters: [':', ' ', '-', '/', '['] },
      hoverProvider: true,
      codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
      codeLensProvider: { resolveProvider: false },
    },
    serverInfo: { name: 'qlora-recipe-language-server' },
  };
});

documents.onDidOpen((e) => publish(e.document));
documents.onDidChangeContent((e) => publish(e.document));
documents.onDidClose((e) => {
  cache.delete(e.document.uri);
  lensTitles.delete(e.document.uri);
  void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
});

connection.onCompletion(
  guarded('completion', [], (p) => {
    const doc = documents.get(p.textDocument.uri);
    if (!doc || doc.getText().length > MAX_RECIPE_CHARS) return [];
    const a = analysisOf(doc);
    const written = a.located.value && typeof a.located.value === 'object' ? (a.located.value as Record<string, unknown>) : undefined;
    return completeAt(doc.getText(), p.position.line, p.position.character, { recipeDir: recipeDir(doc.uri), workspaceFolders, written });
  }),
);

connection.onHover(
  guarded('hover', null, (p) => {
    const doc = documents.get(p.textDocument.uri);
    return doc && doc.getText().length <= MAX_RECIPE_CHARS ? hoverAt(doc.getText(), p.position.line, p.position.character, analysisOf(doc)) : null;
  }),
);

connection.onCodeAction(
  guarded('codeAction', [] as CodeAction[], (p) => {
    const out: CodeAction[] = [];
    for (const d of p.context.diagnostics) {
      const fixes = (d.data as { fixes?: Fix[] } | undefined)?.fixes ?? [];
      for (const [i, f] of fixes.entries()) {
        out.push({ title: f.title, kind: CodeActionKind.QuickFix, diagnostics: [d], isPreferred: i === 0, edit: { changes: { [p.textDocument.uri]: f.edits } } });
      }
    }
    return out;
  }),
);

connection.onCodeLens(
  guarded('codeLens', [], (p) => {
    const doc = documents.get(p.textDocument.uri);
    if (!doc) return [];
    const top = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
    return [{ range: top, command: { title: estimateLine(analysisOf(doc)), command: '' } }];
  }),
);

connection.onNotification(
  BACKEND_DEVICES,
  guarded('backendDevices', undefined, (params: unknown) => {
    const parsed = backendDevicesSchema.safeParse(params);
    if (!parsed.success) return;
    const cuda = parsed.data.devices.filter((d) => d.type === 'cuda');
    const mems = cuda.map((d) => d.memory_total_mb).filter((m): m is number => typeof m === 'number');
    hasCuda = parsed.data.devices.length ? cuda.length > 0 : undefined;
    gpuMemoryMb = mems.length ? Math.max(...mems) : undefined;
    cache.clear();
    for (const doc of documents.all()) publish(doc);
    if (lensRefresh) void connection.sendRequest('workspace/codeLens/refresh').catch(() => undefined);
  }),
);

connection.onRequest(SERVER_PID, () => process.pid);

process.on('uncaughtException', (err) => connection.console.error(`uncaught: ${err.stack ?? err.message}`));
documents.listen(connection);
connection.listen();
