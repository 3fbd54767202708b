import t from 'tap'
import { decideRepeatedRotation, type RepeatedRotation } from '../../plugins/sessions/rotation-policy.js'
import { hashRefreshToken, newRefreshToken, sealSuccessor, unsealSuccessor } from '../../plugins/sessions/token-crypto.js'

// The rules and the crypto of refresh-token rotation, without a database.

const fresh: RepeatedRotation = { successorUsed: false, successorUndelivered: false, sinceIssuedMs: 1000, graceMs: 10000, sealedCopyKept: true }

t.test('a token presented again within the grace window gets the same successor', async (t) => {
  t.equal(decideRepeatedRotation(fresh), 'same-successor')
  t.equal(decideRepeatedRotation({ ...fresh, sinceIssuedMs: 10000 }), 'same-successor', 'up to the window\'s end')
})

t.test('after the window, or once the successor was used, or without its sealed copy, it is theft', async (t) => {
  t.equal(decideRepeatedRotation({ ...fresh, sinceIssuedMs: 10001 }), 'theft')
  t.equal(decideRepeatedRotation({ ...fresh, successorUsed: true }), 'theft', 'a used successor makes its parent stolen, even within the window')
  t.equal(decideRepeatedRotation({ ...fresh, sealedCopyKept: false }), 'theft', 'no copy left to hand out')
  t.equal(decideRepeatedRotation({ ...fresh, graceMs: 0, sinceIssuedMs: 1 }), 'theft', 'a window of 0 forgives nothing')
})

t.test('a successor that was never delivered is withdrawn, whenever the parent comes back, unless it was used', async (t) => {
  t.equal(decideRepeatedRotation({ ...fresh, successorUndelivered: true }), 'withdraw-and-rotate')
  t.equal(decideRepeatedRotation({ ...fresh, successorUndelivered: true, sinceIssuedMs: 86_400_000, sealedCopyKept: false }), 'withdraw-and-rotate')
  t.equal(decideRepeatedRotation({ ...fresh, successorUndelivered: true, successorUsed: true }), 'theft', 'used means someone held it')
})

t.test('refresh tokens are 256 random bits, stored as their SHA-256', async (t) => {
  const tokens = new Set(Array.from({ length: 1000 }, newRefreshToken))
  t.equal(tokens.size, 1000)
  for (const token of tokens) t.match(token, /^[A-Za-z0-9_-]{43}$/)
  const [token] = tokens
  t.equal(hashRefreshToken(token!), hashRefreshToken(token!))
  t.not(hashRefreshToken(token!), token)
  t.match(hashRefreshToken(token!), /^[A-Za-z0-9_-]{43}$/)
})

t.test('a sealed successor opens only with its parent, and not once tampered with', async (t) => {
  const parent = newRefreshToken()
  const successor = newRefreshToken()
  const sealed = sealSuccessor(parent, successor)
  t.equal(unsealSuccessor(parent, sealed), successor)
  t.not(sealSuccessor(parent, successor), sealed, 'a fresh IV each time')
  t.equal(unsealSuccessor(newRefreshToken(), sealed), null, 'another token opens nothing')
  t.notOk(sealed.includes(successor), 'the successor is not in the clear')
  const bytes = Buffer.from(sealed, 'base64url')
  bytes[bytes.length - 1]! ^= 1
  t.equal(unsealSuccessor(parent, bytes.toString('base64url')), null, 'a flipped bit is refused')
  t.equal(unsealSuccessor(parent, 'not base64url at all'), null)
})
