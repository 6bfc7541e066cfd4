/**
 * The one HTML builder for every webview (thin `vscode` wrapper over renderPage): resources only
 * from `out/webview` and `media`, addressed through asWebviewUri.
 */
import * as vscode from 'vscode';
import { renderPage } from './htmlPage';

/** Options applied to every webview: scripts on, resources only from our bundle folders. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'out', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

/** What a page needs: its bundle name under out/webview (`loss` → loss.js and loss.css) and a title. */
export interface PageSpec {
  webview: vscode.Webview;
  extensionUri: vscode.Uri;
  bundle: string;
  title: string;
}

/** Builds a webview's HTML with a fresh nonce. */
export function buildWebviewHtml(p: PageSpec): string {
  return renderPage({
    cspSource: p.webview.cspSource,
    resource: (...parts) => p.webview.asWebviewUri(vscode.Uri.joinPath(p.extensionUri, ...parts)).toString(),
    bundle: p.bundle,
    title: p.title,
  });
}
