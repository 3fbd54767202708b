import type { AddressInfo } from 'node:net'
import t from 'tap'
// @ts-expect-error the example is plain JavaScript, as a consumer might write it
import { buildNotesApp } from '../../examples/notes-service/app.js'
import type { FastifyInstance } from 'fastify'
import { build, registerUser } from '../helper.js'

t.test('end to end: log in at the auth service, use the notes service, log out, be refused', async (t) => {
  const auth = await build(t)
  await auth.listen({ host: '127.0.0.1', port: 0 })
  const authUrl = `http://127.0.0.1:${(auth.server.address() as AddressInfo).port}`
  const notes = await buildNotesApp({ authUrl, issuer: 'auth-service', audience: 'auth-service-clients', revocationsPollIntervalMs: 200 }) as FastifyInstance
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
  await new Promise((resolve) => setTimeout(resolve, 350))
  const refused = await notes.inject({ method: 'GET', url: '/notes', headers })
  t.equal(refused.statusCode, 401, 'the logged-out session is refused within one poll interval')
  t.same(refused.json(), { statusCode: 401, code: 'TOKEN_REVOKED', error: 'Unauthorized', message: 'The session of this token has been revoked' })

  const malformed = await notes.inject({ method: 'GET', url: '/notes', headers: { authorization: 'Basic abc' } })
  t.equal(malformed.json().code, 'TOKEN_INVALID')
})
