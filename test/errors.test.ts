import t from 'tap'
import { build, logCapture } from './helper.js'

t.test('an unexpected error is a 500 that shows no internals, and is logged', async (t) => {
  const logs = logCapture()
  const app = await build(t, {
    env: { LOG_LEVEL: 'info' },
    logStream: logs,
    beforeReady (app) {
      app.get('/test/explode', async () => {
        throw new Error('connection to mongodb://admin:hunter2@db.internal failed')
      })
    }
  })
  const response = await app.inject({ method: 'GET', url: '/test/explode' })
  t.equal(response.statusCode, 500)
  t.same(response.json(), { statusCode: 500, code: 'INTERNAL_SERVER_ERROR', error: 'Internal Server Error', message: 'Internal Server Error' })
  t.notMatch(response.body, /hunter2|db\.internal|stack|at /)
  const errorLine = logs.lines().map((line) => JSON.parse(line)).find((line) => line.level === 50)
  t.ok(errorLine, 'the error is logged for operators')
  t.match(errorLine.err.message, /failed/)
  t.ok(errorLine.reqId, 'with the request id')
})

t.test('an unknown route is a 404 in the error shape, without the query string', async (t) => {
  const app = await build(t)
  const response = await app.inject({ method: 'GET', url: '/nowhere?secret_token=abc.def.ghi' })
  t.equal(response.statusCode, 404)
  t.same(response.json(), { statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found', message: 'Route GET:/nowhere not found' })
})

t.test('a caller-supplied request id is kept when sane and replaced otherwise', async (t) => {
  const logs = logCapture()
  const app = await build(t, { env: { LOG_LEVEL: 'info' }, logStream: logs })
  await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'trace-abc.123' } })
  await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'bad id\nwith newline' } })
  const ids = logs.lines().map((line) => JSON.parse(line).reqId).filter(Boolean)
  t.ok(ids.includes('trace-abc.123'))
  t.notOk(ids.some((id: string) => id.includes('newline')))
})

t.test('generated request ids are unique within a process and across processes', async (t) => {
  const first = logCapture()
  const second = logCapture()
  const apps = [await build(t, { env: { LOG_LEVEL: 'info' }, logStream: first }), await build(t, { env: { LOG_LEVEL: 'info' }, logStream: second })]
  for (const app of apps) {
    for (let i = 0; i < 3; i++) await app.inject({ method: 'GET', url: '/health/live' })
  }
  const idsOf = (logs: typeof first) => logs.lines().map((line) => JSON.parse(line).reqId).filter(Boolean) as string[]
  const all = [...idsOf(first), ...idsOf(second)]
  t.equal(all.length, 6, 'one completion line per request')
  t.equal(new Set(all).size, 6, 'no id repeats')
  t.ok(all.every((id) => /^[\w.:-]{1,128}$/.test(id)), 'each would pass as an incoming x-request-id')
  const prefix = (id: string) => id.slice(0, id.lastIndexOf('-'))
  t.not(prefix(idsOf(first)[0]!), prefix(idsOf(second)[0]!), 'two processes (apps) draw different prefixes')
})
