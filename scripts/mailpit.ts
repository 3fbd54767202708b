import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/**
 * The tests' SMTP server: Mailpit, built from the Go module proxy (no Docker
 * needed). `npm test` runs this first: it builds Mailpit once into
 * node_modules/.cache unless MAILPIT_BIN names a binary already.
 */
export const MAILPIT_MODULE = 'github.com/axllent/mailpit@v1.33.1'

const cacheDirectory = join(fileURLToPath(new URL('..', import.meta.url)), 'node_modules', '.cache', 'mailpit')

/** MAILPIT_BIN, or where this script builds Mailpit. */
export function mailpitBinary (): string {
  const configured = process.env.MAILPIT_BIN
  return configured !== undefined && configured !== '' ? configured : join(cacheDirectory, 'mailpit')
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const binary = mailpitBinary()
  if (existsSync(binary)) {
    console.log(`mailpit: ${binary}`)
  } else if (process.env.MAILPIT_BIN) {
    console.error(`mailpit: MAILPIT_BIN names ${binary}, which does not exist`)
    process.exit(1)
  } else {
    console.log(`mailpit: building ${MAILPIT_MODULE} with Go into ${cacheDirectory} (once; about 90 s)`)
    try {
      execFileSync('go', ['install', MAILPIT_MODULE], { stdio: 'inherit', env: { ...process.env, GOBIN: cacheDirectory, GOFLAGS: '-mod=mod' } })
    } catch (error) {
      console.error(`mailpit: could not build it (${(error as Error).message}). Install Go, or set MAILPIT_BIN to a Mailpit binary.`)
      process.exit(1)
    }
  }
}
