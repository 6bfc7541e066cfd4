/**
 * Sends a run's inputs (the recipe, its local data files and a local base model folder) to the SSH
 * host before the run starts, over the ssh connection itself. Files are compared by content hash
 * and only changed ones move; an interrupted upload resumes from the bytes already on the remote;
 * progress is reported per byte. The layout under the remote mirror keeps the relative paths, so
 * the recipe's relative references hold there unchanged. No `vscode` import.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { runHelper, type RemoteHost } from './sshBootstrap';
import { SshError, shq, spawnSsh, type SshTarget } from './sshRunner';

/** One file to mirror: where it is here, its path under the mirror root, size and hash. */
export interface SyncEntry {
  local: string;
  rel: string;
  size: number;
  sha256: string;
}

/** Bytes sent so far of the whole sync. */
export interface SyncProgress {
  file: string;
  sentBytes: number;
  totalBytes: number;
}

/** What a sync did. */
export interface SyncResult {
  remoteRoot: string;
  files: number;
  uploaded: number;
  bytesSent: number;
  seconds: number;
}

/** The helper's manifest answer: per file, the byte offset to send from, or -1 when the remote already has it. */
const manifestSchema = z.object({ offsets: z.record(z.string(), z.number().int().min(-1)) });

/** The local files a recipe needs on the remote: itself, local data files and model folders. */
export function recipeInputs(recipePath: string): string[] {
  const dir = dirname(recipePath);
  const out = [recipePath];
  let doc: Record<string, unknown> = {};
  try {
    doc = (parseYaml(readFileSync(recipePath, 'utf8')) ?? {}) as Record<string, unknown>;
  } catch {
    return out; // the backend's validation reports the recipe's syntax errors with their lines
  }
  const data = (doc['data'] ?? {}) as Record<string, unknown>;
  for (const ref of [doc['base_model'], doc['tokenizer'], data['train'], data['eval']]) {
    // Hub ids and absolute paths (already on the remote) stay as they are.
    if (typeof ref !== 'string' || isAbsolute(ref)) continue;
    const p = resolve(dir, ref);
    if (existsSync(p)) out.push(...listFiles(p));
  }
  return [...new Set(out)];
}

function listFiles(p: string): string[] {
  const st = statSync(p);
  if (st.isFile()) return [p];
  if (!st.isDirectory()) return [];
  return readdirSync(p)
    .filter((n) => !n.startsWith('.'))
    .sort()
    .flatMap((n) => listFiles(join(p, n)));
}

/** The deepest folder holding every path. */
export function commonRoot(paths: string[]): string {
  let root = dirname(paths[0]!);
  while (!paths.every((p) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep))) root = dirname(root);
  return root;
}

/** Mirrors local files onto one SSH host; keeps a hash cache so unchanged files are not re-read. */
export class RemoteSync {
  private readonly hashes = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

  constructor(
    private readonly target: SshTarget,
    private readonly host: RemoteHost,
  ) {}

  /** The remote mirror folder of a local root folder. */
  remoteRootOf(localRoot: string): string {
    return `${this.host.dir}/files/${createHash('sha256').update(localRoot).digest('hex').slice(0, 12)}`;
  }

  /** Sync a recipe and its inputs; returns the recipe's path on the remote. */
  async syncRecipe(recipePath: string, onProgress?: (p: SyncProgress) => void): Promise<SyncResult & { remoteRecipe: string }> {
    const files = recipeInputs(resolve(recipePath));
    const root = commonRoot(files);
    const res = await this.syncFiles(root, files, onProgress);
    return { ...res, remoteRecipe: `${res.remoteRoot}/${relative(root, resolve(recipePath)).split(sep).join('/')}` };
  }

  /** Make the remote mirror of `root` hold these files (paths under root) with the same content. */
  async syncFiles(root: string, files: string[], onProgress?: (p: SyncProgress) => void): Promise<SyncResult> {
    const t0 = Date.now();
    const remoteRoot = this.remoteRootOf(root);
    const entries: SyncEntry[] = [];
    for (const f of files) entries.push({ local: f, rel: relative(root, f).split(sep).join('/'), ...(await this.hashOf(f)) });
    const ans = await runHelper(this.target, this.host, ['manifest', remoteRoot], JSON.stringify(entries.map(({ rel, size, sha256 }) => ({ path: rel, size, sha256: sha256 }))));
    const offsets = manifestSchema.parse(ans).offsets;
    const todo = entries.filter((e) => offsets[e.rel] !== -1);
    const totalBytes = todo.reduce((n, e) => n + e.size - (offsets[e.rel] ?? 0), 0);
    let sent = 0;
    for (const e of todo) {
      sent += await this.put(remoteRoot, e, offsets[e.rel] ?? 0, (n) => onProgress?.({ file: e.rel, sentBytes: sent + n, totalBytes }));
    }
    return { remoteRoot, files: entries.length, uploaded: todo.length, bytesSent: sent, seconds: (Date.now() - t0) / 1000 };
  }

  /**
   * Copy a folder (an adapter, a merged model) from the host into `localParent`, streamed through
   * ssh with tar on both ends; resolves with the local folder and the bytes received.
   */
  download(remotePath: string, localParent: string, onBytes?: (n: number) => void): Promise<{ dir: string; bytes: number }> {
    mkdirSync(localParent, { recursive: true });
    const remote = spawnSsh(this.target, `tar -C ${shq(dirname(remotePath))} -cf - ${shq(basename(remotePath))}`);
    const local = spawn('tar', ['-xf', '-', '-C', localParent], { stdio: ['pipe', 'ignore', 'pipe'] });
    remote.stdin!.end();
    let bytes = 0;
    let err = '';
    remote.stdout!.on('data', (c: Buffer) => {
      bytes += c.length;
      onBytes?.(bytes);
    });
    remote.stdout!.pipe(local.stdin!);
    remote.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    local.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const exit = (p: typeof remote) => new Promise<number>((r) => p.once('close', (code) => r(code ?? 1)));
    return Promise.all([exit(remote), exit(local)]).then(([rc, lc]) => {
      if (rc !== 0 || lc !== 0) throw new SshError(`downloading ${remotePath} from ${this.target.host} failed: ${err.trim() || `exit ${rc}/${lc}`}`, 'remote');
      return { dir: join(localParent, basename(remotePath)), bytes };
    });
  }

  private async hashOf(file: string): Promise<{ size: number; sha256: string }> {
    const st = statSync(file);
    const hit = this.hashes.get(file);
    if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit;
    const h = createHash('sha256');
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 22 })) h.update(chunk as Buffer);
    const entry = { size: st.size, mtimeMs: st.mtimeMs, sha256: h.digest('hex') };
    this.hashes.set(file, entry);
    return entry;
  }

  /** Stream one file from `offset` into the helper's `put`; resolves with the bytes sent. */
  private put(remoteRoot: string, e: SyncEntry, offset: number, onBytes: (n: number) => void): Promise<number> {
    const cmd = [this.host.python, this.host.helper, 'put', remoteRoot, e.rel, e.sha256, String(offset), String(e.size)].map(shq).join(' ');
    return new Promise((resolvePut, reject) => {
      const child = spawnSsh(this.target, cmd);
      let out = '';
      let err = '';
      let n = 0;
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      const src = createReadStream(e.local, { start: offset, highWaterMark: 1 << 20 });
      src.on('data', (c) => {
        n += c.length;
        onBytes(n);
      });
      src.on('error', (x) => child.kill() && reject(new Error(`cannot read ${e.local}: ${x.message}`)));
      child.stdin!.on('error', () => undefined);
      src.pipe(child.stdin!);
      child.once('error', (x) => reject(new SshError(`cannot run ssh: ${x.message}`, 'spawn')));
      child.once('close', (code) => {
        const line = out.trim().split('\n').pop() ?? '';
        let ans: { ok?: boolean; error?: string } = {};
        try {
          ans = JSON.parse(line) as typeof ans;
        } catch {
          /* reported below */
        }
        if (code === 0 && ans.ok) resolvePut(n);
        else reject(new SshError(`uploading ${e.rel} to ${this.target.host} stopped after ${offset + n} of ${e.size} bytes (it resumes on the next sync): ${ans.error ?? err.trim() ?? `exit ${code}`}`, 'remote'));
      });
    });
  }
}
