/**
 * The logging seam of the backend modules. The extension adapts its LogOutputChannel to it; tests
 * pass a collecting logger. No `vscode` import.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

/** A logger that drops everything (the default when the caller passes none). */
export function silentLogger(): Logger {
  const drop = (): void => undefined;
  return { info: drop, warn: drop, error: drop, debug: drop };
}
