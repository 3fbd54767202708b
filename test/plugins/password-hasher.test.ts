import t from 'tap'
import bcrypt from 'bcrypt'
import { createPasswordHasher } from '../../plugins/password-hasher.js'

t.test('hash uses the configured cost and verify accepts only the password', async (t) => {
  const hasher = createPasswordHasher({ cost: 5 })
  const hash = await hasher.hash('correct horse')
  t.equal(bcrypt.getRounds(hash), 5)
  t.same(await hasher.verify('correct horse', hash), { matches: true, needsRehash: false })
  t.same(await hasher.verify('correct horsE', hash), { matches: false, needsRehash: false })
})

t.test('a matching hash of a lower cost needs a rehash; a wrong password never reports one', async (t) => {
  const old = await bcrypt.hash('correct horse', 4)
  const hasher = createPasswordHasher({ cost: 6 })
  t.same(await hasher.verify('correct horse', old), { matches: true, needsRehash: true })
  t.same(await hasher.verify('wrong horse', old), { matches: false, needsRehash: false })
})

t.test('the dummy comparison never matches, whatever the password', async (t) => {
  const hasher = createPasswordHasher({ cost: 4 })
  t.equal(await hasher.verifyAgainstDummy('not-a-real-password'), false)
  t.equal(await hasher.verifyAgainstDummy(''), false)
})

t.test('review finding 8: a password is hashed and compared in Unicode NFC; a hash of another form still matches and asks for a rehash', async (t) => {
  const hasher = createPasswordHasher({ cost: 4 })
  const composed = 'caf\u00e9-password'
  const decomposed = 'cafe\u0301-password'
  const hash = await hasher.hash(decomposed)
  t.ok(await bcrypt.compare(composed, hash), 'what is stored is the hash of the NFC form')
  t.same(await hasher.verify(composed, hash), { matches: true, needsRehash: false })
  t.same(await hasher.verify(decomposed, hash), { matches: true, needsRehash: false })

  const legacy = await bcrypt.hash(decomposed, 4)
  t.same(await hasher.verify(decomposed, legacy), { matches: true, needsRehash: true }, 'a hash of the form as typed works once, to be replaced')
  t.same(await hasher.verify('cafe\u0301-passwort', legacy), { matches: false, needsRehash: false })
})
