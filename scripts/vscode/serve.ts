/**
 * The product, served: code-server on 127.0.0.1 with this checkout's extension installed (a link
 * in a private extensions folder) and a workspace opened. Prints the URL, then runs until Ctrl-C or
 * SIGTERM, when it stops code-server's whole process group (extension hosts and backend included).
 * Expects `npm run build` done; scripts/start-vscode.sh does every step before it.
 *
 *   tsx scripts/vscode/serve.ts [--workspace DIR] [--port N] [--trust]
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot, startCodeServer, workbenchUrl } from './codeServer';

/** Publisher, name and version of the extension in `extensionDir`, read from its manifest. */
export function extensionIdentity(extensionDir: string): { id: string; folderName: string } {
  const pkg = JSON.parse(readFileSync(path.join(extensionDir, 'package.json'), 'utf8')) as { publisher?: string; name?: string; version?: string };
  if (!pkg.publisher || !pkg.name || !pkg.version) {
    throw new Error(`${extensionDir}/package.json needs publisher, name and version to install the extension`);
  }
  return { id: `${pkg.publisher}.${pkg.name}`, folderName: `${pkg.publisher}.${pkg.name}-${pkg.version}` };
}

/**
 * Installs `extensionDir` into `extensionsDir` as a link, the way code-server finds extensions
 * placed by hand; the link is replaced, so a rebuilt checkout is picked up on the next start.
 */
export function linkExtension(extensionDir: string, extensionsDir: string): string {
  const { folderName } = extensionIdentity(extensionDir);
  mkdirSync(extensionsDir, { recursive: true });
  const link = path.join(extensionsDir, folderName);
  if (existsSync(link) || isLink(link)) rmSync(link, { recursive: false, force: true });
  symlinkSync(extensionDir, link, 'dir');
  return link;
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { workspace: { type: 'string' }, port: { type: 'string' }, trust: { type: 'boolean' } },
  });
  const workspace = path.resolve(values.workspace ?? path.join(repoRoot, 'examples'));
  if (!existsSync(workspace)) throw new Error(`workspace ${workspace} does not exist`);
  if (!existsSync(path.join(repoRoot, 'out', 'extension.js'))) throw new Error('out/extension.js is missing: run `npm run build` first');
  const port = values.port ? Number(values.port) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new Error(`--port must be a port number, got ${values.port}`);
  const workDir = path.join(repoRoot, '.test-work', 'start');
  const server = await startCodeServer({
    workDir,
    workspaceTrust: values.trust ?? false,
    ...(port ? { port } : {}),
    env: { QLORA_STUDIO_PYTHON: process.env.QLORA_STUDIO_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python') },
    // examples/README.md says what to try first; VS Code opens it on start.
    settings: { 'workbench.startupEditor': 'readme' },
    beforeStart: (dirs) => {
      linkExtension(repoRoot, dirs.extensions);
    },
  });
  const url = workbenchUrl(server.url, workspace);
  process.stdout.write(`\nQLoRA Studio is running in VS Code (code-server, pid ${server.pid}):\n\n  ${url}\n\nlogs: ${path.relative(repoRoot, server.logFile)}\nPress Ctrl-C to stop.\n`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      stopping = true;
      process.stdout.write(`\n${sig}: stopping code-server (process group ${server.pid})...\n`);
      void server.stop().then(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGHUP', () => stop('SIGHUP'));
    void server.exited.then((code) => {
      if (stopping) return;
      process.stdout.write(`code-server exited (code ${code}); see ${server.logFile}\n`);
      void server.stop().then(resolve);
    });
  });
  process.stdout.write('stopped.\n');
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
