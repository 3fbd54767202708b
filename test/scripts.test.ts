import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { loadConfig } from '../config.js'
import { renderKeyPair } from '../scripts/generate-keys.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))

function envLines (output: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [, name, value] of output.matchAll(/^(JWT_[A-Z_]+)=(.*)$/gm)) {
    env[name!] = value!.replace(/^"|"$/g, '')
  }
  return env
}

t.test('keys:generate prints a key pair the configuration accepts, for each algorithm', async (t) => {
  for (const algorithm of ['EdDSA', 'ES256', 'RS256'] as const) {
    const output = renderKeyPair(algorithm)
    const kid = /kid (\S+)/.exec(output)?.[1]
    const config = loadConfig({ NODE_ENV: 'production', SMTP_URL: 'smtp://mail.example.com', ...envLines(output) })
    t.equal(config.jwt.algorithm, algorithm)
    t.equal(config.jwt.signingKey?.kid, kid, `${algorithm}: the .env line loads as the printed kid`)
    const pems = output.split('# The same')[0]!.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? []
    t.equal(pems.length, 2)
    t.equal(loadConfig({ JWT_ALGORITHM: algorithm, JWT_PRIVATE_KEY: pems[0]!, JWT_VERIFY_KEYS: pems[1]! }).jwt.verificationKeys.length, 1,
      `${algorithm}: the printed public key is the private key's`)
  }
})

t.test('the npm script runs and refuses an unknown algorithm', async (t) => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/generate-keys.ts'], { cwd: root })
  t.match(stdout, /^# EdDSA key pair, kid /)
  await t.rejects(run(process.execPath, ['--import', 'tsx', 'scripts/generate-keys.ts', 'HS512'], { cwd: root }), { code: 2 })
})

t.test('keys:generate -- HS256 prints a shared secret the configuration accepts', async (t) => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/generate-keys.ts', 'HS256'], { cwd: root })
  const config = loadConfig({ NODE_ENV: 'production', SMTP_URL: 'smtp://mail.example.com', ...envLines(stdout) })
  t.equal(config.jwt.algorithm, 'HS256')
  t.ok(Buffer.byteLength(config.jwt.secret ?? '') >= 48, 'a long random secret')
  t.not(envLines(stdout).JWT_SECRET, envLines((await run(process.execPath, ['--import', 'tsx', 'scripts/generate-keys.ts', 'HS256'], { cwd: root })).stdout).JWT_SECRET, 'a new one each time')
})

t.test('the key file keys:generate writes is what JWT_PRIVATE_KEY_FILE takes, as the README starts the service', async (t) => {
  const file = join(t.testdir(), 'signing-key.txt')
  await writeFile(file, renderKeyPair('EdDSA'))
  const config = loadConfig({ NODE_ENV: 'production', SMTP_URL: 'smtp://mail.example.com', JWT_PRIVATE_KEY_FILE: file })
  t.equal(config.jwt.ephemeral, false)
  t.equal(config.jwt.algorithm, 'EdDSA')
  const ignored = await readFile(join(root, '.gitignore'), 'utf8')
  t.match(ignored, /^signing-key\.txt$/m, 'and git ignores it, so a private key is not one `git add .` from a commit')
})

t.test('@auth-service/verify packs as a publishable package: built code, types and README, no sources', async (t) => {
  const destination = t.testdir()
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', destination, '-w', '@auth-service/verify'], { cwd: root })
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = packed!.files.map((file) => file.path).sort()
  for (const expected of ['README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/fastify.js', 'dist/fastify.d.ts']) {
    t.ok(files.includes(expected), `the tarball has ${expected}`)
  }
  t.notOk(files.some((file) => file.startsWith('src/')), 'and no sources')
  t.match(packed!.filename, /^auth-service-verify-\d+\.\d+\.\d+\.tgz$/)
})
