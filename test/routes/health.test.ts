import t from 'tap'
import { build, freshDatabaseUrl } from '../helper.js'

// Nothing listens on port 1 of the loopback: connections are refused at once.
const unreachable = { MONGODB_URL: 'mongodb://127.0.0.1:1/unreachable', MONGODB_SERVER_SELECTION_TIMEOUT_MS: '300' }

t.test('liveness and readiness are 200 while the database answers', async (t) => {
  const app = await build(t)
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200)
  t.same(live.json(), { status: 'ok' })
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok' })
  const indexes = await app.mongo.db!.collection('users').indexes()
  t.ok(indexes.some((index) => index.unique === true && Object.keys(index.key).join() === 'email'), 'the unique email index exists')
})

t.test('the unique index is created idempotently: a second app on the same database starts fine', async (t) => {
  const databaseUrl = await freshDatabaseUrl()
  const first = await build(t, { env: { MONGODB_URL: databaseUrl } })
  t.equal((await first.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200)
  const second = await build(t, { env: { MONGODB_URL: databaseUrl } })
  const ready = await second.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 200)
  t.equal((await second.mongo.db!.collection('users').indexes()).filter((index) => index.unique === true).length, 1)
})

t.test('an app whose database cannot be reached starts, is live, and is not ready', async (t) => {
  const app = await build(t, { env: unreachable })
  const live = await app.inject({ method: 'GET', url: '/health/live' })
  t.equal(live.statusCode, 200)
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'unavailable', reason: 'database' })
})

t.test('signup and login answer 503 DATABASE_UNAVAILABLE while the database is unreachable', async (t) => {
  const app = await build(t, { env: unreachable })
  for (const url of ['/signup', '/login']) {
    const response = await app.inject({ method: 'POST', url, payload: { email: 'ann@example.com', password: 'password123' } })
    t.equal(response.statusCode, 503, url)
    t.same(response.json(), { statusCode: 503, code: 'DATABASE_UNAVAILABLE', error: 'Service Unavailable', message: 'The database is unavailable, try again later' }, url)
    t.notMatch(response.body, /127\.0\.0\.1|ECONNREFUSED|Mongo/, 'no driver detail leaks')
  }
})
