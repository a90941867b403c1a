#!/usr/bin/env node
// `prepare`: build the wasm page-table core and dist/ (npm run build).
// npm runs it in three places:
//  - `npm install` / `npm ci` in a clone: the devDependencies (assemblyscript,
//    typescript) are there, so it just builds;
//  - `npm install <git url>`: npm installs the clone's devDependencies first,
//    so again it just builds;
//  - `npm install <path>` of a directory: npm links the directory and runs
//    its prepare there without installing anything in it. The compilers are
//    missing then, so we install the directory's own dependencies first
//    (from npm's cache when it has them), which is what a user would have
//    had to do by hand, and build.
// A run of `npm install` here runs prepare again; PMEMU_PREPARE_NESTED keeps
// that inner run from installing a second time.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const npm = process.env.npm_execpath
  ? [process.execPath, process.env.npm_execpath]
  : ['npm']
// Only the settings that are the user's, not the outer npm's view of its own
// project (npm_config_local_prefix etc. would point the install elsewhere).
const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_nodedir', 'npm_config_registry', 'npm_config_offline', 'npm_config_prefer_offline'])
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || keep.has(k.toLowerCase())))
const run = (args, env = process.env) => {
  const r = spawnSync(npm[0], [...npm.slice(1), ...args], { cwd: root, stdio: 'inherit', env })
  return r.status ?? 1
}
const haveTools = ['assemblyscript', 'typescript'].every(p => existsSync(join(root, 'node_modules', p, 'package.json')))

if (!haveTools) {
  if (process.env.PMEMU_PREPARE_NESTED) {
    console.error('pmemu: prepare: assemblyscript and typescript are still missing after installing the devDependencies')
    process.exit(1)
  }
  console.log('pmemu: prepare: installing this directory\'s dependencies (its compilers are devDependencies)')
  const status = run(['install', '--prefix', root, '--no-audit', '--no-fund', '--prefer-offline', '--include=dev'], { ...cleanEnv, PMEMU_PREPARE_NESTED: '1' })
  // The nested install ran prepare (and so the build) itself.
  process.exit(status)
}
process.exit(run(['run', 'build']))
