/**
 * The backend's state as the extension shows it, free of `vscode`: the connection phase and the
 * device named from the `hello` answer's capabilities.
 */
import type { Capabilities } from '../protocol';

/** Where the backend connection stands. */
export type BackendPhase = 'disconnected' | 'connecting' | 'connected' | 'failed';

/** Names the device from a hello answer: the first GPU (and how many), else the CPU. */
export function deviceLabel(capabilities: Capabilities): string {
  const gpus = capabilities.devices.filter((d) => d.type !== 'cpu');
  const first = gpus[0];
  if (!first) return 'CPU';
  const mem = first.memory_total_mb === null ? '' : ` ${Math.round(first.memory_total_mb / 1024)} GiB`;
  return gpus.length > 1 ? `${gpus.length}× ${first.name}${mem}` : `${first.name}${mem}`;
}
