// Loader hooks (registered by trace-register.mjs): append every package a
// module import resolves into to the file named by PMEMU_TRACE_OUT.
import { appendFileSync } from 'node:fs'
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context)
  const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(r.url)
  if (m && process.env.PMEMU_TRACE_OUT) appendFileSync(process.env.PMEMU_TRACE_OUT, m[1] + '\n')
  return r
}
