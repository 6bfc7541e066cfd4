import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostToLoss, hostToPlayground, lossToHost, parseMessage, playgroundToHost } from '../../src/protocol/webview';
import { renderPage } from '../../src/views/htmlPage';

test('loss view messages parse, and malformed ones are refused with a reason', () => {
  const ok = parseMessage(hostToLoss, { type: 'events', runId: 'r', events: [{ seq: 1, type: 'metrics', data: { step: 1, loss: 2 } }] });
  assert.ok(ok.ok);
  const bad = parseMessage(hostToLoss, { type: 'events', runId: 'r', events: [{ seq: 1.5, type: 'status', data: {} }] });
  assert.ok(!bad.ok);
  if (!bad.ok) assert.match(bad.error, /seq|type/);
  assert.ok(!parseMessage(hostToLoss, { type: 'nope' }).ok);
  assert.ok(parseMessage(lossToHost, { type: 'ready', lastSeq: { r: 3 } }).ok);
  assert.ok(parseMessage(lossToHost, { type: 'points', requestId: 1, runId: 'r', points: { loss: [[1, 2.5]] }, drawnSteps: 1, shown: [{ runId: 'r', color: '#4e9de6' }], chart: { width: 800, height: 300 } }).ok);
  assert.ok(!parseMessage(lossToHost, { type: 'points', requestId: 1, runId: 'r', points: { loss: [[1]] }, drawnSteps: 1, shown: [], chart: { width: 0, height: 0 } }).ok);
  assert.ok(!parseMessage(lossToHost, { type: 'points', requestId: 1, runId: 'r', points: {} }).ok, 'drawnSteps is required');
  assert.ok(parseMessage(hostToLoss, { type: 'overlay', runIds: ['a', 'b'] }).ok);
  assert.ok(!parseMessage(hostToLoss, { type: 'overlay', runIds: 'a' }).ok, 'overlay takes a list of run ids');
  assert.ok(!parseMessage(lossToHost, { type: 'exportPng', dataUrl: 'javascript:alert(1)' }).ok, 'only PNG data URLs are saved');
});

test('playground messages carry validated sampling settings', () => {
  const params = { max_new_tokens: 16, temperature: 0.7, top_p: 0.9, top_k: 50, repetition_penalty: 1 };
  assert.ok(parseMessage(playgroundToHost, { type: 'generate', genId: 1, mode: 'prompt', prompt: 'hi', adapter: null, params }).ok);
  assert.ok(!parseMessage(playgroundToHost, { type: 'generate', genId: 1, mode: 'prompt', prompt: 'hi', adapter: null, params: { ...params, top_p: 0 } }).ok);
  assert.ok(!parseMessage(playgroundToHost, { type: 'generate', genId: 1, mode: 'chat', messages: [{ role: 'tool', content: 'x' }], adapter: null, params }).ok);
  assert.ok(parseMessage(hostToPlayground, { type: 'done', genId: 1, side: 'adapter', stopped: true }).ok);
  assert.ok(!parseMessage(hostToPlayground, { type: 'chunk', genId: 1, side: 'both', text: 'x' }).ok);
});

test('the page has a nonce-only script CSP and loads its bundle with that nonce', () => {
  const html = renderPage({ cspSource: 'https://wv.example', resource: (...p) => `https://wv.example/${p.join('/')}`, bundle: 'loss', title: 'A <b>', nonce: 'abc123' });
  assert.match(html, /script-src 'nonce-abc123'/);
  assert.match(html, /default-src 'none'/);
  assert.ok(!/script-src[^;]*unsafe/.test(html), 'no unsafe script sources');
  assert.match(html, /<script nonce="abc123" src="https:\/\/wv.example\/out\/webview\/loss.js"><\/script>/);
  assert.match(html, /<title>A &#60;b&#62;<\/title>/);
  const other = renderPage({ cspSource: 'x', resource: () => 'y', bundle: 'b', title: 't' });
  const n1 = /nonce-([^']+)'/.exec(other)?.[1];
  const n2 = /nonce-([^']+)'/.exec(renderPage({ cspSource: 'x', resource: () => 'y', bundle: 'b', title: 't' }))?.[1];
  assert.ok(n1 && n2 && n1 !== n2 && n1.length >= 16, 'a fresh random nonce per page');
});
