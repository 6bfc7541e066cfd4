/**
 * The inline dataset preview in `.jsonl` files: a CodeLens per line (tokens, % trained,
 * truncation), a hover with the masked rendering, and a status bar item naming the recipe the
 * preview follows (the nearest recipe naming the file, or one the user picked). Works without a
 * backend and in Restricted Mode: everything runs in src/dataset/.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { findRecipeFor, isRecipeFile } from '../dataset/recipeLink';
import { hoverHtml, lensTitle } from '../dataset/lineSummary';
import { loadSession, type LinePreview, type PreviewSession } from '../dataset/session';

const JSONL: vscode.DocumentSelector = [{ pattern: '**/*.jsonl' }, { language: 'jsonl' }];
/** Lines beyond this get no lens (the panel and the doctor cover big files). */
const MAX_LENS_LINES = 20_000;

/** Owns the recipe choice per dataset file and one cached session per recipe. */
export class DatasetPreview implements vscode.Disposable {
  private readonly sessions = new Map<string, PreviewSession | Error>();
  private readonly picked = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly status = vscode.window.createStatusBarItem('qloraStudio.datasetRecipe', vscode.StatusBarAlignment.Left, 50);
  /** Fires when previews must be recomputed (recipe picked or edited). */
  readonly onDidChange = this.changed.event;

  constructor(private readonly ctx: Ctx) {
    this.status.name = 'QLoRA dataset recipe';
    this.status.command = 'qloraStudio.pickDatasetRecipe';
  }

  /** Folder of the built-in chat templates shipped with the Python package. */
  private get builtinDir(): string {
    return path.join(this.ctx.ext.extensionUri.fsPath, 'python-backend', 'src', 'qlora_studio', 'data', 'builtin_templates');
  }

  /** True for a file inside a run folder the backend listed (a run's own logs, not a dataset). */
  inRunFolder(file: string): boolean {
    return this.ctx.runs.list().some((r) => !!r.run_dir && file.startsWith(r.run_dir + path.sep));
  }

  /** The recipe the preview of `file` follows, if any. */
  recipeFor(file: string): string | undefined {
    const pick = this.picked.get(file);
    if (pick) return pick;
    const root = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(file))?.uri.fsPath ?? path.dirname(file);
    return findRecipeFor(file, root);
  }

  /** Makes `recipe` the one the preview of `file` follows. */
  pick(file: string, recipe: string): void {
    this.picked.set(file, recipe);
    this.changed.fire();
    this.updateStatus();
  }

  /** The session for `file`'s recipe, or why there is none. */
  session(file: string): PreviewSession | Error {
    const recipe = this.recipeFor(file);
    if (!recipe) return new Error('no recipe names this file in data.train or data.eval; pick one with "QLoRA: Pick Recipe for Dataset Preview"');
    let s = this.sessions.get(recipe);
    if (!s) {
      try {
        s = loadSession(recipe, this.builtinDir);
      } catch (err) {
        s = err instanceof Error ? err : new Error(String(err));
        this.ctx.log.warn(`dataset preview: ${recipe}: ${s.message}`);
      }
      this.sessions.set(recipe, s);
    }
    return s;
  }

  /** Previews one line of `doc`. */
  previewLine(doc: vscode.TextDocument, line: number): { preview: LinePreview; session: PreviewSession } | Error {
    const s = this.session(doc.uri.fsPath);
    if (s instanceof Error) return s;
    return { preview: s.previewLine(doc.lineAt(line).text), session: s };
  }

  /** True when `file` is a recipe or a file a cached session was built from. */
  affects(file: string): boolean {
    if (isRecipeFile(file)) return true;
    const modelFile = /(tokenizer(_config)?\.json|\.jinja)$/.test(file);
    for (const s of this.sessions.values()) {
      // A session that failed (say, no tokenizer yet) may work once model files appear.
      if (s instanceof Error ? modelFile : s.sources.includes(file)) return true;
    }
    return false;
  }

  /** Drops cached sessions (a recipe, template or tokenizer changed). */
  invalidate(): void {
    this.sessions.clear();
    this.changed.fire();
    this.updateStatus();
  }

  /** Shows the followed recipe while a dataset file is active. */
  updateStatus(): void {
    const doc = vscode.window.activeTextEditor?.document;
    if (!doc || !doc.uri.fsPath.endsWith('.jsonl') || (!this.recipeFor(doc.uri.fsPath) && this.inRunFolder(doc.uri.fsPath))) {
      this.status.hide();
      return;
    }
    const recipe = this.recipeFor(doc.uri.fsPath);
    const s = recipe ? this.session(doc.uri.fsPath) : undefined;
    this.status.text = recipe ? `$(beaker) ${path.basename(recipe)}` : '$(beaker) no recipe';
    this.status.tooltip = recipe ? `Dataset preview follows ${recipe}${s instanceof Error ? `\n${s.message}` : ''}. Click to pick another recipe.` : 'No recipe names this file; click to pick one.';
    this.status.show();
  }

  dispose(): void {
    this.changed.dispose();
    this.status.dispose();
  }
}

/** A lens that remembers its document, so resolving it needs no lookup. */
class LineLens extends vscode.CodeLens {
  constructor(range: vscode.Range, readonly doc: vscode.TextDocument) {
    super(range);
  }
}

class LensProvider implements vscode.CodeLensProvider {
  constructor(private readonly preview: DatasetPreview, readonly onDidChangeCodeLenses: vscode.Event<void>) {}

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    const s = this.preview.session(doc.uri.fsPath);
    // A run's own JSONL logs are no dataset: no "pick a recipe" lens there unless a recipe names them.
    if (s instanceof Error && !this.preview.recipeFor(doc.uri.fsPath) && this.preview.inRunFolder(doc.uri.fsPath)) return [];
    if (s instanceof Error) return [new vscode.CodeLens(new vscode.Range(0, 0, 0, 0), { title: `$(info) QLoRA preview: ${s.message}`, command: 'qloraStudio.pickDatasetRecipe' })];
    const lenses: LineLens[] = [];
    for (let i = 0; i < Math.min(doc.lineCount, MAX_LENS_LINES); i += 1) {
      if (doc.lineAt(i).text.trim() !== '') lenses.push(new LineLens(new vscode.Range(i, 0, i, 0), doc));
    }
    return lenses;
  }

  /** Computed only for lenses VS Code shows, so long files stay cheap. */
  resolveCodeLens(lens: vscode.CodeLens): vscode.CodeLens {
    if (!(lens instanceof LineLens) || lens.range.start.line >= lens.doc.lineCount) return lens;
    const r = this.preview.previewLine(lens.doc, lens.range.start.line);
    lens.command = { title: r instanceof Error ? r.message : lensTitle(r.preview, r.session.data.max_seq_len), command: '' };
    return lens;
  }
}

class HoverProvider implements vscode.HoverProvider {
  constructor(private readonly preview: DatasetPreview) {}

  provideHover(doc: vscode.TextDocument, pos: vscode.Position): vscode.Hover | undefined {
    if (doc.lineAt(pos.line).text.trim() === '') return undefined;
    const r = this.preview.previewLine(doc, pos.line);
    if (r instanceof Error) return new vscode.Hover(r.message);
    const md = new vscode.MarkdownString(hoverHtml(r.preview, (id) => r.session.tokenizer.isAdded(id), r.session.data.max_seq_len));
    md.supportHtml = true;
    return new vscode.Hover(md, doc.lineAt(pos.line).range);
  }
}

/** Registers the lens, hover, status item and the watchers that keep them fresh. */
export function registerDatasetPreview(ctx: Ctx): DatasetPreview {
  const preview = new DatasetPreview(ctx);
  const lensChanged = new vscode.EventEmitter<void>();
  let timer: NodeJS.Timeout | undefined;
  const refresh = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => lensChanged.fire(), 150);
  };
  const watcher = vscode.workspace.createFileSystemWatcher('**/*.{qlora.yaml,qlora.yml,jinja,json}');
  // Only files a session depends on: runs write tokenizer files into checkpoints all the time.
  const onFile = (uri: vscode.Uri) => {
    if (preview.affects(uri.fsPath)) preview.invalidate();
  };
  ctx.push(
    preview,
    lensChanged,
    watcher,
    watcher.onDidChange(onFile),
    watcher.onDidCreate(onFile),
    watcher.onDidDelete(onFile),
    preview.onDidChange(refresh),
    vscode.workspace.onDidSaveTextDocument((d) => onFile(d.uri)),
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document.uri.fsPath.endsWith('.jsonl')) refresh();
    }),
    vscode.window.onDidChangeActiveTextEditor(() => preview.updateStatus()),
    vscode.languages.registerCodeLensProvider(JSONL, new LensProvider(preview, lensChanged.event)),
    vscode.languages.registerHoverProvider(JSONL, new HoverProvider(preview)),
    { dispose: () => timer && clearTimeout(timer) },
  );
  preview.updateStatus();
  return preview;
}
