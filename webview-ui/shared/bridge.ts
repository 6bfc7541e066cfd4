/**
 * The typed bridge every webview uses: posts messages the host parses with zod, parses what the
 * host sends with the same schemas, and keeps view state with getState/setState.
 */
import type { z } from 'zod';

interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** A webview's channel to its host, typed by the two message schemas. */
export interface Bridge<In, Out> {
  post(msg: Out): void;
  onMessage(handler: (msg: In) => void): void;
  getState(): unknown;
  setState(state: unknown): void;
}

/**
 * Creates the bridge (acquireVsCodeApi may be called once per page). Malformed host messages are
 * reported back through `onBad` rather than handled.
 */
export function createBridge<In, Out>(incoming: z.ZodType<In>, onBad: (error: string) => void): Bridge<In, Out> {
  const api = acquireVsCodeApi();
  return {
    post: (msg) => api.postMessage(msg),
    onMessage: (handler) => {
      window.addEventListener('message', (e: MessageEvent<unknown>) => {
        const r = incoming.safeParse(e.data);
        if (r.success) handler(r.data);
        else onBad(r.error.message);
      });
    },
    getState: () => api.getState(),
    setState: (s) => api.setState(s),
  };
}

/** Creates an element with attributes and children, for views without a framework. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}
