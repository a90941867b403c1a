// Worker bootstrap used only when pmemu runs from TypeScript source (tests
// under tsx): register tsx in this thread, then load the real worker module.
import { workerData } from 'node:worker_threads'
import { register } from 'tsx/esm/api'

register()
await import(workerData.__pmemuEntry)
