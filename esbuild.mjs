// Bundles the extension (node, cjs, `vscode` external), the recipe language server (node, cjs), each webview (browser, iife) and the
// integration suites (node, cjs, `vscode` and `mocha` external). Offline: only local files.
//   node esbuild.mjs [--production] [--watch]
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');
const root = path.dirname(new URL(import.meta.url).pathname);
const out = path.join(root, 'out');

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
  absWorkingDir: root,
};

/** Entry points of one suite folder: its index plus every *.integration.test.ts. */
function suiteEntries(dir) {
  const abs = path.join(root, 'test', 'integration', dir);
  return readdirSync(abs)
    .filter((f) => f === 'index.ts' || f.endsWith('.integration.test.ts'))
    .map((f) => ({ in: path.join(abs, f), out: f.replace(/\.ts$/, '') }));
}

const builds = [
  {
    ...common,
    entryPoints: ['src/extension.ts'],
    outfile: 'out/extension.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
  },
  {
    // the recipe language server: its own Node process, no `vscode`
    ...common,
    entryPoints: ['src/language-server/server.ts'],
    outfile: 'out/languageServer.js',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
  },
  {
    ...common,
    entryPoints: [
      { in: 'webview-ui/loss/main.ts', out: 'loss' },
      { in: 'webview-ui/playground/main.ts', out: 'playground' },
      { in: 'webview-ui/preview/main.ts', out: 'preview' },
    ],
    outdir: 'out/webview',
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
  },
  ...['suite', 'suite-untrusted'].map((dir) => ({
    ...common,
    sourcemap: 'inline',
    minify: false,
    entryPoints: suiteEntries(dir),
    outdir: `out/test/${dir}`,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', 'mocha'],
  })),
];

function copyStatic() {
  const dest = path.join(out, 'webview');
  mkdirSync(dest, { recursive: true });
  for (const f of ['codicon.css', 'codicon.ttf']) copyFileSync(path.join(root, 'node_modules', '@vscode', 'codicons', 'dist', f), path.join(dest, f));
}

const started = Date.now();
if (!watch) rmSync(out, { recursive: true, force: true });
if (watch) {
  const contexts = await Promise.all(builds.map((b) => esbuild.context(b)));
  copyStatic();
  await Promise.all(contexts.map((c) => c.watch()));
  console.log('[esbuild] watching');
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  copyStatic();
  console.log(`[esbuild] built out/ in ${Date.now() - started} ms${production ? ' (production)' : ''}`);
}
