import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freshDatabaseUrl, TEST_SIGNING_KEY } from './helper.js'

const root = fileURLToPath(new URL('..', import.meta.url))

function startServer (env: Record<string, string>): ChildProcessWithoutNullStreams {
  // The compiled entry point, as `npm start` runs it (npm test builds first).
  return spawn(process.execPath, ['dist/server.js'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env }
  })
}

function collect (stream: NodeJS.ReadableStream) {
  let text = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => { text += chunk })
  return () => text
}

t.test('a bad variable stops the process with one clear line and exit code 1', async (t) => {
  const child = startServer({ NODE_ENV: 'test', PORT: 'not-a-port' })
  const stderr = collect(child.stderr)
  const stdout = collect(child.stdout)
  const [code] = await once(child, 'exit')
  t.equal(code, 1)
  t.equal(stderr(), 'Invalid configuration: PORT expected integer\n')
  t.equal(stdout(), '')
})

t.test('npm start reads .env from where it runs, and the log says which file it read', async (t) => {
  const packageJson = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const start = packageJson.scripts.start!.split(' ')
  t.same(start.slice(0, 2), ['node', '--env-file-if-exists=.env'], 'the start script loads .env when present')
  const directory = t.testdir({ '.env': 'PORT=not-a-port\n' })
  const refused = spawn(process.execPath, [...start.slice(1, -1), join(root, start.at(-1)!)], { cwd: directory, env: { PATH: process.env.PATH ?? '' } })
  const refusedErr = collect(refused.stderr)
  t.equal((await once(refused, 'exit'))[0], 1, 'a bad value in .env stops the process')
  t.match(refusedErr(), /Invalid configuration: PORT/)

  const env = { NODE_ENV: 'development', HOST: '127.0.0.1', PORT: '0', MONGODB_URL: await freshDatabaseUrl(), LOG_LEVEL: 'info' }
  const withFile = t.testdir({ '.env': Object.entries(env).map(([name, value]) => `${name}=${value}`).join('\n') })
  const child = spawn(process.execPath, [...start.slice(1, -1), join(root, start.at(-1)!)], { cwd: withFile, env: { PATH: process.env.PATH ?? '' } })
  t.teardown(() => { child.kill('SIGKILL') })
  const stdout = collect(child.stdout)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stdout()}`)), 20000)
    child.stdout.on('data', () => { if (stdout().includes('Server listening')) { clearTimeout(timer); resolve() } })
  })
  const line = stdout().split('\n').find((text) => text.includes('"envFile"'))
  t.match(JSON.parse(line ?? '{}'), { envFile: join(withFile, '.env') }, 'the log names the file it read')
})

t.test('SIGTERM lets in-flight requests finish, then the process exits 0', async (t) => {
  const child = startServer({
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    JWT_PRIVATE_KEY: TEST_SIGNING_KEY.privateKeyPem,
    MONGODB_URL: await freshDatabaseUrl(),
    BCRYPT_COST: '12',
    SHUTDOWN_GRACE_MS: '10000',
    // Production needs an SMTP server; nothing is sent in this test.
    SMTP_URL: 'smtp://127.0.0.1:1'
  })
  t.teardown(() => { child.kill('SIGKILL') })
  const stdout = collect(child.stdout)
  const stderr = collect(child.stderr)

  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stdout()} ${stderr()}`)), 20000)
    child.stdout.on('data', () => {
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout())
      if (match?.[1]) {
        clearTimeout(timer)
        resolve(match[1])
      }
    })
  })

  const live = await fetch(`${address}/health/live`)
  t.equal(live.status, 200)
  // A burst whose lines are still being written when the process stops.
  const burst = await Promise.all(Array.from({ length: 300 }, (_, n) => fetch(`${address}/health/live?n=${n}`).then((r) => r.status)))
  t.ok(burst.every((status) => status === 200))

  // Two bcrypt operations at cost 12 (~0.5 s): in flight when SIGTERM arrives.
  const inFlight = fetch(`${address}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'nobody@example.com', password: 'whatever-password' })
  })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const signalledAt = Date.now()
  child.kill('SIGTERM')

  const response = await inFlight
  t.equal(response.status, 401, 'the in-flight request completed with its real answer')
  t.equal((await response.json() as { code: string }).code, 'INVALID_CREDENTIALS')

  const [code, signal] = await once(child, 'exit')
  t.ok(Date.now() - signalledAt < 10000, 'within the grace period (SHUTDOWN_GRACE_MS)')
  t.equal(code, 0, 'clean exit')
  t.equal(signal, null)
  t.match(stdout(), /shutting down/)
  t.equal(stderr(), '')
  // Standard output is whole JSON lines, none lost or cut, up to the last.
  const lines = stdout().trimEnd().split('\n').map((line) => JSON.parse(line) as { msg: string, req?: { url: string } })
  const burstUrls = new Set(lines.filter((line) => line.msg === 'request completed' && line.req?.url.startsWith('/health/live?n=')).map((line) => line.req!.url))
  t.equal(burstUrls.size, 300, 'a completion line for every request of the burst')
  t.ok(stdout().endsWith('\n'), 'the last line is complete')
  await t.rejects(fetch(`${address}/health/live`), 'no longer accepting connections')
})
