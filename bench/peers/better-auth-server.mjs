// Better Auth 1.7 (installed by bench/peers.ts, never committed) on node:http,
// against the test database with its MongoDB adapter, bcrypt at the bench's
// cost. COOKIE_CACHE=1 turns on its cookie cache (a signed session copy in a
// cookie: get-session then skips the database while it is fresh).
import { createServer } from 'node:http'
import { createRequire } from 'node:module'

const require = createRequire(process.env.BETTER_AUTH_DIR + '/package.json')
const { betterAuth } = await import(require.resolve('better-auth'))
const { mongodbAdapter } = await import(require.resolve('better-auth/adapters/mongodb'))
const { toNodeHandler } = await import(require.resolve('better-auth/node'))
const { MongoClient } = await import(require.resolve('mongodb'))
const bcrypt = (await import(require.resolve('bcrypt'))).default

const port = Number(process.env.PORT)
const cost = Number(process.env.BCRYPT_COST ?? 10)
const client = new MongoClient(process.env.MONGODB_URL)
await client.connect()
const auth = betterAuth({
  secret: 'a-bench-secret-of-at-least-thirty-two-characters',
  baseURL: `http://127.0.0.1:${port}`,
  database: mongodbAdapter(client.db(), { transaction: false }),
  emailAndPassword: {
    enabled: true,
    password: { hash: (password) => bcrypt.hash(password, cost), verify: ({ hash, password }) => bcrypt.compare(password, hash) }
  },
  session: process.env.COOKIE_CACHE === '1' ? { cookieCache: { enabled: true, maxAge: 600 } } : {},
  rateLimit: { enabled: false },
  logger: { disabled: true }
})
const handler = toNodeHandler(auth)
createServer((request, response) => {
  if (request.url === '/health/live') return response.end('ok')
  return handler(request, response)
}).listen(port, '127.0.0.1')
