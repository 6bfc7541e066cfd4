/**
 * The playground: a prompt or a chat, sampling settings (defaults from the recipe), and the
 * streamed answers of the base model and base+adapter side by side, with a stop button.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import { assertNever, hostToPlayground, samplingParams, type HostToPlayground, type PlaygroundToHost, type PlaygroundMode, type SamplingParams, type Side } from '../../src/protocol/webview';
import { createBridge, el } from '../shared/bridge';
import './playground.css';

type Msg = { role: 'user' | 'assistant'; content: string };

const bridge = createBridge<HostToPlayground, PlaygroundToHost>(hostToPlayground, (error) => bridge.post({ type: 'error', message: `bad host message: ${error}` }));
type Init = Extract<HostToPlayground, { type: 'init' }>;
/** What survives a reload: the inputs, the last answers, and the last `init` so the host can reopen the same panel. */
const saved = (bridge.getState() ?? {}) as { mode?: string; modeChosen?: boolean; history?: Msg[]; prompt?: string; outputs?: Partial<Record<Side, string>>; init?: Init };
let mode: PlaygroundMode = saved.mode === 'chat' ? 'chat' : 'prompt';
/** True once the user picked a mode here: the recipe's suggestion then no longer overrides it. */
let modeChosen = saved.modeChosen === true;
let lastInit: Init | undefined = saved.init;
const history: Msg[] = Array.isArray(saved.history) ? saved.history : [];
let genId = 0;
let running: number | undefined;
let pending = new Set<Side>();
let automation: number | undefined;
let currentAdapter: string | null = null;

type Field = HTMLElement & { value: string };
const modeSelect = el('vscode-single-select', { id: 'mode' }) as Field;
function renderModes(): void {
  // The select reads its options asynchronously, so mark the chosen one instead of setting value.
  modeSelect.replaceChildren(
    ...(['chat', 'prompt'] as const).map((m) => {
      const o = el('vscode-option', { value: m }, m === 'prompt' ? 'Prompt (raw text)' : 'Chat (chat template)');
      if (m === mode) o.setAttribute('selected', '');
      return o;
    }),
  );
}
renderModes();
const adapterSelect = el('vscode-single-select', { id: 'adapter' }) as Field;
const fields: Record<keyof SamplingParams, Field> = {
  max_new_tokens: el('vscode-textfield', { type: 'number', id: 'max_new_tokens' }) as Field,
  temperature: el('vscode-textfield', { type: 'number', step: '0.05', id: 'temperature' }) as Field,
  top_p: el('vscode-textfield', { type: 'number', step: '0.05', id: 'top_p' }) as Field,
  top_k: el('vscode-textfield', { type: 'number', id: 'top_k' }) as Field,
  repetition_penalty: el('vscode-textfield', { type: 'number', step: '0.05', id: 'repetition_penalty' }) as Field,
};
const input = el('vscode-textarea', { id: 'input', rows: '4', placeholder: 'Type a prompt (Ctrl+Enter to generate)' }) as Field;
input.value = saved.prompt ?? '';
const generateBtn = el('vscode-button', { id: 'generate' }, 'Generate');
const stopBtn = el('vscode-button', { id: 'stop', secondary: '', disabled: '' }, 'Stop');
const clearBtn = el('vscode-button', { id: 'clear', secondary: '' }, 'Clear chat');
const baseLabel = el('div', { class: 'model' });
const chatLog = el('div', { class: 'chat' });
const out: Record<Side, HTMLElement> = { base: el('pre', { class: 'output', id: 'out-base' }), adapter: el('pre', { class: 'output', id: 'out-adapter' }) };
const error = el('div', { class: 'error', role: 'alert' });
for (const side of ['base', 'adapter'] as const) {
  const text = saved.outputs?.[side];
  if (typeof text === 'string') out[side].textContent = text;
}

const settings = el('div', { class: 'settings' });
for (const [k, f] of Object.entries(fields)) settings.append(el('label', {}, k, f));
document.getElementById('app')!.append(
  el('div', { class: 'row' }, el('label', {}, 'Mode ', modeSelect), el('label', {}, 'Adapter ', adapterSelect), baseLabel),
  settings,
  chatLog,
  input,
  el('div', { class: 'row' }, generateBtn, stopBtn, clearBtn),
  error,
  el('div', { class: 'sides' }, el('section', {}, el('h3', {}, 'Base model'), out.base), el('section', {}, el('h3', {}, 'Base + adapter'), out.adapter)),
);

function persist(): void {
  const outputs = { base: out.base.textContent ?? '', adapter: out.adapter.textContent ?? '' };
  bridge.setState({ mode, modeChosen, history, prompt: input.value, outputs, init: lastInit });
}

function renderChat(): void {
  chatLog.replaceChildren(...history.map((m) => el('div', { class: `msg ${m.role}` }, `${m.role}: ${m.content}`)));
  chatLog.style.display = mode === 'chat' && history.length ? '' : 'none';
  clearBtn.style.display = mode === 'chat' ? '' : 'none';
}

function readParams(): SamplingParams | string {
  const raw = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, Number(f.value)]));
  const r = samplingParams.safeParse(raw);
  return r.success ? r.data : `Check the sampling settings: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
}

function setRunning(id: number | undefined): void {
  running = id;
  if (id === undefined) {
    stopBtn.setAttribute('disabled', '');
    generateBtn.removeAttribute('disabled');
  } else {
    stopBtn.removeAttribute('disabled');
    generateBtn.setAttribute('disabled', '');
  }
}

function generate(): void {
  if (running !== undefined) return;
  const params = readParams();
  if (typeof params === 'string') {
    error.textContent = params;
    return;
  }
  const text = input.value.trim();
  if (!text) {
    error.textContent = 'Type a prompt first.';
    return;
  }
  error.textContent = '';
  genId++;
  const adapter = currentAdapter;
  pending = new Set<Side>(adapter ? ['base', 'adapter'] : ['base']);
  out.base.textContent = '';
  out.adapter.textContent = adapter ? '' : '(choose an adapter to compare)';
  const msg: PlaygroundToHost =
    mode === 'chat'
      ? { type: 'generate', genId, mode, messages: [...history, { role: 'user', content: text }], adapter, params }
      : { type: 'generate', genId, mode, prompt: text, adapter, params };
  if (mode === 'chat') history.push({ role: 'user', content: text });
  renderChat();
  persist();
  setRunning(genId);
  bridge.post(msg);
}

generateBtn.addEventListener('click', generate);
input.addEventListener('keydown', (e: KeyboardEvent) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) generate();
});
stopBtn.addEventListener('click', () => running !== undefined && bridge.post({ type: 'stop', genId: running }));
clearBtn.addEventListener('click', () => {
  history.length = 0;
  renderChat();
  persist();
});
adapterSelect.addEventListener('change', () => {
  currentAdapter = adapterSelect.value || null;
});
modeSelect.addEventListener('change', () => {
  const picked = modeSelect.value === 'chat' ? 'chat' : 'prompt';
  if (picked === mode) return;
  mode = picked;
  modeChosen = true;
  renderChat();
  persist();
});
input.addEventListener('input', persist);

bridge.onMessage((msg) => {
  switch (msg.type) {
    case 'init': {
      baseLabel.textContent = `Base: ${msg.baseModel}`;
      // The select reads its options asynchronously, so mark the chosen one instead of setting value.
      const option = (value: string, label: string) => {
        const o = el('vscode-option', { value }, label);
        if (value === (msg.adapter ?? '')) o.setAttribute('selected', '');
        return o;
      };
      adapterSelect.replaceChildren(option('', '(none)'), ...msg.adapters.map((a) => option(a.path, a.label)));
      currentAdapter = msg.adapter;
      for (const [k, f] of Object.entries(fields) as Array<[keyof SamplingParams, Field]>) f.value = String(msg.defaults[k]);
      if (!modeChosen && msg.mode !== mode) {
        mode = msg.mode;
        renderModes();
        renderChat();
      }
      lastInit = msg;
      persist();
      return;
    }
    case 'chunk':
      if (msg.genId === genId) out[msg.side].textContent += msg.text;
      return;
    case 'done':
      if (msg.genId !== genId) return;
      if (msg.error) error.textContent = `${msg.side}: ${msg.error}`;
      if (msg.stopped) out[msg.side].textContent += ' [stopped]';
      pending.delete(msg.side);
      persist();
      if (pending.size === 0) {
        if (mode === 'chat') {
          const reply = (out.adapter.textContent || out.base.textContent || '').replace(/ \[stopped\]$/, '');
          history.push({ role: 'assistant', content: reply });
          renderChat();
          persist();
        }
        setRunning(undefined);
        if (automation !== undefined) {
          bridge.post({ type: 'automationResult', requestId: automation, adapter: currentAdapter, mode, outputs: { base: out.base.textContent ?? '', adapter: out.adapter.textContent ?? '' }, error: error.textContent ?? '' });
          automation = undefined;
        }
      }
      return;
    case 'automation':
      input.value = msg.prompt;
      automation = msg.requestId;
      generateBtn.click();
      if (running === undefined) {
        bridge.post({ type: 'automationResult', requestId: msg.requestId, adapter: currentAdapter, mode, outputs: { base: '', adapter: '' }, error: error.textContent || 'generation did not start' });
        automation = undefined;
      }
      return;
    default:
      assertNever(msg);
  }
});

renderChat();
bridge.post({ type: 'ready' });
