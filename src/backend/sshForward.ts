/**
 * A local port forwarded to the remote backend's loopback port by the system ssh
 * (`ssh -N -L 127.0.0.1:LOCAL:127.0.0.1:REMOTE`). Ready when the local port accepts connections.
 * No `vscode` import.
 */
import type { ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { explainSshFailure, spawnSsh, type SshTarget } from './sshRunner';

/** A live forward; `closed` resolves when its ssh process exits. */
export interface SshForward {
  localPort: number;
  remotePort: number;
  child: ChildProcess;
  closed: Promise<void>;
  alive(): boolean;
  close(): void;
}

/** A free loopback port (bound then released; ssh binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Open a forward to `remotePort` on the remote's 127.0.0.1; retries once on a taken local port. */
export async function openForward(target: SshTarget, remotePort: number, timeoutMs = 20_000): Promise<SshForward> {
  for (let attempt = 0; ; attempt++) {
    const localPort = await freePort();
    const child = spawnSsh(target, undefined, ['-N', '-o', 'ExitOnForwardFailure=yes', '-o', 'ClearAllForwardings=no', '-L', `127.0.0.1:${localPort}:127.0.0.1:${remotePort}`]);
    child.stdin!.end();
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout!.resume();
    let exited = false;
    const closed = new Promise<void>((r) =>
      child.once('close', () => {
        exited = true;
        r();
      }),
    );
    child.once('error', () => (exited = true));
    const fwd: SshForward = {
      localPort,
      remotePort,
      child,
      closed,
      alive: () => !exited && child.exitCode === null && child.signalCode === null,
      close: () => {
        if (!exited) child.kill('SIGTERM');
      },
    };
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && fwd.alive()) {
      if (await canConnect(localPort)) return fwd;
      await new Promise((r) => setTimeout(r, 40));
    }
    fwd.close();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
    if (/Address already in use|cannot listen to port/i.test(stderr) && attempt === 0) continue;
    if (!stderr.trim() && Date.now() >= end) throw explainSshFailure(target.host, `the port forward did not open within ${timeoutMs} ms`);
    throw explainSshFailure(target.host, stderr || 'the port forward closed at once');
  }
}
