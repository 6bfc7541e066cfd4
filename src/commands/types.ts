/**
 * The views commands act on; built once in `registerViews` and handed to the command table.
 */
import type { LossViewProvider } from '../views/lossView';
import type { RunsTreeProvider } from '../views/runsTree';
import type { AdapterFolders } from '../views/adapterContext';
import type { PlaygroundHost } from './playgroundCommand';
import type { DatasetPreview } from '../views/datasetPreview';
import type { DatasetDoctorView } from '../views/datasetDoctorView';
import type { DatasetPanels } from '../views/datasetPanel';

export interface Views {
  readonly loss: LossViewProvider;
  readonly runs: RunsTreeProvider;
  readonly playground: PlaygroundHost;
  /** The adapter-folder scan behind the explorer's "Merge adapter". */
  readonly adapters: AdapterFolders;
  /** The inline dataset preview (recipe per dataset file, sessions). */
  readonly dataset: DatasetPreview;
  /** The dataset doctor's Problems-panel view. */
  readonly doctor: DatasetDoctorView;
  /** The dataset preview panels. */
  readonly panels: DatasetPanels;
}
