import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import Mustache from 'mustache'

/** Every message the service sends; each has a template of its own. */
export const MESSAGE_KINDS = ['email_verification', 'password_reset', 'password_changed', 'email_change_requested', 'email_changed'] as const
export type MessageKind = typeof MESSAGE_KINDS[number]

/** What a template may use. `code` and `link` only in the messages that carry them; `link` only when its page is configured. */
export interface TemplateView {
  product: string
  /** The address the message is about (the account's, or the old one in the email-change notices). */
  email: string
  newEmail?: string
  code?: string
  link?: string
  /** The code's lifetime in words, e.g. `15 minutes`. */
  expiresIn?: string
  /** When the change happened, ISO 8601 in UTC. */
  time?: string
}

export interface RenderedMessage {
  subject: string
  text: string
  html?: string
}

interface Template {
  subject: string
  text: string
  html?: string
}

const BUILT_IN: Record<MessageKind, string> = {
  email_verification: `Subject: Confirm your email address for {{product}}

Hello,

To confirm {{email}} for your {{product}} account, enter this code:

    {{code}}

It is valid for {{expiresIn}} and works once.
{{#link}}
Or open this page:

{{link}}
{{/link}}
If you did not ask for this, you can ignore this message.
`,
  password_reset: `Subject: Reset your {{product}} password

Hello,

Someone (hopefully you) asked to reset the password of the {{product}} account {{email}}. Enter this code:

    {{code}}

It is valid for {{expiresIn}} and works once. Resetting the password signs out every session.
{{#link}}
Or open this page:

{{link}}
{{/link}}
If you did not ask for this, ignore this message: your password stays as it is.
`,
  password_changed: `Subject: Your {{product}} password was changed

Hello,

The password of the {{product}} account {{email}} was changed at {{time}} (UTC).

If this was you, there is nothing to do. If it was not, reset your password now: every session is then signed out.
`,
  email_change_requested: `Subject: Your {{product}} email address is about to change

Hello,

Someone signed in to the {{product}} account {{email}} asked to change its address to {{newEmail}}. The change happens only when a code sent to {{newEmail}} is confirmed.

If this was not you, change your password now.
`,
  email_changed: `Subject: Your {{product}} email address was changed

Hello,

The {{product}} account that used {{email}} now uses {{newEmail}} (changed at {{time}}, UTC). Messages about it go to the new address from now on.

If this was not you, contact support at once.
`
}

/** `Subject: …`, a blank line, then the body. */
function parseTextTemplate (source: string, where: string): { subject: string, text: string } {
  const match = /^Subject:[ \t]*(.+)\r?\n\r?\n([\s\S]*)$/.exec(source)
  if (match === null) throw new Error(`${where} must start with a "Subject: …" line and a blank line`)
  return { subject: match[1]!.trim(), text: match[2]! }
}

/** Throws when a template is not valid Mustache, so a broken override stops start-up instead of a delivery. */
function checkSyntax (template: string, where: string) {
  try {
    Mustache.parse(template)
  } catch (error) {
    throw new Error(`${where} is not a valid Mustache template: ${(error as Error).message}`)
  }
}

/**
 * The templates: the built-in ones, each replaced by `<kind>.txt` (and
 * joined by `<kind>.html`) from `directory` when it has one. Read and checked
 * once, at start-up.
 */
export function loadTemplates (directory?: string): (kind: MessageKind, view: TemplateView) => RenderedMessage {
  const templates = new Map<MessageKind, Template>()
  const files = directory === undefined ? [] : readdirSync(directory)
  for (const kind of MESSAGE_KINDS) {
    const textFile = `${kind}.txt`
    const htmlFile = `${kind}.html`
    const source = files.includes(textFile) ? readFileSync(join(directory!, textFile), 'utf8') : BUILT_IN[kind]
    const template: Template = parseTextTemplate(source, files.includes(textFile) ? join(directory!, textFile) : `the built-in ${kind} template`)
    if (files.includes(htmlFile)) template.html = readFileSync(join(directory!, htmlFile), 'utf8')
    checkSyntax(template.subject, `the subject of ${kind}`)
    checkSyntax(template.text, `the ${kind} text template`)
    if (template.html !== undefined) checkSyntax(template.html, join(directory!, htmlFile))
    templates.set(kind, template)
  }

  // Text parts are not HTML: nothing is escaped there. The HTML part escapes every value.
  const plain = { escape: (value: unknown) => String(value) }
  return function render (kind, view) {
    const template = templates.get(kind)!
    return {
      subject: Mustache.render(template.subject, view, undefined, plain).replace(/[\r\n]+/g, ' '),
      text: Mustache.render(template.text, view, undefined, plain),
      ...(template.html === undefined ? {} : { html: Mustache.render(template.html, view) })
    }
  }
}
