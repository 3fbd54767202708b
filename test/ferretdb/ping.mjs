// Waits until a MongoDB-protocol server answers `ping` (the driver's ping
// reaches FerretDB's PostgreSQL backend, so it is a real readiness probe).
// Usage: node test/ferretdb/ping.mjs <mongodb-url> [timeout-seconds]
import { MongoClient } from 'mongodb'

const [url, timeoutSeconds = '30'] = process.argv.slice(2)
if (!url) {
  console.error('usage: ping.mjs <mongodb-url> [timeout-seconds]')
  process.exit(2)
}

const deadline = Date.now() + Number(timeoutSeconds) * 1000
let lastError
while (Date.now() < deadline) {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 1000 })
  try {
    await client.db().command({ ping: 1 })
    await client.close()
    console.log(`ping answered at ${url}`)
    process.exit(0)
  } catch (error) {
    lastError = error
    await client.close().catch(() => {})
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}
console.error(`no ping answer from ${url} within ${timeoutSeconds}s: ${lastError?.message}`)
process.exit(1)
