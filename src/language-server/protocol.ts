/**
 * Messages between the extension and the recipe language server beyond LSP itself.
 */
import { z } from 'zod';

/** Client -> server: what the selected backend's hello said about its devices. */
export const BACKEND_DEVICES = 'qloraStudio/backendDevices';

/** Client -> server request: the server's process id (for the restart test and bug reports). */
export const SERVER_PID = 'qloraStudio/serverPid';

/** Params of BACKEND_DEVICES: the devices of the backend (empty when none is connected). */
export const backendDevicesSchema = z.object({
  devices: z.array(
    z.object({
      type: z.string(),
      name: z.string(),
      memory_total_mb: z.number().nullable(),
    }),
  ),
});

/** Parsed BACKEND_DEVICES params. */
export type BackendDevices = z.infer<typeof backendDevicesSchema>;
