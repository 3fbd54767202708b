import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, type Config } from './config.js'
import { withDevelopmentKey } from './keys.js'

const env = withDevelopmentKey(process.env)
let config: Config
try {
  config = loadConfig(env)
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  // One clear line, no stack: the operator only needs to know which variable.
  console.error(error.message)
  process.exit(1)
}

const app = buildApp(config)

/** The file Node read variables from before this code ran (`npm start` passes --env-file-if-exists=.env), if any. */
function envFileRead (): string | undefined {
  for (const argument of process.execArgv) {
    const path = /^--env-file(?:-if-exists)?=(.+)$/.exec(argument)?.[1]
    if (path !== undefined && existsSync(path)) return resolve(path)
  }
  return undefined
}
if (env !== process.env) {
  app.log.warn({ keyFile: env.JWT_PRIVATE_KEY_FILE }, 'development: signing with the key kept in this git-ignored file, so tokens survive restarts; configure a key outside local development (npm run keys:generate)')
}
const envFile = envFileRead()
app.log.info({ envFile: envFile ?? null }, envFile === undefined ? 'configuration from the environment only (no .env file read)' : `configuration from the environment and ${envFile}`)

// On SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish
// (up to the grace period), close the MongoDB client, exit 0.
closeWithGrace({ delay: config.shutdownGraceMs, logger: app.log }, async function closeApp ({ signal, err }) {
  if (err) app.log.error({ err }, 'shutting down after an unexpected error')
  else app.log.info({ signal }, 'shutting down')
  // Fastify closes the connections that are idle when closing starts; a
  // keep-alive connection whose request was still in flight would otherwise
  // hold the process open until the client hangs up.
  const reapIdleConnections = setInterval(() => app.server.closeIdleConnections(), 100)
  try {
    await app.close()
  } finally {
    clearInterval(reapIdleConnections)
  }
})

await app.listen({ host: config.host, port: config.port })
