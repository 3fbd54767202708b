import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { pino } from 'pino'
import fc from 'fast-check'
import { logDestination, redactEncodedQuery, redactPlainQuery, redactUrl } from '../../plugins/logger.js'

t.test('redactUrl replaces every secret_token value and keeps the rest', async (t) => {
  t.equal(redactUrl('/user/profile'), '/user/profile')
  t.equal(redactUrl('/user/profile?secret_token=abc.def.ghi'), '/user/profile?secret_token=[REDACTED]')
  t.equal(redactUrl('/p?a=1&secret_token=x&b=2'), '/p?a=1&secret_token=[REDACTED]&b=2')
  t.equal(redactUrl('/p?secret_token=x&secret_token=y'), '/p?secret_token=[REDACTED]&secret_token=[REDACTED]')
  t.equal(redactUrl('/p?secret%5Ftoken=x'), '/p?secret%5Ftoken=[REDACTED]')
  t.equal(redactUrl('/p?secret_token'), '/p?secret_token=[REDACTED]')
  t.equal(redactUrl('/p?%E0%A4%A=1&secret_token=x'), '/p?%E0%A4%A=1&secret_token=[REDACTED]', 'an undecodable name is kept as is')
  t.equal(redactUrl('/p?secret_tokens=x'), '/p?secret_tokens=x', 'other names are untouched')
  t.equal(redactUrl('/p#secret_token=x'), '/p#[REDACTED]', 'everything after a # goes (review finding 1)')
  t.equal(redactUrl('/p?secret_token=x#y'), '/p?secret_token=[REDACTED]#[REDACTED]')
  t.equal(redactUrl('/p?a=1#?secret_token=x'), '/p?a=1#[REDACTED]')
})

t.test('redactUrl\'s path for queries with nothing encoded gives the general path\'s result', async (t) => {
  const piece = fc.oneof(
    fc.constantFrom('&', '=', '&&', '==', 'secret_token', 'secret_token=', 'secret_tokens', 'xsecret_token', 'secret_toke', '?', 'a', ''),
    fc.string({ maxLength: 6 }).filter((text) => !text.includes('%') && !text.includes('+') && !text.includes('#'))
  )
  const urls = fc.tuple(fc.constantFrom('/user/profile', '/p', '/'), fc.array(piece, { maxLength: 10 })).map(([path, pieces]) => `${path}?${pieces.join('')}`)
  let redactions = 0
  fc.assert(fc.property(urls, (url) => {
    const queryStart = url.indexOf('?')
    const plain = redactPlainQuery(url, queryStart)
    if (plain !== url) redactions++
    return plain === redactEncodedQuery(url, queryStart) && redactUrl(url) === plain
  }), { numRuns: 5000 })
  t.ok(redactions > 100, `the generated URLs include ones to redact (${redactions})`)
})

t.test('the log destination writes whole UTF-8 lines in order, and serves flush() and a fatal line', async (t) => {
  const path = join(t.testdir(), 'service.log')
  const fd = openSync(path, 'a')
  t.teardown(() => closeSync(fd))
  const logger = pino({ level: 'info' }, logDestination(fd))
  const linesOnDisk = () => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { i?: number, note?: string, msg: string })
  // The writes are asynchronous: wait (up to 10 s) until the expected count is on disk.
  async function waitForLines (count: number) {
    for (let waited = 0; linesOnDisk().length < count && waited < 10_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10))
    return linesOnDisk()
  }

  for (let i = 0; i < 2000; i++) logger.info({ i, note: 'é✓𝕬' }, 'line')
  const flushError = await new Promise((resolve) => logger.flush(resolve))
  t.notOk(flushError, 'flush() calls back without an error')
  const lines = await waitForLines(2000)
  t.equal(lines.length, 2000, 'every line')
  t.ok(lines.every((line, i) => line.i === i && line.note === 'é✓𝕬' && line.msg === 'line'), 'in order, multi-byte characters intact')

  t.doesNotThrow(() => logger.fatal('going down'), 'fatal() flushes synchronously without throwing')
  t.equal((await waitForLines(2001)).at(-1)?.msg, 'going down')
})
