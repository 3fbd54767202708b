import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, freshDatabaseUrl } from '../helper.js'

// The timer's reads stay out of these tests: every read here is one the test asks for.
const env = { REVOCATION_SYNC_INTERVAL_MS: '60000' }

async function clientToken (app: FastifyInstance, scopes: string[]) {
  const { client, secret } = await app.clientsRepository.create({ name: 'new-service', scopes })
  const response = await app.inject({ method: 'POST', url: '/oauth/token', payload: { grant_type: 'client_credentials', client_id: client.id, client_secret: secret } })
  return { clientId: client.id, authorization: `Bearer ${response.json<{ access_token: string }>().access_token}` }
}

t.test('sync() hands back a read that starts after the call, one shared by the callers that wait meanwhile', async (t) => {
  const app = await build(t, { env })
  let reads = 0
  app.revocationState.subscribe(() => { reads++ })
  await Promise.all([app.revocationState.sync(), app.revocationState.sync(), app.revocationState.sync()])
  t.equal(reads, 2, 'the first read, then one follow-up for the two callers that came while it ran')
  await app.revocationState.sync()
  t.equal(reads, 3, 'with nothing under way, a read of its own')
})

t.test('a client created since the replica\'s last read is vouched for at once, from the database', async (t) => {
  const app = await build(t, { env })
  const reader = await clientToken(app, ['revocations:read'])
  t.notOk(app.revocationState.clientExists(reader.clientId), 'the replica\'s list does not know it yet')
  t.equal((await app.inject({ method: 'GET', url: '/revocations', headers: { authorization: reader.authorization } })).statusCode, 200, 'the feed')
  t.ok(app.revocationState.clientExists(reader.clientId), 'and now the list holds it')
  const gateway = await clientToken(app, ['notes:read'])
  const verified = await app.inject({ method: 'GET', url: '/auth/verify', headers: { authorization: gateway.authorization } })
  t.same([verified.statusCode, verified.headers['x-auth-subject']], [204, gateway.clientId], 'the forward-auth check')
})

t.test('a client that does not exist is refused, with one database lookup per read of the state', async (t) => {
  // The driver reports its commands, to count the lookups.
  const app = await build(t, { env: { ...env, MONGODB_URL: `${await freshDatabaseUrl()}?monitorCommands=true` } })
  const lookups: unknown[] = []
  app.mongo.client.on('commandStarted', (event) => {
    if (event.commandName === 'find' && event.command.find === 'clients' && event.command.filter?._id !== undefined) lookups.push(event.command.filter._id)
  })
  const clientId = 'svc_0123456789abcdef01234567'
  const { token } = app.issueClientToken({ clientId, scope: 'revocations:read' })
  const ask = async (url: string) => {
    const response = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
    return [response.statusCode, response.json().code]
  }
  t.same(await ask('/auth/verify'), [401, 'TOKEN_INVALID'], 'the forward-auth check')
  t.same(await ask('/revocations'), [401, 'TOKEN_INVALID'], 'the feed')
  t.same(await ask('/auth/verify'), [401, 'TOKEN_INVALID'], 'again')
  t.same(lookups, [clientId], 'one lookup, remembered until the next read')
  await app.revocationState.sync()
  t.same(await ask('/auth/verify'), [401, 'TOKEN_INVALID'], 'after a read')
  t.same(lookups, [clientId, clientId], 'looked up once more')
})
