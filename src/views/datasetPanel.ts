/**
 * The dataset preview panel's host: one webview per dataset file showing every example as the
 * trainer sees it (webview-ui/preview/). Lines are indexed by a streamed scan and read on demand
 * for the visible window only; totals come from a background pass that yields to the editor.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { firstScreen } from '../dataset/firstScreen';
import { LineIndex } from '../dataset/lineIndex';
import { hostToPreview, previewToHost, toPreviewRow, type HostToPreview, type PreviewToHost, type RowFilter } from '../dataset/previewProtocol';
import { StatsBuilder } from '../dataset/previewStats';
import type { PreviewSession } from '../dataset/session';
import { assertNever } from '../util/assertNever';
import type { DatasetPreview } from './datasetPreview';
import { buildWebviewHtml, webviewOptions } from './html';

const BAD = 1;
const TRUNCATED = 2;

/** What the panel last reported drawing (read by the integration suite). */
export interface PanelDrawn {
  rows: number;
  trainedTokens: number;
  maskedTokens: number;
  specialTokens: number;
}

/** One open panel for one dataset file. */
class PreviewPanel implements vscode.Disposable {
  private readonly index: LineIndex;
  private readonly ac = new AbortController();
  private flags = new Uint8Array(1024);
  private selection: number[] | undefined; // line indices, or undefined for every line
  private filter: RowFilter = 'all';
  private search = '';
  drawn: PanelDrawn | undefined;

  constructor(readonly file: string, readonly panel: vscode.WebviewPanel, private readonly session: PreviewSession, private readonly ctx: Ctx, onDispose: () => void) {
    this.index = new LineIndex(file);
    panel.webview.options = webviewOptions(ctx.ext.extensionUri);
    panel.webview.html = buildWebviewHtml({ webview: panel.webview, extensionUri: ctx.ext.extensionUri, bundle: 'preview', title: `Preview ${path.basename(file)}` });
    panel.webview.onDidReceiveMessage((raw: unknown) => {
      const r = previewToHost.safeParse(raw);
      if (r.success) void this.handle(r.data).catch((err: unknown) => ctx.log.error(`dataset preview: ${String(err)}`));
      else ctx.log.warn(`dataset preview sent a bad message: ${r.error.message}`);
    });
    panel.onDidDispose(() => {
      this.ac.abort();
      onDispose();
    });
  }

  private post(msg: HostToPreview): void {
    void this.panel.webview.postMessage(hostToPreview.parse(msg));
  }

  private count(): number {
    return this.selection ? this.selection.length : this.index.lines;
  }

  private async handle(msg: PreviewToHost): Promise<void> {
    switch (msg.type) {
      case 'ready': {
        const d = this.session.data;
        this.post({ type: 'init', file: this.file, recipe: this.session.recipePath, maxSeqLen: d.max_seq_len, packing: d.packing });
        // The first screen goes out before the file is indexed or scanned: only its lines are read.
        const first = await firstScreen(this.file, this.session).catch((err: unknown) => {
          this.ctx.log.warn(`dataset preview: first screen: ${String(err)}`);
          return [];
        });
        if (first.length && !this.selection && !this.ac.signal.aborted) {
          this.post({ type: 'rows', start: 0, rows: first });
          this.post({ type: 'count', count: first.length, filter: 'all', search: '' });
        }
        let last = 0;
        void this.index.build(() => {
          if (!this.selection && Date.now() - last > 200) {
            last = Date.now();
            this.post({ type: 'count', count: this.index.lines, filter: 'all', search: '' });
          }
        }, this.ac.signal).then(() => {
          if (!this.selection) this.post({ type: 'count', count: this.index.lines, filter: 'all', search: '' });
          void this.scan();
        });
        return;
      }
      case 'rows': return this.sendRows(msg.start, msg.count);
      case 'select': return this.select(msg.filter, msg.search);
      case 'reveal': {
        const doc = await vscode.workspace.openTextDocument(this.file);
        const pos = new vscode.Position(msg.line - 1, 0);
        await vscode.window.showTextDocument(doc, { selection: new vscode.Range(pos, pos), viewColumn: vscode.ViewColumn.One });
        return;
      }
      case 'drawn': this.drawn = { rows: msg.rows, trainedTokens: msg.trainedTokens, maskedTokens: msg.maskedTokens, specialTokens: msg.specialTokens }; return;
      case 'error': this.ctx.log.error(`dataset preview view: ${msg.message}`); return;
      default: assertNever(msg);
    }
  }

  private async sendRows(start: number, count: number): Promise<void> {
    const fd = await fs.promises.open(this.file, 'r');
    try {
      const rows = [];
      const end = Math.min(this.count(), start + count);
      for (let k = start; k < end; k += 1) {
        const i = this.selection ? this.selection[k]! : k;
        const p = this.session.previewLine(await this.index.read(i, fd));
        rows.push(toPreviewRow(i + 1, p, (id) => this.session.tokenizer.isAdded(id)));
      }
      this.post({ type: 'rows', start, rows });
    } finally {
      await fd.close();
    }
  }

  private async select(filter: RowFilter, search: string): Promise<void> {
    this.filter = filter;
    this.search = search;
    if (filter === 'all' && !search) this.selection = undefined;
    else {
      const needle = search.toLowerCase();
      const fd = await fs.promises.open(this.file, 'r');
      const out: number[] = [];
      try {
        for (let i = 0; i < this.index.lines; i += 1) {
          if (filter === 'bad' && !(this.flags[i]! & BAD)) continue;
          if (filter === 'truncated' && !(this.flags[i]! & TRUNCATED)) continue;
          if (needle && !(await this.index.read(i, fd)).toLowerCase().includes(needle)) continue;
          out.push(i);
        }
      } finally {
        await fd.close();
      }
      this.selection = out;
    }
    this.post({ type: 'count', count: this.count(), filter, search });
  }

  /** The background pass for totals and per-line flags; yields every few lines. */
  private async scan(): Promise<void> {
    const stats = new StatsBuilder(this.session.data.max_seq_len);
    const fd = await fs.promises.open(this.file, 'r');
    let last = 0;
    try {
      for (let i = 0; i < this.index.lines && !this.ac.signal.aborted; i += 1) {
        if (i >= this.flags.length) {
          const bigger = new Uint8Array(this.flags.length * 2);
          bigger.set(this.flags);
          this.flags = bigger;
        }
        const text = await this.index.read(i, fd);
        stats.scannedLines = i + 1;
        if (text.trim() === '') continue;
        const p = this.session.previewLine(text);
        if (!p.ok) {
          stats.addBad();
          this.flags[i] = BAD;
        } else {
          stats.addExample(p.encoded.inputIds.length, p.trained, p.encoded.truncated);
          if (p.encoded.truncated) this.flags[i] = TRUNCATED;
        }
        if (i % 25 === 0) await new Promise((r) => setImmediate(r));
        if (Date.now() - last > 300) {
          last = Date.now();
          this.post({ type: 'stats', stats: stats.stats(this.index.lines, false) });
        }
      }
      this.post({ type: 'stats', stats: stats.stats(this.index.lines, !this.ac.signal.aborted) });
      if (this.filter !== 'all') await this.select(this.filter, this.search);
    } finally {
      await fd.close();
    }
  }

  dispose(): void {
    this.ac.abort();
    this.panel.dispose();
  }
}

/** Opens and tracks preview panels, one per dataset file. */
export class DatasetPanels implements vscode.Disposable {
  private readonly open = new Map<string, PreviewPanel>();

  constructor(private readonly ctx: Ctx, private readonly preview: DatasetPreview) {}

  /** Opens (or reveals) the panel for `file`. */
  show(file: string): void {
    const existing = this.open.get(file);
    if (existing) {
      existing.panel.reveal();
      return;
    }
    const session = this.preview.session(file);
    if (session instanceof Error) throw session;
    const panel = vscode.window.createWebviewPanel('qloraStudio.datasetPreview', `Preview: ${path.basename(file)}`, vscode.ViewColumn.Beside, { retainContextWhenHidden: true });
    this.open.set(file, new PreviewPanel(file, panel, session, this.ctx, () => this.open.delete(file)));
  }

  /** What the panel of `file` last drew, if open. */
  drawn(file: string): PanelDrawn | undefined {
    return this.open.get(file)?.drawn;
  }

  dispose(): void {
    for (const p of this.open.values()) p.dispose();
    this.open.clear();
  }
}
