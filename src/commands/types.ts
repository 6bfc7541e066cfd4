/**
 * The views commands act on; built once in `registerViews` and handed to the command table.
 */
import type { LossViewProvider } from '../views/lossView';
import type { RunsTreeProvider } from '../views/runsTree';
import type { AdapterFolders } from '../views/adapterContext';
import type { PlaygroundHost } from './playgroundCommand';

export interface Views {
  readonly loss: LossViewProvider;
  readonly runs: RunsTreeProvider;
  readonly playground: PlaygroundHost;
  /** The adapter-folder scan behind the explorer's "Merge adapter". */
  readonly adapters: AdapterFolders;
}
