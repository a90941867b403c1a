/**
 * Fault injection (SPEC §7): poison and memory failure through the fs,
 * power loss across the layers (forEachCrash / replayCrash), and the fs side
 * of unbind. See docs/faults.md and docs/crash-testing.md.
 */
export { attachFaults, faultsOf, isFaultCapable, type FaultsHandle } from './poison.js'
export {
  forEachCrash, replayCrash,
  type Keep, type CrashAt, type WorkloadContext, type VerifyContext, type Workload, type Verify,
  type ForEachCrashOptions, type ForEachCrashResult, type CrashFailure, type ReplayOptions,
} from './crash.js'
