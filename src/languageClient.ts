/**
 * Starts the recipe language server (out/languageServer.js, its own Node process) the first time a
 * recipe is opened, restarts it if it dies, and passes it the selected backend's devices so it can
 * compare the memory estimate with the GPU.
 */
import * as vscode from 'vscode';
import type { LanguageClient, LanguageClientOptions, ServerOptions } from 'vscode-languageclient/node';
import { BACKEND_DEVICES, SERVER_PID, type BackendDevices } from './language-server/protocol';

/** The language id of `*.qlora.yaml` / `*.qlora.yml`. */
export const RECIPE_LANGUAGE = 'qlora-recipe';

/** Owns the client; `start` is idempotent. */
export class RecipeLanguageClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  private devices: BackendDevices | undefined;
  private readonly subs: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: { info(m: string): void; error(m: string): void },
  ) {
    const maybeStart = (doc: vscode.TextDocument): void => {
      if (doc.languageId === RECIPE_LANGUAGE) void this.start();
    };
    this.subs.push(vscode.workspace.onDidOpenTextDocument(maybeStart));
    vscode.workspace.textDocuments.forEach(maybeStart);
  }

  /** Starts the server unless it runs already; resolves when it answered initialize. */
  start(): Promise<void> {
    this.starting ??= this.launch().catch((err: unknown) => {
      this.starting = undefined;
      this.log.error(`recipe language server did not start: ${err instanceof Error ? err.message : String(err)}`);
    });
    return this.starting;
  }

  /** Tells the server what the backend's hello reported (or that none is connected). */
  setBackendDevices(devices: BackendDevices): void {
    this.devices = devices;
    if (this.client?.isRunning()) void this.client.sendNotification(BACKEND_DEVICES, devices);
  }

  /** The running server's process id, or undefined while none runs. */
  async serverPid(): Promise<number | undefined> {
    if (!this.client?.isRunning()) return undefined;
    return this.client.sendRequest<number>(SERVER_PID).catch(() => undefined);
  }

  private async launch(): Promise<void> {
    // loaded on the first recipe, not at activation
    const { LanguageClient, TransportKind } = await import('vscode-languageclient/node');
    const module = this.context.asAbsolutePath('out/languageServer.js');
    const serverOptions: ServerOptions = {
      run: { module, transport: TransportKind.ipc },
      debug: { module, transport: TransportKind.ipc, options: { execArgv: ['--nolazy', '--inspect=6019'] } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ language: RECIPE_LANGUAGE }],
      // the client's default error handler restarts a server that dies (up to 4 times in 3 minutes)
      initializationFailedHandler: () => false,
    };
    const client = new LanguageClient('qloraRecipe', 'QLoRA Recipe Language Server', serverOptions, clientOptions);
    this.client = client;
    await client.start();
    this.log.info('recipe language server started');
    if (this.devices) await client.sendNotification(BACKEND_DEVICES, this.devices);
  }

  dispose(): void {
    for (const s of this.subs) s.dispose();
    void this.client?.stop();
  }
}
