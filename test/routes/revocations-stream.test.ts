import t from 'tap'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { createParser } from 'eventsource-parser'
import { build, freshDatabaseUrl, login, registerUser, revocationsReader, sleep } from '../helper.js'
import { createChunkWriter } from '../../routes/revocations-stream.js'

interface StreamEvent { event?: string, id?: string, data: string }

/** A stream opened over real HTTP; what it received so far, and whether it ended. */
async function openStream (base: string, headers: Record<string, string>, query = '') {
  const controller = new AbortController()
  const response = await fetch(`${base}/revocations/stream${query}`, { headers, signal: controller.signal })
  const events: StreamEvent[] = []
  const comments: string[] = []
  let ended = false
  const parser = createParser({ onEvent: (event) => events.push(event), onComment: (comment) => comments.push(comment) })
  const reading = (async () => {
    if (response.body === null || !response.ok) return
    try {
      for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) parser.feed(chunk)
    } catch {
      // aborted by the test
    }
  })().finally(() => { ended = true })
  return {
    response,
    events,
    comments,
    /** Entries of `revoked` events. */
    entries: () => events.filter((event) => event.event === 'revoked').map((event) => JSON.parse(event.data) as { sid?: string, sub?: string, notBefore?: string, revokedAt: string, expiresAt: string }),
    ended: () => ended,
    close: async () => { controller.abort(); await reading }
  }
}

async function waitFor (what: string, check: () => boolean, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`)
    await sleep(20)
  }
}

async function listening (app: FastifyInstance) {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return `http://127.0.0.1:${address.port}`
}

t.test('only a service client with revocations:read reads the feed or the stream (401 otherwise)', async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  const withoutScope = await revocationsReader(app, ['notes:read'])
  const reader = await revocationsReader(app)
  for (const url of ['/revocations', '/revocations/stream?since=garbage']) {
    const none = await app.inject({ method: 'GET', url })
    t.same([none.statusCode, none.json().code], [401, 'TOKEN_MISSING'], `${url}: no token`)
    const asUser = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${user.token}` } })
    t.same([asUser.statusCode, asUser.json().code], [401, 'INSUFFICIENT_SCOPE'], `${url}: a user's token holds no scope`)
    t.match(asUser.headers['www-authenticate'], /error="insufficient_scope"/)
    const scopeless = await app.inject({ method: 'GET', url, headers: withoutScope.headers })
    t.same([scopeless.statusCode, scopeless.json().code], [401, 'INSUFFICIENT_SCOPE'], `${url}: a client without the scope`)
    const forged = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${reader.token}x` } })
    t.same([forged.statusCode, forged.json().code], [401, 'TOKEN_INVALID'], `${url}: a tampered token`)
  }
  t.equal((await app.inject({ method: 'GET', url: '/revocations', headers: reader.headers })).statusCode, 200, 'the reader reads the feed')
  const badCursor = await app.inject({ method: 'GET', url: '/revocations/stream?since=garbage', headers: reader.headers })
  t.same([badCursor.statusCode, badCursor.json().code], [400, 'INVALID_CURSOR'], 'a bad cursor is refused before the stream starts')

  await app.clientsRepository.delete(reader.clientId)
  await app.revocationState.sync()
  const deleted = await app.inject({ method: 'GET', url: '/revocations', headers: reader.headers })
  t.same([deleted.statusCode, deleted.json().code], [401, 'TOKEN_INVALID'], 'a deleted client\'s token')
})

t.test('the stream replays after its cursor, goes live, and resumes from Last-Event-ID without a gap', async (t) => {
  const app = await build(t, { env: { REVOCATION_SYNC_INTERVAL_MS: '100' } })
  const base = await listening(app)
  const reader = await revocationsReader(app)
  const user = await registerUser(app)
  const [a, b, c] = [await login(app, user), await login(app, user), await login(app, user)]
  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: a.refreshToken } })

  const stream = await openStream(base, reader.headers)
  t.equal(stream.response.status, 200)
  t.match(stream.response.headers.get('content-type'), /^text\/event-stream/)
  t.equal(stream.response.headers.get('cache-control'), 'no-store', 'never cached on the way')
  await waitFor('the replay', () => stream.entries().length === 1)
  t.same(stream.entries().map((entry) => entry.sid), [a.sessionId], 'without a cursor: every still-relevant entry')

  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: b.refreshToken } })
  await waitFor('the live entry', () => stream.entries().length === 2)
  t.same(stream.entries()[1], { sid: b.sessionId, revokedAt: stream.entries()[1]!.revokedAt, expiresAt: stream.entries()[1]!.expiresAt }, 'pushed as it happens')
  const lastId = stream.events.at(-1)!.id!
  const feedAfter = await app.inject({ method: 'GET', url: `/revocations?since=${lastId}`, headers: reader.headers })
  t.same(feedAfter.json().revoked, [], 'an event id is a feed cursor')
  await stream.close()

  await app.inject({ method: 'POST', url: '/logout', payload: { refreshToken: c.refreshToken } })
  const resumed = await openStream(base, { ...reader.headers, 'last-event-id': lastId })
  await waitFor('the missed entry', () => resumed.entries().length === 1)
  t.same(resumed.entries().map((entry) => entry.sid), [c.sessionId], 'Last-Event-ID: only what came after it')
  await resumed.close()

  const fromQuery = await openStream(base, reader.headers, `?since=${lastId}`)
  await waitFor('the missed entry', () => fromQuery.entries().length === 1)
  t.same(fromQuery.entries().map((entry) => entry.sid), [c.sessionId], '?since= works the same')
  await fromQuery.close()
})

t.test('two replicas: a logout on one reaches a stream on the other within a second, user-wide entries too', async (t) => {
  const env = { MONGODB_URL: await freshDatabaseUrl(), REVOCATION_SYNC_INTERVAL_MS: '200', ADMIN_EMAILS: 'ops@example.com' }
  const first = await build(t, { env })
  const second = await build(t, { env })
  const base = await listening(second)
  const reader = await revocationsReader(first)
  await second.revocationState.sync()
  const stream = await openStream(base, reader.headers)
  await waitFor('the end of the replay', () => stream.events.length + stream.comments.length > 0 || stream.response.ok)

  const delays: number[] = []
  for (let i = 0; i < 5; i++) {
    const user = await registerUser(first)
    await first.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
    const loggedOutAt = Date.now()
    await waitFor('the other replica pushes it', () => stream.entries().some((entry) => entry.sid === user.sessionId), 3000)
    delays.push(Date.now() - loggedOutAt)
  }
  t.ok(Math.max(...delays) < 1000, `every logout pushed by the other replica within a second (${delays.join(', ')} ms)`)

  // A cursor from the first replica's feed, a moment ahead of the second's state: accepted, not a 400.
  const latecomer = await registerUser(first)
  await first.inject({ method: 'POST', url: '/logout', payload: { refreshToken: latecomer.refreshToken } })
  const cursor = (await first.inject({ method: 'GET', url: '/revocations', headers: reader.headers })).json().cursor
  const resumed = await openStream(base, { ...reader.headers, 'last-event-id': cursor })
  t.equal(resumed.response.status, 200, 'a cursor the other replica just handed out')
  await resumed.close()

  const reset = await registerUser(first)
  await first.inject({ method: 'POST', url: '/password/forgot', payload: { email: reset.email } })
  const admin = await registerUser(first, { email: 'ops@example.com' })
  await first.usersRepository.markEmailVerified(admin.id, 'ops@example.com')
  const { token } = await login(first, admin)
  await first.inject({ method: 'PATCH', url: `/admin/users/${reset.id}`, headers: { authorization: `Bearer ${token}` }, payload: { disabled: true } })
  await waitFor('the user-wide entry', () => stream.entries().some((entry) => entry.sub === reset.id))
  t.match(stream.entries().find((entry) => entry.sub === reset.id), { sub: reset.id, notBefore: String }, 'a disabled user: one entry with sub and notBefore')
  await stream.close()
})

t.test('heartbeats while the replica reads the feed; the stream ends with its token, and with its client', async (t) => {
  const app = await build(t, { env: { REVOCATION_SYNC_INTERVAL_MS: '100', REVOCATION_STREAM_HEARTBEAT_SECONDS: '1', ACCESS_TOKEN_TTL_SECONDS: '3' } })
  const base = await listening(app)
  const reader = await revocationsReader(app)
  const stream = await openStream(base, reader.headers)
  await waitFor('two heartbeats', () => stream.comments.length >= 2, 4000)
  t.same(stream.comments.slice(0, 2), ['heartbeat', 'heartbeat'])
  await waitFor('the end at the token\'s expiry', () => stream.ended(), 5000)
  t.pass('the stream ended when its token expired')

  const other = await revocationsReader(app)
  const second = await openStream(base, other.headers)
  await waitFor('the stream is open', () => second.comments.length >= 1, 3000)
  await app.clientsRepository.delete(other.clientId)
  await waitFor('the end once the client is gone', () => second.ended(), 3000)
  t.pass('the stream ended when its client was deleted')
})

t.test('caps: streams per client (429) and per replica (503); a closed stream frees its place', async (t) => {
  const app = await build(t, { env: { REVOCATION_STREAMS_PER_CLIENT: '2', REVOCATION_STREAMS_MAX: '3' } })
  const base = await listening(app)
  const reader = await revocationsReader(app)
  const other = await revocationsReader(app)
  const one = await openStream(base, reader.headers)
  const two = await openStream(base, reader.headers)
  const three = await fetch(`${base}/revocations/stream`, { headers: reader.headers })
  t.same([three.status, (await three.json() as { code: string }).code], [429, 'TOO_MANY_STREAMS'], 'a third stream of one client')
  const four = await openStream(base, other.headers)
  const five = await fetch(`${base}/revocations/stream`, { headers: other.headers })
  t.same([five.status, (await five.json() as { code: string }).code], [503, 'STREAMS_FULL'], 'past the replica\'s cap')
  await one.close()
  // The server learns of the closed connection a moment later.
  await sleep(200)
  const again = await openStream(base, reader.headers)
  t.equal(again.response.status, 200, 'after one closed, the client opens another')
  t.match(await app.metricsRegistry.getSingleMetricAsString('revocation_streams_open'), /^revocation_streams_open 3$/m, 'the open streams are a metric')
  t.match(await app.metricsRegistry.getSingleMetricAsString('revocation_state_lag_seconds'), /^revocation_state_lag_seconds 0(\.\d+)?$/m, 'and so is how old the replica\'s revocation state is')
  await Promise.all([two.close(), four.close(), again.close()])
})

t.test('closing the app ends its streams instead of waiting for them', async (t) => {
  const app = await build(t)
  const base = await listening(app)
  const reader = await revocationsReader(app)
  const stream = await openStream(base, reader.headers)
  t.equal(stream.response.status, 200)
  const started = Date.now()
  await app.close()
  await waitFor('the stream ends', () => stream.ended(), 3000)
  t.ok(Date.now() - started < 3000, 'closed promptly')
})

t.test('a reader that does not keep up is dropped once its backlog passes the cap', async (t) => {
  // A real writable whose reader never reads: what is written waits in its buffer.
  const stuck = new Writable({ highWaterMark: 16, write (_chunk, _encoding, _callback) { /* never done */ } })
  let dropped = 0
  const write = createChunkWriter(stuck, () => { dropped += 1 }, 1000)
  const chunk = 'event: revoked\nid: x\ndata: {}\n\n'
  let written = 0
  while (write(chunk)) written += 1
  t.equal(dropped, 1, 'dropped once')
  t.ok(stuck.writableLength > 1000 && stuck.writableLength <= 1000 + chunk.length, `buffered no more than the cap and one chunk (${stuck.writableLength} bytes, ${written} chunks)`)
  stuck.destroy()
})
