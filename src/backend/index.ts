/**
 * The backend client in one import: the connection interface, its WebSocket implementation, the
 * local launcher and the logger seam. No `vscode` import.
 */
export { BackendError, type BackendConnection, type ConnectionState, type Disposable, type RequestOptions } from './connection';
export { connectWebSocket, type ConnectOptions, type ReconnectOptions } from './wsConnection';
export { LocalBackend, type LaunchSpec, type LocalBackendOptions } from './localBackend';
export { LocalBackendLauncher, type BackendEndpoint, type LauncherOptions } from './localLauncher';
export { parseReadyLine, wsUrl, READY_PREFIX, type ReadyInfo } from './readyLine';
export { silentLogger, type Logger } from './logger';
