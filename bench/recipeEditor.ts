/**
 * Recipe editor latency, measured against the real language server process over LSP (the built
 * out/languageServer.js when present, else the source through tsx): completion p95 over many
 * positions and full diagnostics (parse, schema, cross-field and disk checks, memory estimate,
 * publish) after each edit of a 200-line recipe.
 *   npx tsx bench/recipeEditor.ts [--requests 600] [--edits 200]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { LspClient } from '../test/unit/lspHarness';
import { makeWorkspace } from '../test/unit/lspWorkspace';

const ROOT = resolve(__dirname, '..');
const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};

/** A 200-line recipe: every field of the full fixture with a comment above it, padded with notes. */
function recipe200(): string {
  const full = readFileSync(join(ROOT, 'test/fixtures/recipes/valid/full.qlora.yaml'), 'utf8')
    .replace('./models/tiny-llama', './models/llama-8b')
    .replace(/data\/(train|eval)\.jsonl/g, 'data/instr.jsonl')
    .replace('./models/tiny-llama-tokenizer', './models/llama-8b');
  const out: string[] = [];
  for (const line of full.split('\n')) {
    if (/^\s*\w+:/.test(line)) out.push(`${' '.repeat(line.length - line.trimStart().length)}# ${line.trim().split(':')[0]} — see the hover for the playbook`);
    out.push(line);
  }
  while (out.length < 200) out.push(`# note ${out.length}: experiment log line kept with the recipe`);
  return out.slice(0, 200).join('\n') + '\n';
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const round = (x: number): number => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  const requests = arg('requests', 600);
  const edits = arg('edits', 200);
  const ws = makeWorkspace();
  const bundle = existsSync(join(ROOT, 'out/languageServer.js'));
  const lsp = await LspClient.start(ws.dir, bundle);
  const uri = ws.uri('bench.qlora.yaml');
  const text = recipe200();
  const lines = text.split('\n');
  await lsp.open(uri, text);
  const positions: Array<[number, number]> = [];
  for (const [n, l] of lines.entries()) {
    const m = /^(\s*)(\w+):\s*(.*)$/.exec(l);
    if (m) positions.push([n, (m[1] ?? '').length + 1], [n, l.indexOf(':') + 2]);
  }
  for (let i = 0; i < 50; i++) await lsp.completion(uri, ...(positions[i % positions.length] as [number, number])); // warm-up
  const completion: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    await lsp.completion(uri, ...(positions[i % positions.length] as [number, number]));
    completion.push(performance.now() - t0);
  }
  const diagnostics: number[] = [];
  let count = 0;
  for (let i = 0; i < edits + 20; i++) {
    const edited = text.replace(/lr: [\d.e-]+/, `lr: ${(1 + (i % 9)) * 1e-4}`);
    const t0 = performance.now();
    count = (await lsp.open(uri, edited)).length;
    if (i >= 20) diagnostics.push(performance.now() - t0);
  }
  await lsp.stop();
  ws.dispose();
  const result = {
    name: 'recipe-editor',
    completion_p95_ms: round(pct(completion, 95)),
    completion_median_ms: round(pct(completion, 50)),
    diagnostics_ms: round(pct(diagnostics, 50)),
    diagnostics_p95_ms: round(pct(diagnostics, 95)),
    targets: { completion_p95_ms: 20, diagnostics_ms: 50 },
    recipe_lines: lines.length - 1,
    diagnostics_per_edit: count,
    completion_requests: requests,
    edits,
    server: bundle ? 'out/languageServer.js (esbuild bundle)' : 'src/language-server/server.ts via tsx',
    method: 'LSP over stdio from a Node client; completion: request to response at alternating key and value positions; diagnostics: full-text didChange to the publishDiagnostics of that version (median over edits)',
    command: `npx tsx bench/recipeEditor.ts --requests ${requests} --edits ${edits}`,
    date: new Date().toISOString(),
    machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${process.platform}; load average ${loadavg()[0]?.toFixed(2)}`,
    versions: { node: process.version, 'vscode-languageserver': pkgVersion('vscode-languageserver'), yaml: pkgVersion('yaml'), zod: pkgVersion('zod') },
  };
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'recipe-editor.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(out, 'recipe-editor.md'), markdown(result));
  console.log(JSON.stringify(result, null, 2));
}

function pkgVersion(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

function markdown(r: Record<string, unknown> & { versions: Record<string, string> }): string {
  return `# Recipe editor latency

| Figure | Value | Target |
| --- | --- | --- |
| completion p95 | ${String(r['completion_p95_ms'])} ms | < 20 ms |
| completion median | ${String(r['completion_median_ms'])} ms | |
| full diagnostics (median) | ${String(r['diagnostics_ms'])} ms | < 50 ms |
| full diagnostics p95 | ${String(r['diagnostics_p95_ms'])} ms | |

- Recipe: ${String(r['recipe_lines'])} lines; ${String(r['completion_requests'])} completion requests, ${String(r['edits'])} edits
- Server: ${String(r['server'])}
- Method: ${String(r['method'])}
- Command: \`${String(r['command'])}\`
- Date: ${String(r['date'])}
- Machine: ${String(r['machine'])}
- Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', ')}
`;
}

void main();
