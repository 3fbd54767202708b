import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parse } from 'yaml'
import { loadConfig } from '../config.js'
import { EnvSchema } from '../schemas/config.js'
import { generateSigningKey } from '../keys.js'

const read = (path: string) => readFile(new URL(`../${path}`, import.meta.url), 'utf8')
const variables = Object.keys(EnvSchema.properties)

interface ComposeFile {
  services: Record<string, {
    image?: string
    build?: unknown
    ports?: string[]
    environment?: Record<string, string | number>
    depends_on?: Record<string, { condition: string }>
    healthcheck?: { test: string[] }
    volumes?: string[]
  }>
  volumes?: Record<string, unknown>
}

/** What docker compose does with `${NAME:-default}` when NAME is not set. */
function withDefaults (value: string | number): string {
  return String(value).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')
}

t.test('docker-compose.yml: MongoDB and Redis with health checks, the service started once they are healthy', async (t) => {
  const compose = parse(await read('docker-compose.yml')) as ComposeFile
  const { mongodb, redis, auth } = compose.services
  t.match(mongodb?.image, /^mongo:/, 'the official MongoDB image')
  t.ok(mongodb?.healthcheck, 'MongoDB has a health check')
  t.ok(mongodb?.volumes?.some((volume) => volume.startsWith('mongodb-data:')) && compose.volumes && 'mongodb-data' in compose.volumes, 'on a named volume')
  t.match(redis?.image, /^redis:/)
  t.ok(redis?.healthcheck)
  t.ok(auth?.build, 'the service is built from the Dockerfile')
  t.same(auth?.depends_on, { mongodb: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' }, mailpit: { condition: 'service_started' } })
})

t.test('the example consumer waits for a healthy auth service and reaches it by its container port and claims', async (t) => {
  const compose = parse(await read('docker-compose.yml')) as ComposeFile
  const { notes, auth } = compose.services
  t.same(notes?.depends_on, { auth: { condition: 'service_healthy' } })
  t.equal(notes?.environment?.AUTH_URL, `http://auth:${auth?.environment?.PORT}`)
  t.equal(notes?.environment?.JWT_ISSUER, auth?.environment?.JWT_ISSUER)
  t.equal(notes?.environment?.JWT_AUDIENCE, auth?.environment?.JWT_AUDIENCE)
  const declared = loadConfig({ SERVICE_CLIENTS: withDefaults(auth!.environment!.SERVICE_CLIENTS!) }).clients.declared
  t.same(declared.map((client) => ({ id: client.id, secret: client.secret, scopes: client.scopes })),
    [{ id: notes?.environment?.AUTH_CLIENT_ID, secret: withDefaults(notes!.environment!.AUTH_CLIENT_SECRET!), scopes: ['revocations:read'] }],
    'the consumer\'s client is declared to the auth service, with the same secret and the scope of the revocation stream')
  t.match(await read('examples/notes-service/Dockerfile'), /^USER node$/m)
})

t.test('the compose environment is the config schema\'s, and its defaults make a valid configuration', async (t) => {
  const compose = parse(await read('docker-compose.yml')) as ComposeFile
  const environment = compose.services.auth?.environment ?? {}
  t.same(Object.keys(environment).filter((name) => !variables.includes(name)), [], 'no variable the service does not know')
  for (const required of ['NODE_ENV', 'MONGODB_URL', 'JWT_ALGORITHM', 'JWT_PRIVATE_KEY', 'JWT_SECRET', 'REDIS_URL', 'SMTP_URL', 'EMAIL_FROM']) {
    t.ok(required in environment, `${required} reaches the container`)
  }
  const resolved = Object.fromEntries(Object.entries(environment).map(([name, value]) => [name, withDefaults(value)]))
  const config = loadConfig(resolved)
  t.equal(config.mongodb.url, 'mongodb://mongodb:27017/auth')
  t.equal(config.rateLimit.redisUrl, 'redis://redis:6379')
  t.equal(config.email.smtpUrl, 'smtp://mailpit:1025', 'email goes to the Mailpit of the compose file')
  t.throws(() => loadConfig({ ...resolved, NODE_ENV: 'production' }), /JWT_PRIVATE_KEY/, 'production without a key in .env refuses to start')
  t.throws(() => loadConfig({ ...resolved, SMTP_URL: '', NODE_ENV: 'production', JWT_PRIVATE_KEY: generateSigningKey('EdDSA').privateKeyPem }), /SMTP_URL/, 'or without an SMTP server')
})

t.test('ports agree: the proxy publishes the port and forwards to the container PORT, the Dockerfile EXPOSE and health check', async (t) => {
  const compose = parse(await read('docker-compose.yml')) as ComposeFile
  const dockerfile = await read('Dockerfile')
  const auth = compose.services.auth!
  const containerPort = String(auth.environment?.PORT)
  t.match(dockerfile, new RegExp(`^EXPOSE ${containerPort}$`, 'm'))
  t.match(dockerfile, /HEALTHCHECK[\s\S]*process\.env\.PORT \|\| 3000[\s\S]*\/health\/ready/)
  t.equal(String(loadConfig({}).port), containerPort, 'the service\'s default port too')
  const nginx = await read('deploy/nginx.conf')
  t.match(nginx, new RegExp(`http://auth:${containerPort};`), 'the proxy forwards to the auth service\'s container port')
  t.match(nginx, /X-Forwarded-For \$proxy_add_x_forwarded_for/, 'and names the client in X-Forwarded-For')
})

t.test('the auth service can scale: no host port of its own, a proxy in front, and TRUST_PROXY set to that one hop', async (t) => {
  const compose = parse(await read('docker-compose.yml')) as ComposeFile
  const { auth, proxy } = compose.services
  t.notOk(auth?.ports, 'a fixed host port would stop the second replica from starting')
  t.match(proxy?.image, /^nginx:/)
  t.same(proxy?.ports, ['$' + '{PORT:-3000}:80'], 'the proxy publishes the service\'s port')
  t.ok(proxy?.volumes?.includes('./deploy/nginx.conf:/etc/nginx/nginx.conf:ro'), 'with the configuration from this repository')
  t.same(proxy?.depends_on, { auth: { condition: 'service_healthy' } })
  t.equal(loadConfig({ TRUST_PROXY: withDefaults(auth!.environment!.TRUST_PROXY!) }).trustProxy, 1, 'rate limits see the client behind the one proxy')
})

t.test('the Dockerfile is multi-stage and ships only compiled output, as a non-root user', async (t) => {
  const dockerfile = await read('Dockerfile')
  const stages = dockerfile.match(/^FROM /gm) ?? []
  t.equal(stages.length, 2, 'multi-stage')
  t.match(dockerfile, /npm ci/)
  t.match(dockerfile, /npm prune --omit=dev/)
  t.match(dockerfile, /^USER node$/m)
  t.match(dockerfile, /^CMD \["node", "dist\/server\.js"\]$/m)
  const copied = dockerfile.split('\n').filter((line) => line.startsWith('COPY ')).join(' ')
  const { readdir } = await import('node:fs/promises')
  const sources = (await readdir(new URL('..', import.meta.url))).filter((name) => name.endsWith('.ts'))
  for (const source of sources) t.ok(copied.includes(` ${source}`), `the build stage copies ${source}`)
  for (const folder of ['plugins', 'routes', 'schemas', 'scripts', 'packages/verify']) t.ok(copied.includes(`COPY ${folder} ${folder}`), `and ${folder}/`)
  const dockerignore = await read('.dockerignore')
  for (const entry of ['node_modules', '.env', '.git']) t.match(dockerignore, new RegExp(`^${entry.replace('.', '\\.')}$`, 'm'), `.dockerignore has ${entry}`)
})

t.test('.env.example documents every variable compose does not set itself', async (t) => {
  const example = await read('.env.example')
  const compose = parse(await read('docker-compose.yml')) as ComposeFile
  const environment = compose.services.auth?.environment ?? {}
  const setByCompose = Object.entries(environment).filter(([, value]) => !String(value).includes('${')).map(([name]) => name)
  const listed = [...example.matchAll(/^#? ?([A-Z][A-Z0-9_]+)=/gm)].map((match) => match[1]!)
  // Compose reads a few of its own (the example consumer's secret, host ports).
  const readByCompose = [...(await read('docker-compose.yml')).matchAll(/\$\{([A-Z][A-Z0-9_]+):-/g)].map((match) => match[1]!)
  t.same(listed.filter((name) => !variables.includes(name) && !readByCompose.includes(name)), [], 'no variable neither the service nor compose reads')
  t.same(variables.filter((name) => !listed.includes(name) && !setByCompose.includes(name)), [], 'none missing')
})
