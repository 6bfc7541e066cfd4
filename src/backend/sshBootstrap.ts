/**
 * Bootstraps a remote host over ssh: finds a Python >= 3.10, creates a venv in the remote folder,
 * installs the backend wheel shipped with the extension (sent over the ssh connection), and checks
 * torch / CUDA / bitsandbytes. Done again only when the wheel (the backend version) changes.
 * No `vscode` import.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { z } from 'zod';
import { HELPER_SOURCE, HELPER_VERSION } from './sshHelperScript';
import { SshError, shq, sshExec, type SshTarget } from './sshRunner';

/** Where and how to bootstrap. */
export interface BootstrapOptions {
  target: SshTarget;
  /** Remote folder (default `~/.qlora-studio`); `~/` is the remote home. */
  remoteDir?: string;
  /** The backend wheel on this machine (shipped inside the extension). */
  wheelPath: string;
  /** A remote Python to use instead of searching PATH. */
  python?: string;
  /** A remote Python environment whose packages the venv reuses (torch already installed there). */
  basePython?: string;
  /** Progress messages for a notification. */
  onProgress?: (message: string) => void;
}

const problemSchema = z.object({ what: z.string(), fix: z.string() });

/** What the remote environment has, and what is missing with the command to fix it. */
export const envReportSchema = z.object({
  env: z.record(z.string(), z.unknown()),
  problems: z.array(problemSchema),
});
export type EnvReport = z.infer<typeof envReportSchema>;

/** A bootstrapped remote: its absolute folder, the helper's path and the environment report. */
export interface RemoteHost {
  dir: string;
  helper: string;
  python: string;
  /** True when this call installed the backend (false: the existing install was current). */
  installed: boolean;
  report: EnvReport;
}

const PY_CANDIDATES = ['python3.13', 'python3.12', 'python3.11', 'python3.10', 'python3'];

/** The identity of what gets installed: the wheel's bytes plus the helper's version. */
export async function backendStamp(wheelPath: string): Promise<string> {
  const h = createHash('sha256').update(await readFile(wheelPath)).update(`helper-${HELPER_VERSION}`).update(HELPER_SOURCE);
  return h.digest('hex').slice(0, 32);
}

/** A remote folder expression for sh: `~/x` becomes `"$HOME"/x`. */
function dirExpr(dir: string): string {
  if (dir === '~') return '"$HOME"';
  return dir.startsWith('~/') ? `"$HOME"/${shq(dir.slice(2))}` : shq(dir);
}

/** Run the helper on the remote and parse its JSON answer; `input` goes to its stdin. */
export async function runHelper(target: SshTarget, host: Pick<RemoteHost, 'helper' | 'python'>, args: string[], input?: Buffer | string, timeoutMs?: number): Promise<Record<string, unknown>> {
  const r = await sshExec(target, [host.python, host.helper, ...args].map(shq).join(' '), { input, timeoutMs });
  const line = r.stdout.toString().trim().split('\n').pop() ?? '';
  let ans: Record<string, unknown>;
  try {
    ans = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new SshError(`the QLoRA helper on ${target.host} failed (${args[0]}): ${r.stderr.trim().slice(-1000) || `exit code ${r.code}`}`, 'remote');
  }
  if (ans['ok'] !== true) throw new SshError(`on ${target.host}: ${String(ans['error'] ?? 'the helper failed')}`, 'remote');
  return ans;
}

/** Make sure the remote has the current backend installed; cheap (one ssh round trip) when it has. */
export async function bootstrapRemote(o: BootstrapOptions): Promise<RemoteHost> {
  const progress = o.onProgress ?? (() => undefined);
  const stamp = await backendStamp(o.wheelPath);
  const helperName = `helper-${HELPER_VERSION}.py`;
  const candidates = o.python ? [o.python] : PY_CANDIDATES;
  progress(`checking ${o.target.host}`);
  // One round trip: when the install is current, print its report; else find a Python.
  const probe = [
    `D=${dirExpr(o.remoteDir ?? '~/.qlora-studio')}`,
    'mkdir -p "$D" && chmod 700 "$D" && cd "$D" || exit 1',
    'echo "DIR=$(pwd -P)"',
    `if [ "$(cat stamp 2>/dev/null)" = ${shq(stamp)} ] && [ -x venv/bin/python ] && [ -f ${helperName} ] && [ -f check.json ]; then echo "REPORT=$(cat check.json)"; exit 0; fi`,
    `for p in ${candidates.map(shq).join(' ')}; do if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then echo "PY=$(command -v "$p")"; break; fi; done`,
    'true',
  ].join('\n');
  const r = await sshExec(o.target, `sh -c ${shq(probe)}`);
  const kv = Object.fromEntries(r.stdout.toString().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]).filter((p) => p.length === 2));
  const dir = kv['DIR'];
  if (r.code !== 0 || !dir) throw new SshError(`cannot create the folder ${o.remoteDir ?? '~/.qlora-studio'} on ${o.target.host}: ${r.stderr.trim() || `exit ${r.code}`}`, 'remote');
  const helper = `${dir}/${helperName}`;
  const venvPython = `${dir}/venv/bin/python`;
  if (kv['REPORT']) {
    return { dir, helper, python: venvPython, installed: false, report: envReportSchema.parse(JSON.parse(kv['REPORT'])) };
  }
  const python = kv['PY'];
  if (!python) {
    throw new SshError(`no Python 3.10 or newer found on ${o.target.host} (tried ${candidates.join(', ')}). Install one (e.g. \`sudo apt install python3 python3-venv\`) ` +
      `or set "python" for this host in the qloraStudio.backends setting.`, 'remote');
  }
  progress(`sending the backend package to ${o.target.host}`);
  const wheelName = basename(o.wheelPath);
  await upload(o.target, `${dir}/${helperName}`, Buffer.from(HELPER_SOURCE));
  await upload(o.target, `${dir}/${wheelName}`, await readFile(o.wheelPath));
  progress(`installing the backend on ${o.target.host} (${python})`);
  const ans = await runHelper(o.target, { helper, python }, ['bootstrap', dir, python, `${dir}/${wheelName}`, stamp, o.basePython ?? ''], undefined, 15 * 60_000);
  return { dir, helper, python: venvPython, installed: true, report: envReportSchema.parse(ans) };
}

async function upload(target: SshTarget, remotePath: string, data: Buffer): Promise<void> {
  const tmp = `${remotePath}.tmp`;
  const r = await sshExec(target, `cat > ${shq(tmp)} && mv -f ${shq(tmp)} ${shq(remotePath)}`, { input: data });
  if (r.code !== 0) throw new SshError(`cannot write ${remotePath} on ${target.host}: ${r.stderr.trim()}`, 'remote');
}
