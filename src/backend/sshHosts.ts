/**
 * The SSH hosts the user can connect to: every concrete `Host` alias of their ssh config (following
 * `Include`, with globs and paths relative to ~/.ssh as ssh does) plus the hosts configured in the
 * `qloraStudio.backends` setting. No `vscode` import.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { z } from 'zod';

/** One configured remote backend (an entry of `qloraStudio.backends`). */
export const backendSettingSchema = z.object({
  /** Label in the Connect Backend pick (defaults to host). */
  name: z.string().min(1).optional(),
  /** An ssh destination: a Host alias or user@host. */
  host: z.string().min(1),
  /** Folder on the remote for the venv, the runs and synced files (default ~/.qlora-studio). */
  remoteDir: z.string().min(1).optional(),
  /** The remote Python (>= 3.10) to build the venv from; found on PATH when unset. */
  python: z.string().min(1).optional(),
  /** Reuse the packages (torch, bitsandbytes, ...) of this existing remote Python environment. */
  basePython: z.string().min(1).optional(),
  /** An ssh config file to use for this host instead of ~/.ssh/config (`ssh -F`). */
  sshConfigFile: z.string().min(1).optional(),
});
export type BackendSetting = z.infer<typeof backendSettingSchema>;

/** A host the user can pick, with where it came from. */
export interface SshHostEntry extends BackendSetting {
  source: 'ssh-config' | 'setting';
}

/** The concrete Host aliases of an ssh config file and its Includes (wildcard patterns skipped). */
export function sshConfigHosts(file: string, seen = new Set<string>(), sshDir = dirname(file)): string[] {
  if (seen.has(file)) return [];
  seen.add(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const hosts: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^(\w+)\s*(?:=\s*|\s+)(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    const words = splitWords(m[2]!);
    if (key === 'host') {
      for (const w of words) if (!/[*?!]/.test(w) && !hosts.includes(w)) hosts.push(w);
    } else if (key === 'include') {
      for (const pattern of words) {
        for (const f of expandInclude(pattern, sshDir)) for (const h of sshConfigHosts(f, seen, sshDir)) if (!hosts.includes(h)) hosts.push(h);
      }
    }
  }
  return hosts;
}

/** Every host to offer: the setting's entries first (they carry options), then the ssh config's. */
export function listSshHosts(settingValue: unknown, configFile = join(homedir(), '.ssh', 'config')): { hosts: SshHostEntry[]; errors: string[] } {
  const errors: string[] = [];
  const hosts: SshHostEntry[] = [];
  const entries = Array.isArray(settingValue) ? settingValue : settingValue === undefined ? [] : [settingValue];
  entries.forEach((e, i) => {
    const r = backendSettingSchema.safeParse(typeof e === 'string' ? { host: e } : e);
    if (r.success) hosts.push({ ...r.data, source: 'setting' });
    else errors.push(`qloraStudio.backends[${i}] is not a valid host entry (${r.error.issues[0]?.message ?? 'invalid'}): give at least {"host": "my-gpu-box"}`);
  });
  for (const h of sshConfigHosts(configFile)) if (!hosts.some((x) => x.host === h)) hosts.push({ host: h, source: 'ssh-config' });
  return { hosts, errors };
}

function splitWords(s: string): string[] {
  const words: string[] = [];
  for (const m of s.matchAll(/"([^"]*)"|(\S+)/g)) words.push(m[1] ?? m[2]!);
  return words;
}

/** Include paths: `~` expands, relative paths are under ~/.ssh (user config), `*` and `?` glob within one segment. */
function expandInclude(pattern: string, baseDir: string): string[] {
  const p = pattern.startsWith('~') ? join(homedir(), pattern.slice(1)) : isAbsolute(pattern) ? pattern : join(baseDir, pattern);
  if (!/[*?]/.test(p)) return [p];
  const parts = p.split('/');
  let paths = [parts[0] === '' ? '/' : parts[0]!];
  for (const part of parts.slice(1)) {
    if (!part) continue;
    if (!/[*?]/.test(part)) {
      paths = paths.map((d) => join(d, part));
      continue;
    }
    const re = new RegExp(`^${part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    paths = paths.flatMap((d) => {
      try {
        return readdirSync(d).filter((n) => re.test(n)).sort().map((n) => join(d, n));
      } catch {
        return [];
      }
    });
  }
  return paths.filter((f) => {
    try {
      return statSync(f).isFile() && !basename(f).startsWith('.');
    } catch {
      return false;
    }
  });
}
