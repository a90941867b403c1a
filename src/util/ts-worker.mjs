// Worker bootstrap used only when pmemu runs from TypeScript source (tests,
// `npx tsx …`): Node 20 workers do not inherit the parent's loader, so
// register tsx here, then load the real worker module. Exception: under tap
// with @tapjs/typescript the worker inherits ts-node's --import and already
// loads .ts; registering tsx on top would compile src/*.ts differently from
// the main thread, and tap merges both threads' coverage of a file by byte
// offset, which garbles the report.
import { workerData } from 'node:worker_threads'

if (!process.execArgv.some(a => a.includes('@tapjs/typescript'))) {
  const { register } = await import('tsx/esm/api')
  register()
}
await import(workerData.__pmemuEntry)
