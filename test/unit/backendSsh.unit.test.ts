/**
 * The SSH backend's pure parts: the host list (ssh config with Include, the setting), ssh error
 * messages, shell quoting, recipe inputs to sync, and the status bar for a remote connection.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { listSshHosts, sshConfigHosts } from '../../src/backend/sshHosts';
import { explainSshFailure, shq } from '../../src/backend/sshRunner';
import { commonRoot, recipeInputs } from '../../src/backend/sshSync';
import { statusBarView } from '../../src/views/statusBarText';

test('ssh config hosts: concrete aliases, Include with globs relative to the ssh folder, no wildcards, no loops', () => {
  const d = mkdtempSync(join(tmpdir(), 'qls-sshcfg-'));
  mkdirSync(join(d, 'conf.d'));
  writeFileSync(join(d, 'config'), 'Host gpu-box gpu2 # two names\n  HostName 10.0.0.2\nHost *.internal !bastion\n  User me\nInclude conf.d/*.conf\nInclude config\n');
  writeFileSync(join(d, 'conf.d', 'a.conf'), 'Host=cloud-a\n  HostName a.example\n');
  writeFileSync(join(d, 'conf.d', 'b.conf'), 'host "cloud b"\n');
  writeFileSync(join(d, 'conf.d', 'skip.txt'), 'Host nope\n');
  assert.deepEqual(sshConfigHosts(join(d, 'config')), ['gpu-box', 'gpu2', 'cloud-a', 'cloud b']);
});

test('host list: the setting first (with its options), then the ssh config; bad entries are reported', () => {
  const d = mkdtempSync(join(tmpdir(), 'qls-sshcfg-'));
  writeFileSync(join(d, 'config'), 'Host gpu-box\nHost other\n');
  const { hosts, errors } = listSshHosts([{ host: 'gpu-box', remoteDir: '/data/qls' }, 'plain-host', { name: 'no host' }], join(d, 'config'));
  assert.deepEqual(hosts.map((h) => [h.host, h.source]), [['gpu-box', 'setting'], ['plain-host', 'setting'], ['other', 'ssh-config']]);
  assert.equal(hosts[0]!.remoteDir, '/data/qls');
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /qloraStudio\.backends\[2\]/);
});

test('ssh failures name the cause and the fix', () => {
  assert.equal(explainSshFailure('h', '@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.').kind, 'host_key');
  assert.match(explainSshFailure('h', 'Host key verification failed.').message, /ssh-keygen -R/);
  assert.match(explainSshFailure('h', 'No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.').message, /not in your known_hosts/);
  const auth = explainSshFailure('h', 'me@h: Permission denied (publickey).');
  assert.equal(auth.kind, 'auth');
  assert.match(auth.message, /never asks for passwords/);
  assert.equal(explainSshFailure('h', 'ssh: connect to host h port 22: Connection refused').kind, 'unreachable');
});

test('shell quoting keeps every byte', () => {
  assert.equal(shq('/a/b-c.py'), '/a/b-c.py');
  assert.equal(shq("it's $HOME"), `'it'\\''s $HOME'`);
});

test('recipe inputs: the recipe, local data and model folders; hub ids and absolute paths stay', () => {
  const d = mkdtempSync(join(tmpdir(), 'qls-inputs-'));
  mkdirSync(join(d, 'r'));
  mkdirSync(join(d, 'data'));
  mkdirSync(join(d, 'r', 'model'));
  writeFileSync(join(d, 'data', 'train.jsonl'), '{}\n');
  writeFileSync(join(d, 'r', 'model', 'config.json'), '{}');
  writeFileSync(join(d, 'r', 'model', '.hidden'), '');
  writeFileSync(join(d, 'r', 'x.qlora.yaml'), 'base_model: ./model\ntokenizer: org/tok\ndata:\n  train: ../data/train.jsonl\n  eval: /abs/eval.jsonl\n');
  const files = recipeInputs(join(d, 'r', 'x.qlora.yaml'));
  assert.deepEqual(files, [join(d, 'r', 'x.qlora.yaml'), join(d, 'r', 'model', 'config.json'), join(d, 'data', 'train.jsonl')]);
  assert.equal(commonRoot(files), d);
});

test('status bar for an SSH backend: host shown, a dropped tunnel reads as reconnecting', () => {
  assert.match(statusBarView({ phase: 'connected', device: 'H100 80 GiB', remote: 'gpu-box' }).text, /H100 80 GiB on gpu-box/);
  const down = statusBarView({ phase: 'connecting', remote: 'gpu-box' });
  assert.match(down.text, /gpu-box reconnecting/);
  assert.match(down.tooltip, /Runs keep going on gpu-box/);
  assert.equal(statusBarView({ phase: 'disconnected', remote: 'gpu-box' }).command, 'qloraStudio.connectBackend');
  assert.equal(statusBarView({ phase: 'failed', remote: 'gpu-box' }).error, true);
});
