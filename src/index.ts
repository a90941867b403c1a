/**
 * pmemu: a persistent-memory device emulator with an fsdax-like file layer.
 * See API.md in the design docs and docs/ for the tour.
 */
export { openDevice, Device, Region, WINDOW_BYTES } from './region/index.js'
export type {
  OpenDeviceOptions, PagePaths, Backend, MapMode, ModelName, Persistence, Capabilities, BadBlock, CrashOptions, DeviceInfo,
} from './region/index.js'
export { PmemuError, PmemuAbortError, pmemError, isPmemuError } from './errors.js'
export type { ErrorCode } from './errors.js'
export { parseSize, formatBytes } from './util/size.js'
export type { Size } from './util/size.js'
