import t from 'tap'
import { redactUrl } from '../../plugins/logger.js'

t.test('redactUrl replaces every secret_token value and keeps the rest', async (t) => {
  t.equal(redactUrl('/user/profile'), '/user/profile')
  t.equal(redactUrl('/user/profile?secret_token=abc.def.ghi'), '/user/profile?secret_token=[REDACTED]')
  t.equal(redactUrl('/p?a=1&secret_token=x&b=2'), '/p?a=1&secret_token=[REDACTED]&b=2')
  t.equal(redactUrl('/p?secret_token=x&secret_token=y'), '/p?secret_token=[REDACTED]&secret_token=[REDACTED]')
  t.equal(redactUrl('/p?secret%5Ftoken=x'), '/p?secret%5Ftoken=[REDACTED]')
  t.equal(redactUrl('/p?secret_token'), '/p?secret_token=[REDACTED]')
  t.equal(redactUrl('/p?%E0%A4%A=1&secret_token=x'), '/p?%E0%A4%A=1&secret_token=[REDACTED]', 'an undecodable name is kept as is')
  t.equal(redactUrl('/p?secret_tokens=x'), '/p?secret_tokens=x', 'other names are untouched')
})
