/**
 * The page every webview loads, free of `vscode` so its CSP is unit-tested: scripts only with a
 * fresh nonce, styles/fonts/images only from the webview's own resource origin.
 */
import { randomBytes } from 'node:crypto';

/** What a page needs: how to address bundle files, the CSP source, the bundle name and title. */
export interface PageParts {
  cspSource: string;
  /** Maps a path below the extension root (e.g. ['out', 'webview', 'loss.js']) to a webview URI. */
  resource: (...parts: string[]) => string;
  bundle: string;
  title: string;
  nonce?: string;
}

/** Builds the HTML; the body holds only `#app`, each bundle renders its own DOM. */
export function renderPage(p: PageParts): string {
  const nonce = p.nonce ?? randomBytes(16).toString('base64');
  const csp = [
    "default-src 'none'",
    `img-src ${p.cspSource} data:`,
    `font-src ${p.cspSource}`,
    // Web components from @vscode-elements adopt constructed stylesheets; inline styles stay allowed.
    `style-src ${p.cspSource} 'unsafe-inline'`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  const r = (...parts: string[]) => escapeHtml(p.resource(...parts));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${r('out', 'webview', 'codicon.css')}" id="vscode-codicon-stylesheet">
<link rel="stylesheet" href="${r('out', 'webview', `${p.bundle}.css`)}">
<link rel="stylesheet" href="${r('media', 'webview.css')}">
<title>${escapeHtml(p.title)}</title>
</head>
<body>
<div id="app"></div>
<script nonce="${nonce}" src="${r('out', 'webview', `${p.bundle}.js`)}"></script>
</body>
</html>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
