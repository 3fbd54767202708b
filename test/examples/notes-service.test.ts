import type { AddressInfo } from 'node:net'
import t from 'tap'
// @ts-expect-error the example is plain JavaScript, as a consumer might write it
import { buildNotesApp } from '../../examples/notes-service/app.js'
// @ts-expect-error the example is plain JavaScript
import { createStatsReport } from '../../examples/notes-service/stats-report.js'
import type { FastifyInstance } from 'fastify'
import { createClientCredentials } from '@auth-service/verify'
import { build, login, registerUser, revocationsReader } from '../helper.js'

t.test('end to end: log in at the auth service, use the notes service, log out, be refused', async (t) => {
  const auth = await build(t)
  await auth.listen({ host: '127.0.0.1', port: 0 })
  const authUrl = `http://127.0.0.1:${(auth.server.address() as AddressInfo).port}`
  const reader = await revocationsReader(auth)
  const notes = await buildNotesApp({ authUrl, issuer: 'auth-service', audience: 'auth-service-clients', clientId: reader.clientId, clientSecret: reader.clientSecret }) as FastifyInstance
  t.teardown(() => notes.close())

  const user = await registerUser(auth)
  const headers = { authorization: `Bearer ${user.token}` }

  t.equal((await notes.inject({ method: 'GET', url: '/notes' })).statusCode, 401, 'no token, no notes')
  const created = await notes.inject({ method: 'POST', url: '/notes', headers, payload: { text: 'buy milk' } })
  t.equal(created.statusCode, 201)
  const listed = await notes.inject({ method: 'GET', url: '/notes', headers })
  t.equal(listed.statusCode, 200)
  t.match(listed.json(), { owner: user.id, notes: [{ text: 'buy milk' }] })

  const other = await registerUser(auth)
  const othersNotes = await notes.inject({ method: 'GET', url: '/notes', headers: { authorization: `Bearer ${other.token}` } })
  t.same(othersNotes.json().notes, [], 'notes are per user, from the token\'s sub')

  await auth.inject({ method: 'POST', url: '/logout', payload: { refreshToken: user.refreshToken } })
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const refused = await notes.inject({ method: 'GET', url: '/notes', headers })
  t.equal(refused.statusCode, 401, 'the logged-out session is refused within a second (the stream)')
  t.same(refused.json(), { statusCode: 401, code: 'TOKEN_REVOKED', error: 'Unauthorized', message: 'The session of this token has been revoked' })

  const malformed = await notes.inject({ method: 'GET', url: '/notes', headers: { authorization: 'Basic abc' } })
  t.equal(malformed.json().code, 'TOKEN_INVALID')
})

t.test('service to service: a report job calls the notes service with a client-credentials token the library verifies', async (t) => {
  const auth = await build(t, { env: { ADMIN_EMAILS: 'ops@example.com' } })
  await auth.listen({ host: '127.0.0.1', port: 0 })
  const authUrl = `http://127.0.0.1:${(auth.server.address() as AddressInfo).port}`
  const feedReader = await revocationsReader(auth)
  const notes = await buildNotesApp({ authUrl, issuer: 'auth-service', audience: 'auth-service-clients', clientId: feedReader.clientId, clientSecret: feedReader.clientSecret }) as FastifyInstance
  t.teardown(() => notes.close())
  await notes.listen({ host: '127.0.0.1', port: 0 })
  const notesUrl = `http://127.0.0.1:${(notes.server.address() as AddressInfo).port}`

  const admin = await registerUser(auth, { email: 'ops@example.com' })
  await auth.usersRepository.markEmailVerified(admin.id, 'ops@example.com')
  const adminToken = (await login(auth, admin)).token
  const newClient = async (scopes: string[]) => (await auth.inject({
    method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${adminToken}` }, payload: { name: 'report-job', scopes, audience: 'notes-service' }
  })).json<{ clientId: string, clientSecret: string }>()

  const user = await registerUser(auth)
  await notes.inject({ method: 'POST', url: '/notes', headers: { authorization: `Bearer ${user.token}` }, payload: { text: 'buy milk' } })

  const reader = await newClient(['notes:read'])
  const report = createStatsReport({ authUrl, notesUrl, ...reader })
  t.same(await report.read(), { users: 1, notes: 1 }, 'the call went through with the client\'s token')
  const first = await report.token()
  t.same(await report.read(), { users: 1, notes: 1 })
  t.equal(await report.token(), first, 'the token is cached, not fetched per call')

  const withoutScope = await newClient(['notes:write'])
  const denied = await fetch(`${notesUrl}/internal/stats`, { headers: { authorization: `Bearer ${await createClientCredentials({ tokenUrl: `${authUrl}/oauth/token`, clientId: withoutScope.clientId, clientSecret: withoutScope.clientSecret }).token()}` } })
  t.equal(denied.status, 403)
  t.match(denied.headers.get('www-authenticate'), /insufficient_scope/)
  t.equal((await fetch(`${notesUrl}/internal/stats`, { headers: { authorization: `Bearer ${user.token}` } })).status, 403, 'a user\'s token has no scopes')
  const asClient = await notes.inject({ method: 'GET', url: '/notes', headers: { authorization: `Bearer ${first}` } })
  t.equal(asClient.statusCode, 403, 'and a client has no notes of its own')
  await t.rejects(createClientCredentials({ tokenUrl: `${authUrl}/oauth/token`, clientId: reader.clientId, clientSecret: 'wrong' }).token(), { name: 'ClientCredentialsError', error: 'invalid_client', status: 401 })
})
