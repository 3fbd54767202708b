import { parse as parseWithDecoding } from 'fast-querystring'

export type ParsedQuery = Record<string, string | string[]>

function addPair (query: ParsedQuery, name: string, value: string) {
  const existing = query[name]
  if (existing === undefined) query[name] = value
  else if (typeof existing === 'string') query[name] = [existing, value]
  else existing.push(value)
}

/**
 * The parsed query's object, made as fast-querystring makes its own: it
 * inherits from a prototype-less object, so `__proto__` or `constructor` in a
 * query are plain keys. Object.create(null) would do the same, but V8 makes
 * that a dictionary-mode object, and each key stored into it goes through the
 * runtime.
 */
const QueryObject = function () {} as unknown as new () => ParsedQuery
QueryObject.prototype = Object.create(null)

/**
 * Fastify's query-string parser (fast-querystring), with a fast path for a
 * query that needs no decoding: without `%` or `+`, the pairs are cut where
 * native indexOf finds `&` and `=`, where fast-querystring reads every
 * character of a long `secret_token` with charCodeAt. The result is the same for every input: a
 * property test compares the two. Each separator is searched for once, so a
 * long query of many pairs stays linear.
 */
export function parseQueryString (input: string): ParsedQuery {
  if (input.indexOf('%') !== -1 || input.indexOf('+') !== -1) return parseWithDecoding(input) as ParsedQuery
  const query = new QueryObject()
  let equals = -1
  for (let start = 0; start <= input.length;) {
    let end = input.indexOf('&', start)
    if (end === -1) end = input.length
    if (equals < start) {
      equals = input.indexOf('=', start)
      if (equals === -1) equals = input.length
    }
    if (equals < end) addPair(query, input.slice(start, equals), input.slice(equals + 1, end))
    else if (end > start) addPair(query, input.slice(start, end), '')
    start = end + 1
  }
  return query
}
