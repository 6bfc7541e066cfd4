/**
 * The dataset doctor in the Problems panel: runs on opening and saving a `.jsonl` that a recipe
 * names (and on demand with progress and cancel), one diagnostic per finding on its line, with
 * quick fixes: delete an exact duplicate, open the recipe at `data.max_seq_len`.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { maxSeqLenEdit, suggestedMaxSeqLen } from '../dataset/recipeEdit';
import { compareWithTrainer, type TrainerPreview } from '../dataset/crossCheck';
import { runDoctor, type DoctorIssue, type DoctorSummary } from '../dataset/doctor';
import type { PreviewSession } from '../dataset/session';
import type { DatasetPreview } from './datasetPreview';

/** Files larger than this are checked only on demand (the command shows progress). */
const AUTO_LIMIT_BYTES = 8 * 1024 * 1024;
const SOURCE = 'QLoRA dataset doctor';

/** The Problems-panel side of the doctor. */
export class DatasetDoctorView implements vscode.Disposable {
  readonly diagnostics = vscode.languages.createDiagnosticCollection('qlora-dataset');
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly ctx: Ctx, private readonly preview: DatasetPreview) {}

  /** Checks `uri`; with `progress`, shows a cancellable notification. Resolves with the totals. */
  async check(uri: vscode.Uri, progress = false): Promise<DoctorSummary | undefined> {
    const session = this.preview.session(uri.fsPath);
    if (session instanceof Error) {
      if (progress) throw session;
      return undefined;
    }
    this.running.get(uri.fsPath)?.abort();
    const ac = new AbortController();
    this.running.set(uri.fsPath, ac);
    const found: vscode.Diagnostic[] = [];
    const tsBad = new Map<number, string>();
    const onIssue = (i: DoctorIssue) => {
      found.push(toDiagnostic(i));
      if (i.severity === 'error') tsBad.set(i.line, i.kind);
    };
    const total = (await vscode.workspace.fs.stat(uri)).size;
    const pass = (report?: (bytes: number) => void) => runDoctor(uri.fsPath, session, onIssue, { signal: ac.signal, ...(report ? { onProgress: report } : {}) });
    let summary: DoctorSummary;
    if (progress) {
      summary = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Dataset doctor: ${vscode.workspace.asRelativePath(uri)}`, cancellable: true },
        async (p, token) => {
          token.onCancellationRequested(() => ac.abort());
          let last = 0;
          return pass((bytes) => {
            p.report({ increment: (100 * (bytes - last)) / Math.max(total, 1), message: `${Math.round((100 * bytes) / Math.max(total, 1))}%` });
            last = bytes;
          });
        },
      );
    } else summary = await pass();
    if (this.running.get(uri.fsPath) === ac) this.running.delete(uri.fsPath);
    if (!summary.cancelled) {
      const differs = await this.crossCheck(uri, session, tsBad, total).catch((err: unknown) => {
        this.ctx.log.warn(`dataset doctor: comparing with the trainer failed: ${String(err)}`);
        return [];
      });
      this.diagnostics.set(uri, [...found, ...differs.map(toDiagnostic)]);
    }
    this.ctx.log.info(`dataset doctor ${uri.fsPath}: ${summary.lines} lines, ${summary.badRows} bad rows, ${found.length} findings${summary.cancelled ? ' (cancelled)' : ''}`);
    return summary;
  }

  /**
   * With a connected backend (never started for this), the trainer's `dataset.preview` of the
   * recipe's training file is compared with ours; disagreements become problems.
   */
  private async crossCheck(uri: vscode.Uri, session: PreviewSession, tsBad: Map<number, string>, size: number): Promise<DoctorIssue[]> {
    if (!this.ctx.trusted || this.ctx.phase !== 'connected' || size > AUTO_LIMIT_BYTES) return [];
    if (path.resolve(path.dirname(session.recipePath), session.data.train) !== uri.fsPath) return [];
    const conn = await this.ctx.backend();
    const py = (await conn.request('dataset.preview', { recipe_path: session.recipePath, limit: 1000, offset: 0 })) as unknown as TrainerPreview;
    const doc = await vscode.workspace.openTextDocument(uri);
    const issues = compareWithTrainer(py, tsBad, (line) => (line <= doc.lineCount ? session.previewLine(doc.lineAt(line - 1).text) : undefined));
    this.ctx.log.info(`dataset doctor: compared ${py.examples.length} examples and ${py.bad_rows.length} bad rows with the trainer: ${issues.length} differ`);
    return issues;
  }

  /** Runs automatically on small files a recipe names. */
  async auto(doc: vscode.TextDocument): Promise<void> {
    if (!doc.uri.fsPath.endsWith('.jsonl') || doc.uri.scheme !== 'file') return;
    const size = (await vscode.workspace.fs.stat(doc.uri)).size;
    if (size > AUTO_LIMIT_BYTES || !this.preview.recipeFor(doc.uri.fsPath)) return;
    await this.check(doc.uri).catch((err: unknown) => this.ctx.log.warn(`dataset doctor: ${String(err)}`));
  }

  dispose(): void {
    for (const ac of this.running.values()) ac.abort();
    this.diagnostics.dispose();
  }
}

function toDiagnostic(i: DoctorIssue): vscode.Diagnostic {
  const line = i.line - 1;
  const d = new vscode.Diagnostic(new vscode.Range(line, 0, line, Number.MAX_SAFE_INTEGER), i.message, i.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning);
  d.source = SOURCE;
  d.code = i.kind;
  return d;
}

class DoctorFixes implements vscode.CodeActionProvider {
  constructor(private readonly preview: DatasetPreview) {}

  /** "Set data.max_seq_len to N": N fits this line's full length (power of two). */
  private maxSeqLenFix(doc: vscode.TextDocument, d: vscode.Diagnostic, recipe: string): vscode.CodeAction | undefined {
    const session = this.preview.session(doc.uri.fsPath);
    if (session instanceof Error) return undefined;
    const tokens = session.fullLength(doc.lineAt(d.range.start.line).text);
    if (tokens === undefined) return undefined;
    const value = suggestedMaxSeqLen(tokens);
    const where = maxSeqLenEdit(fs.readFileSync(recipe, 'utf8'), value);
    if (!where) return undefined;
    const fix = new vscode.CodeAction(`Set data.max_seq_len to ${value} in ${path.basename(recipe)} (this example has ${tokens} tokens)`, vscode.CodeActionKind.QuickFix);
    const edit = new vscode.WorkspaceEdit();
    edit.replace(vscode.Uri.file(recipe), new vscode.Range(where.line, where.start, where.line, where.end), where.insert);
    fix.edit = edit;
    fix.diagnostics = [d];
    return fix;
  }

  provideCodeActions(doc: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const out: vscode.CodeAction[] = [];
    for (const d of context.diagnostics.filter((x) => x.source === SOURCE)) {
      if (d.code === 'duplicate') {
        const fix = new vscode.CodeAction('Delete this duplicate line', vscode.CodeActionKind.QuickFix);
        const edit = new vscode.WorkspaceEdit();
        edit.delete(doc.uri, new vscode.Range(d.range.start.line, 0, d.range.start.line + 1, 0));
        fix.edit = edit;
        fix.diagnostics = [d];
        fix.isPreferred = true;
        out.push(fix);
      }
      const recipe = this.preview.recipeFor(doc.uri.fsPath);
      if (recipe && (d.code === 'eos_masked' || (d.code === 'no_trained_tokens' && d.message.includes('max_seq_len')))) {
        const fix = this.maxSeqLenFix(doc, d, recipe);
        if (fix) out.push(fix);
      }
    }
    return out;
  }
}

/** Registers the doctor: diagnostics, automatic runs on open/save, quick fixes. */
export function registerDatasetDoctor(ctx: Ctx, preview: DatasetPreview): DatasetDoctorView {
  const view = new DatasetDoctorView(ctx, preview);
  ctx.push(
    view,
    vscode.workspace.onDidOpenTextDocument((d) => void view.auto(d)),
    vscode.workspace.onDidSaveTextDocument((d) => void view.auto(d)),
    vscode.workspace.onDidCloseTextDocument((d) => view.diagnostics.delete(d.uri)),
    preview.onDidChange(() => vscode.workspace.textDocuments.forEach((d) => void view.auto(d))),
    vscode.languages.registerCodeActionsProvider([{ pattern: '**/*.jsonl' }], new DoctorFixes(preview), { providedCodeActionKinds: [vscode.CodeActionKind.QuickFix] }),
  );
  vscode.workspace.textDocuments.forEach((d) => void view.auto(d));
  return view;
}
