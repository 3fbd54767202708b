import { access } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { chromium } from 'playwright-core'
import { build, registerUser } from './helper.js'

// The interactive documentation, in a real headless browser (Debian's
// chromium, which .ci/run installs), opened by a host name that is not a
// loopback one: browsers treat localhost and 127.0.0.0/8 as secure whatever
// the scheme, which hid a CSP that broke the page everywhere else. The name
// is mapped to 127.0.0.2 inside the browser, so nothing leaves the machine.
const CHROMIUM = '/usr/bin/chromium'
const noBrowser = await access(CHROMIUM).then(() => false as const, () => `no browser at ${CHROMIUM} (apt-get install chromium, as .ci/run does)`)
if (noBrowser !== false) t.comment(`The browser test is skipped: ${noBrowser}`)

t.test('/docs renders every route over plain http by a non-loopback host name, and "Try it out" on /user/profile answers 200', { skip: noBrowser }, async (t) => {
  const app = await build(t)
  const user = await registerUser(app)
  await app.listen({ host: '127.0.0.2', port: 0 })
  const { port } = app.server.address() as AddressInfo

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--host-resolver-rules=MAP docs.example.test 127.0.0.2', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const failed: string[] = []
  page.on('requestfailed', (request) => { failed.push(request.url()) })

  await page.goto(`http://docs.example.test:${port}/docs`)
  await page.locator('.opblock').first().waitFor({ timeout: 20000 })
  const operations = await page.locator('.opblock-summary-path').allTextContents()
  for (const path of ['/signup', '/login', '/token/refresh', '/logout', '/user/profile', '/user/sessions', '/revocations']) {
    t.ok(operations.some((text) => text.replace(/\u200b/g, '') === path), `${path} is listed`)
  }
  t.same(failed, [], 'no asset failed to load')

  await page.locator('button.authorize').first().click()
  const bearer = page.locator('.auth-container').filter({ hasText: 'bearerAuth' })
  await bearer.locator('input').fill(user.token)
  await bearer.locator('button[type="submit"]').click()
  await page.locator('.modal-ux .close-modal').click()

  const profile = page.locator('.opblock-get').filter({ has: page.locator('.opblock-summary-path[data-path="/user/profile"]') })
  await profile.locator('.opblock-summary').click()
  await profile.getByRole('button', { name: 'Try it out' }).click()
  await profile.getByRole('button', { name: 'Execute' }).click()
  const status = profile.locator('.live-responses-table .response .response-col_status').first()
  await status.waitFor({ timeout: 20000 })
  t.equal((await status.textContent())?.trim(), '200', 'the request made from the page, with the bearer token, answers 200')
  t.match(await profile.locator('.live-responses-table').textContent(), /You made it to the secure route/, 'with the profile in the body')
})
