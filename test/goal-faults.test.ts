// Worker faults at every stage of a transfer, per model: after each, no pin
// is left and the engine keeps working. Waits use the transfer's own
// promises (pinned/done) and holds, never timers. CI size by default;
// PMEMU_GOAL=1 repeats each fault more (docs/testing-with-pmemu.md).
import t from 'tap'
import type { Worker } from 'node:worker_threads'
import { openDevice, mkfs, DmaEngine, MODEL_NAMES } from '../src/index.js'

const PS = 4096
const ROUNDS = process.env.PMEMU_GOAL === '1' ? 25 : 2

// Every worker the process starts (the engine's included): what "terminated from outside" reaches.
const workers: Worker[] = []
process.on('worker', (w: Worker) => workers.push(w))

for (const model of MODEL_NAMES) {
  t.test(`${model}: faults after pin, external terminate, aborts before/after pin and during the copy leave 0 pins`, async t => {
    const dev = await openDevice(undefined, { size: '16MiB', model })
    const fs = await mkfs(dev)
    const f = await fs.open('/f', 'w+')
    f.write(new Uint8Array(32 * PS).fill(7), 0)
    await f.fsync()
    const map = f.mmap(0, 32 * PS, { write: true })
    map.populate()
    const pfns = Array.from({ length: 32 }, (_, i) => map.pfn(i * PS))
    const idle = pfns.map(p => dev.page(p).refcount)
    const pinsLeft = (): number => pfns.filter((p, i) => dev.page(p).refcount !== idle[i]).length
    const seen = workers.length
    const dma = new DmaEngine(dev, { workers: 2, bandwidth: '64MiB' })
    const ok = async (what: string): Promise<void> => {
      t.equal(pinsLeft(), 0, `${what}: no pin left`)
      const r = await dma.submit({ map, offset: 0, length: PS, direction: 'to-device', buffer: new Uint8Array(PS) }).done
      t.equal(r.bytes, PS, `${what}: the engine still works`)
    }
    let faults = 0
    for (let round = 0; round < ROUNDS; round++) {
      for (const direction of ['to-device', 'from-device'] as const) {
        for (const fail of ['throw-after-pin', 'exit-after-pin', 'uncaught-after-pin'] as const) {
          await t.rejects(dma.submit({ map, offset: PS, length: 2 * PS, direction, buffer: new Uint8Array(2 * PS), fail }).done,
            { code: 'EIO' }, `${direction} ${fail}`)
          faults++
          await ok(`${direction} ${fail}`)
        }
        {
          // hang-after-pin: the abort stops the transfer before any byte moves
          const tr = dma.submit({ map, offset: 4 * PS, length: PS, direction, buffer: new Uint8Array(PS).fill(0x55), fail: 'hang-after-pin' })
          await tr.pinned
          t.equal(pinsLeft(), 1, 'pinned while it hangs')
          tr.abort()
          await t.rejects(tr.done, { code: 'ABORT_ERR' }, `${direction} hang-after-pin, then abort`)
          const back = new Uint8Array(PS)
          f.read(back, 4 * PS)
          t.ok(back.every(b => b === 7), `${direction} hang + abort: the device bytes are untouched`)
          faults++
          await ok(`${direction} hang-after-pin + abort`)
        }
        {
          // a worker terminated from outside while it holds a pin: the transfer fails, the ledger gives the pins back
          const tr = dma.submit({ map, offset: 8 * PS, length: 2 * PS, direction, buffer: new Uint8Array(2 * PS), hold: 'until-release' })
          await tr.pinned
          // (taken off the list first: the engine's replacements register while we wait)
          const mine = workers.splice(seen)
          // terminate() must settle by itself: the engine unrefs its idle workers, and an unref'd
          // worker's exit is nothing an otherwise idle loop waits for (Node then exits 13 mid-test).
          const codes = await Promise.all(mine.map(w => w.terminate()))
          t.ok(codes.length > 0, 'terminate() settles')
          await t.rejects(tr.done, { code: 'EIO', message: /died/ }, `${direction} external terminate after pin`)
          faults++
          await ok(`${direction} external terminate`)
        }
        {
          const ac = new AbortController()
          ac.abort()
          await t.rejects(dma.submit({ map, offset: 0, length: PS, direction, buffer: new Uint8Array(PS), signal: ac.signal }).done,
            { code: 'ABORT_ERR' }, `${direction} aborted before submit`)
          faults++
          await ok(`${direction} abort before`)
          const held = dma.submit({ map, offset: 0, length: 2 * PS, direction, buffer: new Uint8Array(2 * PS), hold: 'until-release' })
          await held.pinned
          held.abort()
          await t.rejects(held.done, { code: 'ABORT_ERR' }, `${direction} aborted during the hold`)
          faults++
          await ok(`${direction} abort during hold`)
          // 1 MiB at 64 MiB/s: the abort lands before or during the copy; either way the transfer fails cleanly
          const big = new Uint8Array(16 * PS)
          const copying = dma.submit({ map, offset: 16 * PS, length: 16 * PS, direction, buffer: big })
          await copying.pinned
          copying.abort()
          // the abort races the copy (no hook inside it): either it stopped the transfer or came after the last byte
          const out = await copying.done.then(r => r.bytes, (e: { code?: unknown }) => e.code)
          t.ok(out === 'ABORT_ERR' || out === 16 * PS, `${direction} aborted after pin / during the copy: ${String(out)}`)
          faults++
          await ok(`${direction} abort during copy`)
        }
        for (const bogus of [null, 42, 'x', Symbol('b'), 10n, new Uint16Array(4), new Uint8Array(10), {}]) {
          let err: unknown
          try { await dma.submit({ map, offset: 0, length: PS, direction, buffer: bogus as Uint8Array }).done } catch (e) { err = e }
          t.ok(err instanceof Error && typeof (err as { code?: unknown }).code === 'string', `${direction} bogus buffer ${typeof bogus}: a typed error`)
          faults++
        }
        {
          const buffer = new Uint8Array(PS)
          const tr = dma.submit({ map, offset: 0, length: PS, direction, buffer, hold: 'until-release' })
          await tr.pinned
          structuredClone(buffer.buffer, { transfer: [buffer.buffer] })
          tr.release()
          // to-device copies back into the detached buffer (EFAULT); from-device took its bytes at submit
          if (direction === 'to-device') await t.rejects(tr.done, { code: 'EFAULT' }, 'detached buffer')
          else t.equal((await tr.done).bytes, PS, 'from-device: the bytes were staged at submit')
          faults++
          await ok(`${direction} detached buffer`)
        }
      }
    }
    t.comment(`${model}: ${faults} injected faults, ${pinsLeft()} pins left, stats ${JSON.stringify(dma.stats())}`)
    await dma.close()
    t.equal(pinsLeft(), 0, 'closed: no pin left')
    t.same(dev.check(), [], 'no invariant violated')
    await dev.close()
  })
}
