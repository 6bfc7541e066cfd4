/**
 * Runs the system `ssh` client, so the user's keys, agent, ProxyJump, ControlMaster and
 * known_hosts behave exactly as in their terminal. We never ask for or store a password: ssh runs
 * in batch mode and an authentication failure becomes an error that says what to fix.
 * No `vscode` import.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** How to reach one host with the system ssh. */
export interface SshTarget {
  /** A Host alias from the ssh config, or `user@host[:port]` style destination. */
  host: string;
  /** An ssh config file to use instead of ~/.ssh/config (`ssh -F`). */
  configFile?: string;
  /** The ssh binary (default `ssh` on PATH). */
  sshPath?: string;
  /** Seconds ssh may take to connect (default 15). */
  connectTimeoutS?: number;
}

/** What a finished remote command returned. */
export interface SshResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** A failed ssh invocation, with a message that tells the user what to do. */
export class SshError extends Error {
  constructor(
    message: string,
    readonly kind: 'host_key' | 'auth' | 'unreachable' | 'remote' | 'spawn',
  ) {
    super(message);
    this.name = 'SshError';
  }
}

/** The ssh options placed before the destination for every connection we open. */
export function sshArgs(t: SshTarget, extra: string[] = []): string[] {
  const args: string[] = [];
  if (t.configFile) args.push('-F', t.configFile);
  args.push('-o', 'BatchMode=yes', '-o', `ConnectTimeout=${t.connectTimeoutS ?? 15}`, '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3');
  return [...args, ...extra, '--', t.host];
}

/** Start `ssh host command` with pipes; the caller owns the child. */
export function spawnSsh(t: SshTarget, remoteCommand: string | undefined, extra: string[] = []): ChildProcess {
  const args = sshArgs(t, extra);
  if (remoteCommand !== undefined) args.push(remoteCommand);
  return spawn(t.sshPath ?? 'ssh', args, { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
}

/** Options of one remote command. */
export interface ExecOptions {
  /** Bytes written to the remote command's stdin (then closed). */
  input?: Buffer | string;
  /** Kill ssh after this long (default 120 s). */
  timeoutMs?: number;
}

/** Run one remote command to completion; rejects with SshError when ssh itself fails (exit 255). */
export function sshExec(t: SshTarget, remoteCommand: string, opts: ExecOptions = {}): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawnSsh(t, remoteCommand);
    } catch (e) {
      reject(new SshError(`cannot run ssh: ${String(e)}. Install the OpenSSH client and make sure \`ssh\` is on PATH.`, 'spawn'));
      return;
    }
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdin!.on('error', () => undefined); // a remote that exits early closes stdin under us
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new SshError(`cannot run ssh (${e.message}). Install the OpenSSH client and make sure \`ssh\` is on PATH.`, 'spawn'));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const c = code ?? (signal ? 255 : 0);
      if (c === 255) return reject(explainSshFailure(t.host, err, signal));
      resolve({ code: c, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin!.end(opts.input ?? '');
  });
}

/** Turn ssh's own stderr (exit 255) into an error that names the cause and the fix. */
export function explainSshFailure(host: string, stderr: string, signal?: NodeJS.Signals | null): SshError {
  const s = stderr.trim();
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|host key for .* has changed/i.test(s)) {
    return new SshError(`the host key of ${host} does not match your known_hosts, so ssh refused to connect (possible man-in-the-middle, or the host was reinstalled). ` +
      `If the change is expected, remove the old key with \`ssh-keygen -R <host>\` and connect once with \`ssh ${host}\` in a terminal to accept the new one.`, 'host_key');
  }
  if (/No .*host key is known|authenticity of host/i.test(s)) {
    return new SshError(`${host} is not in your known_hosts yet. Connect once with \`ssh ${host}\` in a terminal to check and accept its host key, then try again.`, 'host_key');
  }
  if (/Permission denied|Too many authentication failures|no mutual signature/i.test(s)) {
    return new SshError(`${host} refused our key (${firstLine(s)}). QLoRA Studio uses your ssh keys and agent and never asks for passwords: ` +
      `check that \`ssh ${host}\` works in a terminal without a password prompt (ssh-add your key, or set IdentityFile in ~/.ssh/config).`, 'auth');
  }
  if (signal) return new SshError(`ssh to ${host} was killed (${signal}) ${s ? `: ${firstLine(s)}` : ''}`, 'unreachable');
  return new SshError(`cannot reach ${host} over ssh: ${s ? firstLine(s) : 'ssh exited with code 255'}. Check that \`ssh ${host}\` works in a terminal.`, 'unreachable');
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.trim() && !l.startsWith('@@@'))?.trim() ?? s;
}

/** Quote one word for a POSIX shell on the remote side. */
export function shq(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
