/**
 * The values users keep in pipeline state, and their JSON form: dlt's "typed JSON".
 *
 * Plain JSON cannot tell a timestamp from a string, so dlt marks special values with one Private Use
 * Area character in front of their text form. We read and write the same marks, so that a state
 * written by pipestate can be read by dlt and the other way round:
 *
 * | mark   | value                    | JS value              |
 * | ------ | ------------------------ | --------------------- |
 * | U+F026 | decimal (its string)     | `BigDecimal`          |
 * | U+F027 | datetime (ISO 8601)      | `Date`                |
 * | U+F028 | date (`2024-01-31`)      | `CalendarDate`        |
 * | U+F029 | UUID                     | `Uuid`                |
 * | U+F02A | bytes as hex (read only) | `Uint8Array`          |
 * | U+F02B | bytes as standard base64 | `Uint8Array`          |
 * | U+F02C | wei (read only)          | `BigDecimal`          |
 * | U+F02D | time of day              | `TimeOfDay`           |
 *
 * A marked string whose body does not decode stays the plain string (as dlt does).
 *
 * @since 0.1.0
 */
import { BigDecimal, Data, Either, Option, ParseResult, Schema } from "effect"

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/**
 * A UUID; `value` is the canonical lowercase text (`8-4-4-4-12` hex digits). Build one with
 * {@link makeUuid}, which accepts any case, braces and a `urn:uuid:` prefix.
 *
 * @example
 * ```ts
 * const id = Either.getOrThrow(makeUuid("6F9619FF-8B86-D011-B42D-00C04FC964FF"))
 * id.value // "6f9619ff-8b86-d011-b42d-00c04fc964ff"
 * ```
 *
 * @since 0.1.0
 */
export class Uuid extends Data.TaggedClass("Uuid")<{ readonly value: string }> {}

/**
 * A calendar date without time or zone (Python's `date`), as ISO text `YYYY-MM-DD`.
 *
 * @example
 * ```ts
 * const day = Either.getOrThrow(makeCalendarDate("2024-01-31"))
 * ```
 *
 * @since 0.1.0
 */
export class CalendarDate extends Data.TaggedClass("CalendarDate")<{ readonly iso: string }> {}

/**
 * A time of day (Python's `time`), as ISO text such as `12:30:00`, `12:30:00.5` or `12:30:00+02:00`.
 *
 * @example
 * ```ts
 * const noon = Either.getOrThrow(makeTimeOfDay("12:00:00"))
 * ```
 *
 * @since 0.1.0
 */
export class TimeOfDay extends Data.TaggedClass("TimeOfDay")<{ readonly iso: string }> {}

/**
 * A value that can be kept in pipeline state.
 *
 * @since 0.1.0
 */
export type StateValue =
  | null
  | boolean
  | number
  | string
  | Date
  | BigDecimal.BigDecimal
  | Uint8Array
  | Uuid
  | CalendarDate
  | TimeOfDay
  | ReadonlyArray<StateValue>
  | { readonly [key: string]: StateValue }

/**
 * Plain JSON, as `JSON.parse` returns it.
 *
 * @since 0.1.0
 */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * A value that cannot be kept in state. `path` names where it sits, e.g.
 * `sources.chess.resources.players_games.archives[3]`.
 *
 * @since 0.1.0
 */
export class NonSerializableStateValue extends Schema.TaggedError<NonSerializableStateValue>()(
  "NonSerializableStateValue",
  { path: Schema.String, reason: Schema.String }
) {
  override get message(): string {
    const where = this.path === "" ? "the state value" : `state path ${this.path}`
    return (
      `Cannot store ${where} in pipeline state: ${this.reason}. ` +
      "State holds JSON values (null, boolean, finite number, string, arrays, plain objects) and Date, " +
      "BigDecimal, Uint8Array, Uuid, CalendarDate and TimeOfDay: convert the value to one of these."
    )
  }
}

/**
 * Text that is not valid JSON.
 *
 * @since 0.1.0
 */
export class InvalidTypedJson extends Schema.TaggedError<InvalidTypedJson>()("InvalidTypedJson", {
  reason: Schema.String
}) {
  override get message(): string {
    return `The state text is not valid JSON: ${this.reason}`
  }
}

/**
 * Text that does not form the value a constructor such as {@link makeUuid} was asked for.
 *
 * @since 0.1.0
 */
export class InvalidStateValue extends Schema.TaggedError<InvalidStateValue>()("InvalidStateValue", {
  kind: Schema.String,
  input: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${JSON.stringify(this.input)} is not a valid ${this.kind}: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------
// Markers and text forms
// ---------------------------------------------------------------------------------------------

const DECIMAL = "\uF026"
const DATE = "\uF028"
const UUID = "\uF029"
const B64BYTES = "\uF02B"
const TIME = "\uF02D"
const FIRST_MARK = 0xf026
const LAST_MARK = 0xf02d

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const HEX32 = /^[0-9a-fA-F]{32}$/
const DECIMAL_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/
const DATETIME_TEXT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)?)?$/
const TIME_TEXT =
  /^(?:[01]\d|2[0-3])(?::[0-5]\d(?::[0-5]\d(?:[.,]\d{1,9})?)?)?(?:[Zz]|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d(?::?[0-5]\d(?:\.\d{1,6})?)?)?)?$/
const BASE64_TEXT = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const HEX_TEXT = /^(?:0[xX])?(?:[0-9a-fA-F]{2})*$/

const isLeapYear = (year: number): boolean => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)

const daysInMonth = (year: number, month: number): number => {
  if (month === 2) return isLeapYear(year) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

const validYmd = (y: number, m: number, d: number): boolean =>
  y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m)

const canonicalUuid = (text: string): string | undefined => {
  if (CANONICAL_UUID.test(text)) return text
  // the forms Python's uuid.UUID accepts: any case, braces, "urn:uuid:" prefix, hyphens anywhere
  let hex = text.trim()
  if (hex.toLowerCase().startsWith("urn:uuid:")) hex = hex.slice(9)
  if (hex.startsWith("{") && hex.endsWith("}")) hex = hex.slice(1, -1)
  hex = hex.replaceAll("-", "")
  if (!HEX32.test(hex)) return undefined
  hex = hex.toLowerCase()
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

const isCalendarDateText = (text: string): boolean => {
  const m = DATE_TEXT.exec(text)
  return m !== null && validYmd(Number(m[1]), Number(m[2]), Number(m[3]))
}

/**
 * A {@link Uuid} from text in any case, with or without hyphens, braces or a `urn:uuid:` prefix.
 *
 * @example
 * ```ts
 * makeUuid("{12345678-1234-5678-1234-567812345678}") // Right(Uuid)
 * ```
 *
 * @since 0.1.0
 */
export const makeUuid = (text: string): Either.Either<Uuid, InvalidStateValue> => {
  const value = canonicalUuid(text)
  return value === undefined
    ? Either.left(new InvalidStateValue({ kind: "UUID", input: text, reason: "expected 32 hex digits" }))
    : Either.right(new Uuid({ value }))
}

/**
 * A {@link CalendarDate} from `YYYY-MM-DD` text naming a real day (years 0001..9999).
 *
 * @example
 * ```ts
 * makeCalendarDate("2024-02-29") // Right; "2023-02-29" is Left
 * ```
 *
 * @since 0.1.0
 */
export const makeCalendarDate = (text: string): Either.Either<CalendarDate, InvalidStateValue> =>
  isCalendarDateText(text)
    ? Either.right(new CalendarDate({ iso: text }))
    : Either.left(new InvalidStateValue({ kind: "date", input: text, reason: "expected a real day as YYYY-MM-DD" }))

/**
 * A {@link TimeOfDay} from ISO text: `HH`, `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fraction`, with an
 * optional offset (`Z`, `+02:00`).
 *
 * @example
 * ```ts
 * makeTimeOfDay("12:30:00.5") // Right
 * ```
 *
 * @since 0.1.0
 */
export const makeTimeOfDay = (text: string): Either.Either<TimeOfDay, InvalidStateValue> =>
  TIME_TEXT.test(text)
    ? Either.right(new TimeOfDay({ iso: text }))
    : Either.left(
        new InvalidStateValue({ kind: "time of day", input: text, reason: "expected HH:MM:SS[.fraction][offset]" })
      )

// Python's str(Decimal) keeps the scale ("1.50"), so we do too instead of BigDecimal.format, which
// normalizes it away.
const formatDecimal = (d: BigDecimal.BigDecimal): string => {
  const negative = d.value < 0n
  const digits = (negative ? -d.value : d.value).toString()
  const sign = negative ? "-" : ""
  if (d.scale <= 0) return d.scale === 0 || d.value === 0n ? sign + digits : `${sign}${digits}E+${-d.scale}`
  const padded = digits.length <= d.scale ? "0".repeat(d.scale - digits.length + 1) + digits : digits
  return `${sign}${padded.slice(0, padded.length - d.scale)}.${padded.slice(padded.length - d.scale)}`
}

const parseDecimal = (text: string): BigDecimal.BigDecimal | undefined => {
  if (!DECIMAL_TEXT.test(text)) return undefined
  const parsed = BigDecimal.fromString(text)
  return Option.isSome(parsed) ? parsed.value : undefined
}

// The times of years 0001..9999, the only years dlt reads (Python's datetime.MINYEAR..MAXYEAR)
const MIN_TIME = -62135596800000 // 0001-01-01T00:00:00.000Z
const MAX_TIME = 253402300799999 // 9999-12-31T23:59:59.999Z

const isStorableTime = (time: number): boolean => time >= MIN_TIME && time <= MAX_TIME

// two decimal digits at `i`, or -1
const digits2 = (text: string, i: number): number => {
  const a = text.charCodeAt(i) - 48
  const b = text.charCodeAt(i + 1) - 48
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1
}

// The forms dlt and pipestate write, read without a regex nor a copy, from `start` on (after the
// mark): `YYYY-MM-DDTHH:MM:SS`, an optional `.fraction` (1..9 digits), then nothing, `Z` or
// `+HH:MM`/`-HH:MM`. The time, or NaN for anything else (and for years 0001..0099, which Date.UTC
// maps to 19xx), which is left to the general parser: NaN means "not decided", not "invalid".
const commonDatetimeTime = (text: string, start: number): number => {
  const n = text.length
  if (
    n - start < 19 ||
    text.charCodeAt(start + 4) !== 45 || // -
    text.charCodeAt(start + 7) !== 45 ||
    text.charCodeAt(start + 10) !== 84 || // T
    text.charCodeAt(start + 13) !== 58 || // :
    text.charCodeAt(start + 16) !== 58
  ) {
    return Number.NaN
  }
  const century = digits2(text, start)
  const yy = digits2(text, start + 2)
  const month = digits2(text, start + 5)
  const day = digits2(text, start + 8)
  const hour = digits2(text, start + 11)
  const minute = digits2(text, start + 14)
  const second = digits2(text, start + 17)
  if (century < 1 || yy < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return Number.NaN
  const year = century * 100 + yy
  let i = start + 19
  let millis = 0
  if (i < n && text.charCodeAt(i) === 46) {
    // .fraction: the milliseconds are its first three digits (truncated, as the general parser)
    const from = ++i
    while (i < n && i - from < 10) {
      const c = text.charCodeAt(i) - 48
      if (c < 0 || c > 9) break
      if (i - from < 3) millis = millis * 10 + c
      i++
    }
    const count = i - from
    if (count === 0 || count > 9) return Number.NaN
    if (count === 1) millis *= 100
    else if (count === 2) millis *= 10
  }
  let offset = 0
  if (i < n) {
    const c = text.charCodeAt(i)
    if (c === 90 && i + 1 === n) {
      // Z
    } else if ((c === 43 || c === 45) && i + 6 === n && text.charCodeAt(i + 3) === 58) {
      const oh = digits2(text, i + 1)
      const om = digits2(text, i + 4)
      if (oh < 0 || om < 0 || oh > 23 || om > 59) return Number.NaN
      offset = (c === 45 ? -1 : 1) * (oh * 60 + om) * 60_000
    } else {
      return Number.NaN
    }
  }
  if (!validYmd(year, month, day) || hour > 23 || minute > 59 || second > 59) return Number.NaN
  return Date.UTC(year, month - 1, day, hour, minute, second, millis) - offset
}

const parseDatetime = (text: string): Date | undefined => {
  const common = commonDatetimeTime(text, 0)
  if (!Number.isNaN(common)) return new Date(common)
  const m = DATETIME_TEXT.exec(text)
  if (m === null) return undefined
  const year = Number(m[1])
  const month = Number(m[2])
  const day = Number(m[3])
  const hour = m[4] === undefined ? 0 : Number(m[4])
  // Python requires minutes once an hour is given; "2024-01-01T10" is not a datetime
  if (m[4] !== undefined && m[5] === undefined) return undefined
  const minute = m[5] === undefined ? 0 : Number(m[5])
  const second = m[6] === undefined ? 0 : Number(m[6])
  const millis = m[7] === undefined ? 0 : Number(`${m[7]}00`.slice(0, 3))
  if (!validYmd(year, month, day) || hour > 23 || minute > 59 || second > 59) return undefined
  let offsetMinutes = 0
  if (m[9] !== undefined) {
    const oh = Number(m[10])
    const om = m[11] === undefined ? 0 : Number(m[11])
    const os = m[12] === undefined ? 0 : Number(m[12])
    if (oh > 23 || om > 59 || os > 59) return undefined
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (oh * 60 + om + os / 60)
  }
  // setUTCFullYear, because Date.UTC maps years 0..99 to 1900..1999
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, second, millis)
  const time = date.getTime() - Math.round(offsetMinutes * 60_000)
  return Number.isNaN(time) ? undefined : new Date(time)
}

const DAY_MS = 86_400_000

// The datetime mark (U+F027) + date.toISOString() for a time of years 0001..9999, several times faster: one flat
// string from char codes (toISOString is slow, and the concatenation makes a rope that
// JSON.stringify has to flatten). The civil date is Howard Hinnant's days_from_civil inverse.
const markedIso = (time: number): string => {
  const days = Math.floor(time / DAY_MS)
  let rest = time - days * DAY_MS
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const doe = z - era * 146_097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1
  const m = mp < 10 ? mp + 3 : mp - 9
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0)
  const ms = rest % 1000
  rest = (rest - ms) / 1000
  const s = rest % 60
  rest = (rest - s) / 60
  const mi = rest % 60
  const h = (rest - mi) / 60
  return String.fromCharCode(
    0xf027, // the datetime mark
    48 + Math.floor(y / 1000),
    48 + (Math.floor(y / 100) % 10),
    48 + (Math.floor(y / 10) % 10),
    48 + (y % 10),
    45,
    48 + Math.floor(m / 10),
    48 + (m % 10),
    45,
    48 + Math.floor(d / 10),
    48 + (d % 10),
    84,
    48 + Math.floor(h / 10),
    48 + (h % 10),
    58,
    48 + Math.floor(mi / 10),
    48 + (mi % 10),
    58,
    48 + Math.floor(s / 10),
    48 + (s % 10),
    46,
    48 + Math.floor(ms / 100),
    48 + (Math.floor(ms / 10) % 10),
    48 + (ms % 10),
    90
  )
}

const bytesToBase64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

const copyBytes = (buffer: Buffer): Uint8Array => new Uint8Array(buffer)

const decodeMarked = (text: string, mark: number): StateValue => {
  if (mark === 0xf027) {
    // the common case first, without slicing off the mark
    const time = commonDatetimeTime(text, 1)
    if (!Number.isNaN(time)) return new Date(time)
  }
  const body = text.slice(1)
  switch (mark) {
    case 0xf026:
    case 0xf02c:
      return parseDecimal(body) ?? text
    case 0xf027:
      return parseDatetime(body) ?? text
    case 0xf028:
      return isCalendarDateText(body) ? new CalendarDate({ iso: body }) : text
    case 0xf029: {
      const value = canonicalUuid(body)
      return value === undefined ? text : new Uuid({ value })
    }
    case 0xf02a:
      // an empty body is empty bytes: dlt writes b"" as the bare mark
      return HEX_TEXT.test(body) ? copyBytes(Buffer.from(body.replace(/^0[xX]/, ""), "hex")) : text
    case 0xf02b:
      return BASE64_TEXT.test(body) ? copyBytes(Buffer.from(body, "base64")) : text
    case 0xf02d:
      return TIME_TEXT.test(body) ? new TimeOfDay({ iso: body }) : text
    default:
      return text
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/

const renderPath = (start: string, segments: ReadonlyArray<string | number>): string => {
  let out = start
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`
    else if (IDENTIFIER.test(segment)) out += out === "" ? segment : `.${segment}`
    else out += `[${JSON.stringify(segment)}]`
  }
  return out
}

const FAIL: unique symbol = Symbol("StateValue/FAIL")
type Fail = typeof FAIL

// Text already written by hand, for the sorted writer: see `sort` below.
class Written {
  constructor(readonly text: string) {}
}

type Encoded = Json | Written

const textOf = (encoded: Encoded): string => (encoded instanceof Written ? encoded.text : JSON.stringify(encoded))

// Python sorts keys by code point; JS compares UTF-16 units, which differs above U+D7FF.
const compareKeys = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000
      }
      return x - y
    }
  }
  return a.length - b.length
}

// Sorts in place by code point. UTF-16 order (the default sort) equals code point order unless a
// key holds a unit at or above U+D800.
const sortKeys = (keys: Array<string>): Array<string> => {
  for (const key of keys) {
    for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) >= 0xd800) return keys.sort(compareKeys)
  }
  return keys.sort()
}

const sortedKeys = (record: { readonly [key: string]: unknown }): Array<string> => sortKeys(Object.keys(record))

// JSON.stringify (every JS object, in fact) lists array-index keys ("0", "10") first, in numeric
// order, whatever the insertion order: an object with one is written by hand when sorted.
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/
const isArrayIndex = (key: string): boolean => ARRAY_INDEX.test(key) && Number(key) < 4294967295

const hasArrayIndex = (keys: ReadonlyArray<string>): boolean => {
  for (const key of keys) {
    const c = key.charCodeAt(0)
    if (c >= 48 && c <= 57 && isArrayIndex(key)) return true
  }
  return false
}

const defineKey = (target: Record<string, unknown>, key: string, value: unknown): void => {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  } else {
    target[key] = value
  }
}

// One mutable context per encode call: the path is a stack of segments rendered only on failure,
// so the common (successful) case allocates nothing for paths.
interface EncodeContext {
  readonly segments: Array<string | number>
  readonly ancestors: Set<object>
  // the Schema guard: validate only (no output is built), and let through marked strings that
  // decoding kept as strings (dlt can write them)
  readonly check: boolean
  // build objects with their keys inserted in sorted order, so that native JSON.stringify (several
  // times faster than any writer of ours) writes them sorted; an object with an array-index key,
  // and its ancestors, come back as Written text instead
  readonly sort: boolean
  reason: string
}

const fail = (ctx: EncodeContext, reason: string): Fail => {
  ctx.reason = reason
  return FAIL
}

const describeInstance = (value: object): string => {
  if (value instanceof Map) return "a Map is not a state value: convert it to a plain object (Object.fromEntries)"
  if (value instanceof Set) return "a Set is not a state value: convert it to an array"
  if (ArrayBuffer.isView(value)) {
    return `a ${value.constructor.name} is not a state value: use a Uint8Array for bytes`
  }
  const name = typeof value.constructor === "function" && value.constructor.name !== "" ? value.constructor.name : ""
  return name === ""
    ? "an object with a custom prototype is not a state value: use a plain object"
    : `a ${name} instance is not a state value: convert it to a plain object or one of the supported types`
}

const encodeArray = (value: ReadonlyArray<unknown>, ctx: EncodeContext): Encoded | Fail => {
  if (ctx.ancestors.has(value)) return fail(ctx, "the array contains itself (a circular reference)")
  ctx.ancestors.add(value)
  const n = value.length
  const out: Array<Encoded> | undefined = ctx.check ? undefined : new Array(n)
  let written = false
  for (let i = 0; i < n; i++) {
    ctx.segments.push(i)
    const item: unknown = value[i]
    if (item === undefined) {
      return fail(ctx, "undefined is not a state value inside an array: use null")
    }
    const encoded = encodeAny(item, ctx)
    if (encoded === FAIL) return FAIL
    ctx.segments.pop()
    if (out !== undefined) {
      out[i] = encoded
      if (ctx.sort && encoded instanceof Written) written = true
    }
  }
  ctx.ancestors.delete(value)
  if (out === undefined) return null
  return written ? new Written(`[${out.map(textOf).join(",")}]`) : (out as Array<Json>)
}

const encodeRecord = (value: object, ctx: EncodeContext): Encoded | Fail => {
  if (ctx.ancestors.has(value)) return fail(ctx, "the object contains itself (a circular reference)")
  ctx.ancestors.add(value)
  const record = value as Record<string, unknown>
  const keys = ctx.sort ? sortedKeys(record) : Object.keys(record)
  const out: Record<string, Encoded> | undefined = ctx.check ? undefined : {}
  let written = false
  for (const key of keys) {
    ctx.segments.push(key)
    const item = record[key]
    if (item === undefined) {
      ctx.segments.pop()
      continue
    }
    const encoded = encodeAny(item, ctx)
    if (encoded === FAIL) return FAIL
    ctx.segments.pop()
    if (out === undefined) continue
    defineKey(out, key, encoded)
    if (ctx.sort && encoded instanceof Written) written = true
  }
  ctx.ancestors.delete(value)
  if (out === undefined) return null
  if (ctx.sort && (written || hasArrayIndex(keys))) {
    const parts: Array<string> = []
    for (const key of keys) {
      if (Object.hasOwn(out, key)) parts.push(`${JSON.stringify(key)}:${textOf(out[key]!)}`)
    }
    return new Written(`{${parts.join(",")}}`)
  }
  return out as Record<string, Json>
}

const encodeObject = (value: object, ctx: EncodeContext): Encoded | Fail => {
  if (Array.isArray(value)) return encodeArray(value, ctx)
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) return encodeRecord(value, ctx)
  if (value instanceof Date) {
    const time = value.getTime()
    if (Number.isNaN(time)) return fail(ctx, "the Date is invalid")
    if (!isStorableTime(time)) {
      const year = value.getUTCFullYear()
      return fail(ctx, `the Date is in year ${year}: only years 0001..9999 can be stored (dlt reads no others)`)
    }
    return ctx.check ? null : markedIso(time)
  }
  if (BigDecimal.isBigDecimal(value)) return ctx.check ? null : DECIMAL + formatDecimal(value)
  if (value instanceof Uint8Array) return ctx.check ? null : B64BYTES + bytesToBase64(value)
  if (value instanceof Uuid) {
    const text = canonicalUuid(value.value)
    return text === undefined
      ? fail(ctx, `${JSON.stringify(value.value)} is not a UUID: build it with makeUuid`)
      : UUID + text
  }
  if (value instanceof CalendarDate) {
    return isCalendarDateText(value.iso)
      ? DATE + value.iso
      : fail(ctx, `${JSON.stringify(value.iso)} is not a date: build it with makeCalendarDate`)
  }
  if (value instanceof TimeOfDay) {
    return TIME_TEXT.test(value.iso)
      ? TIME + value.iso
      : fail(ctx, `${JSON.stringify(value.iso)} is not a time of day: build it with makeTimeOfDay`)
  }
  return fail(ctx, describeInstance(value))
}

const encodeAny = (value: unknown, ctx: EncodeContext): Encoded | Fail => {
  switch (typeof value) {
    case "string": {
      const c = value.charCodeAt(0)
      if (c >= FIRST_MARK && c <= LAST_MARK && !ctx.check) {
        return fail(
          ctx,
          `the string starts with the private-use character U+${c.toString(16).toUpperCase()}, which typed JSON ` +
            "reserves to mark special values, so it would be read back as something else: remove that character"
        )
      }
      return value
    }
    case "number":
      return Number.isFinite(value)
        ? value
        : fail(ctx, `the number ${value} is not finite: JSON has no NaN or Infinity`)
    case "boolean":
      return value
    case "object":
      return value === null ? null : encodeObject(value, ctx)
    case "undefined":
      return fail(ctx, "undefined is not a state value: use null")
    case "bigint":
      return fail(ctx, "a bigint is not a state value: use BigDecimal (BigDecimal.fromBigInt) or a string")
    case "function":
      return fail(ctx, "a function is not a state value")
    case "symbol":
      return fail(ctx, "a symbol is not a state value")
  }
}

// Written only comes out of sorted encoding; this keeps the types honest for the others.
const asJson = (encoded: Encoded): Json => (encoded instanceof Written ? (JSON.parse(encoded.text) as Json) : encoded)

/**
 * The typed JSON of a state value, in one pass. Fails with the path of the first value that cannot
 * be stored; `path` is the path of `value` itself (it prefixes the path in the error).
 *
 * @example
 * ```ts
 * encode({ since: new Date(0) }) // Right({ since: "\uF0271970-01-01T00:00:00.000Z" })
 * encode({ n: 1n }, "sources.s") // Left(NonSerializableStateValue { path: "sources.s.n" })
 * ```
 *
 * @since 0.1.0
 */
export const encode = (value: unknown, path = ""): Either.Either<Json, NonSerializableStateValue> =>
  Either.map(encodeWith(value, path, false, false), asJson)

// in check mode the Right value is a placeholder: only success or the error counts
const encodeWith = (
  value: unknown,
  path: string,
  check: boolean,
  sort: boolean
): Either.Either<Encoded, NonSerializableStateValue> => {
  const ctx: EncodeContext = { segments: [], ancestors: new Set(), check, sort, reason: "" }
  try {
    const encoded = encodeAny(value, ctx)
    return encoded === FAIL
      ? Either.left(new NonSerializableStateValue({ path: renderPath(path, ctx.segments), reason: ctx.reason }))
      : Either.right(encoded)
  } catch (error) {
    // a throwing getter or proxy, or nesting deeper than the stack
    const reason =
      error instanceof RangeError
        ? "the value is nested too deeply"
        : `reading it threw: ${error instanceof Error ? error.message : String(error)}`
    return Either.left(new NonSerializableStateValue({ path: renderPath(path, ctx.segments), reason }))
  }
}

/**
 * Compact typed JSON text of a state value with the keys of every object sorted by code point
 * (Python's `sort_keys=True`): what the version hash is computed over. The same as
 * `stringify(value, { sortKeys: true, path })`, in one pass over the value.
 *
 * @example
 * ```ts
 * stringifySorted({ b: 1, a: new Date(0) }) // Right('{"a":"\uF0271970-01-01T00:00:00.000Z","b":1}')
 * ```
 *
 * @since 0.1.0
 */
export const stringifySorted = (value: unknown, path = ""): Either.Either<string, NonSerializableStateValue> => {
  const sorted = encodeWith(value, path, false, true)
  // the error names the first bad value in document order, as encode does, not in sorted order
  return Either.isRight(sorted)
    ? Either.right(textOf(sorted.right))
    : Either.map(encode(value, path), (json) => formatJson(json, { sortKeys: true }))
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

const decodeAny = (json: unknown): StateValue => {
  if (typeof json === "string") {
    const c = json.charCodeAt(0)
    return c >= FIRST_MARK && c <= LAST_MARK ? decodeMarked(json, c) : json
  }
  if (typeof json !== "object" || json === null) return json as StateValue
  if (Array.isArray(json)) {
    const n = json.length
    const out: Array<StateValue> = new Array(n)
    for (let i = 0; i < n; i++) out[i] = decodeAny(json[i])
    return out
  }
  const record = json as Record<string, unknown>
  const out: Record<string, StateValue> = {}
  for (const key of Object.keys(record)) {
    const item = decodeAny(record[key])
    if (key === "__proto__") {
      Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true })
    } else {
      out[key] = item
    }
  }
  return out
}

// How deep the in-place decoder goes; deeper documents are left to the Schema path, which decides
// by the stack.
const MAX_IN_PLACE_DEPTH = 1000

// The in-place decoder's state. `latin1`: the JSON text was UTF-8 bytes read as Latin-1, one char
// per byte, so a mark appears as the three chars of its UTF-8 bytes (EF 80 A6..AD); `marks` counts
// the marked strings met, for the caller to check that they account for every non-ASCII byte.
interface InPlace {
  readonly latin1: boolean
  marks: number
}

// the mark a string starts with, or 0
const markOf = (text: string, latin1: boolean): number => {
  if (!latin1) {
    const c = text.charCodeAt(0)
    return c >= FIRST_MARK && c <= LAST_MARK ? c : 0
  }
  if (text.charCodeAt(0) !== 0xef || text.charCodeAt(1) !== 0x80) return 0
  const c = text.charCodeAt(2)
  return c >= 0xa6 && c <= 0xad ? 0xf000 + c - 0x80 : 0
}

// The value of a string leaf: the string itself, its decoded value, or FAIL where StateValueSchema
// refuses the value (a datetime whose offset moves it out of years 0001..9999).
const decodeLeaf = (text: string, ctx: InPlace): StateValue | Fail => {
  const mark = markOf(text, ctx.latin1)
  if (mark === 0) return text
  ctx.marks++
  if (mark === 0xf027) {
    const time = commonDatetimeTime(text, ctx.latin1 ? 3 : 1)
    if (!Number.isNaN(time)) return isStorableTime(time) ? new Date(time) : FAIL
  }
  const value = decodeMarked(ctx.latin1 ? String.fromCharCode(mark) + text.slice(3) : text, mark)
  return value instanceof Date && !isStorableTime(value.getTime()) ? FAIL : value
}

const decodeNodeInPlace = (node: object, depth: number, ctx: InPlace): boolean => {
  if (depth > MAX_IN_PLACE_DEPTH) return false
  if (Array.isArray(node)) {
    const items = node as Array<unknown>
    const n = items.length
    for (let i = 0; i < n; i++) {
      const item = items[i]
      if (typeof item === "string") {
        const decoded = decodeLeaf(item, ctx)
        if (decoded === FAIL) return false
        if (decoded !== item) items[i] = decoded
      } else if (typeof item === "object") {
        if (item !== null && !decodeNodeInPlace(item, depth + 1, ctx)) return false
      } else if (typeof item === "number" && !Number.isFinite(item)) {
        return false
      }
    }
    return true
  }
  const record = node as Record<string, unknown>
  for (const key of Object.keys(record)) {
    const item = record[key]
    if (typeof item === "string") {
      const decoded = decodeLeaf(item, ctx)
      if (decoded === FAIL) return false
      if (decoded !== item) defineKey(record, key, decoded)
    } else if (typeof item === "object") {
      if (item !== null && !decodeNodeInPlace(item, depth + 1, ctx)) return false
    } else if (typeof item === "number" && !Number.isFinite(item)) {
      return false
    }
  }
  return true
}

const decodeInPlaceWith = (json: Json, ctx: InPlace): StateValue | undefined => {
  switch (typeof json) {
    case "string": {
      const decoded = decodeLeaf(json, ctx)
      return decoded === FAIL ? undefined : decoded
    }
    case "number":
      return Number.isFinite(json) ? json : undefined
    case "object":
      if (json === null) return null
      try {
        return decodeNodeInPlace(json, 0, ctx) ? (json as StateValue) : undefined
      } catch {
        // a stack too small even for the depth limit
        return undefined
      }
    default:
      return json
  }
}

/**
 * {@link decode} for JSON that `JSON.parse` has just returned and that nothing else holds: the
 * marked strings are replaced in the tree itself, which is returned, with no copy. The result
 * equals what `decode` returns for the same JSON.
 *
 * Returns `undefined` where {@link StateValueSchema} would refuse the result (a number beyond the
 * double range, which `JSON.parse` reads as Infinity; a datetime whose offset moves it out of years
 * 0001..9999) or the JSON nests more than 1000 levels deep. The tree is then partly decoded: drop
 * it (parse the text again for the checked path).
 *
 * @example
 * ```ts
 * const tree = JSON.parse(text) as Json
 * decodeParsedInPlace(tree) // the same tree, marked strings decoded
 * ```
 *
 * @since 0.1.0
 */
export const decodeParsedInPlace = (json: Json): StateValue | undefined =>
  decodeInPlaceWith(json, { latin1: false, marks: 0 })

/**
 * {@link decodeParsedInPlace} for JSON parsed from UTF-8 bytes read as Latin-1 text (one char per
 * byte: much faster to make and to parse than the UTF-8 decoding), where a mark appears as the
 * three chars of its UTF-8 bytes. Marked strings are decoded as if read from UTF-8; `marks` is how
 * many strings started with a mark.
 *
 * The result is right only for a text without backslashes (no escapes) where every non-ASCII byte
 * belongs to a mark that starts a string of the tree: check that `3 * marks` is the number of
 * non-ASCII bytes in the text (see `PipelineState.fromUtf8BytesFast`). Every other string is taken
 * as it is.
 *
 * @since 0.1.0
 */
export const decodeLatin1ParsedInPlace = (
  json: Json
): { readonly value: StateValue; readonly marks: number } | undefined => {
  const ctx: InPlace = { latin1: true, marks: 0 }
  const value = decodeInPlaceWith(json, ctx)
  return value === undefined ? undefined : { value, marks: ctx.marks }
}

/**
 * The state value of typed JSON. Never fails: a marked string that does not decode stays a string.
 *
 * @example
 * ```ts
 * decode("\uF0261.50") // BigDecimal 1.50
 * decode({ at: "\uF0272024-01-01T00:00:00+00:00" }) // { at: Date }
 * ```
 *
 * @since 0.1.0
 */
export const decode = (json: Json): StateValue => decodeAny(json)

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

// JSON.stringify orders integer-like keys first whatever the insertion order, so sorted output
// needs its own writer. The layout matches JSON.stringify's (and orjson's) exactly.
const writeSorted = (json: Json, indent: string, step: string): string => {
  if (json === null || typeof json !== "object") return JSON.stringify(json)
  const inner = indent + step
  const open = step === "" ? "" : `\n${inner}`
  const close = step === "" ? "" : `\n${indent}`
  const sep = step === "" ? "," : `,\n${inner}`
  if (Array.isArray(json)) {
    if (json.length === 0) return "[]"
    const parts = (json as ReadonlyArray<Json>).map((item) => writeSorted(item, inner, step))
    return `[${open}${parts.join(sep)}${close}]`
  }
  const record = json as { readonly [key: string]: Json }
  const keys = sortedKeys(record).filter((key) => record[key] !== undefined)
  if (keys.length === 0) return "{}"
  const colon = step === "" ? ":" : ": "
  const parts = keys.map((key) => JSON.stringify(key) + colon + writeSorted(record[key]!, inner, step))
  return `{${open}${parts.join(sep)}${close}}`
}

// Sorted compact text of JSON that is already typed: each subtree is rebuilt with sorted keys and
// handed to JSON.stringify; objects with array-index keys, and their ancestors, are written by hand.
const prepareSorted = (json: Json | undefined): Json | Written => {
  if (json === null || typeof json !== "object") return json === undefined ? null : json
  if (Array.isArray(json)) {
    const items = (json as ReadonlyArray<Json>).map(prepareSorted)
    return items.some((item) => item instanceof Written)
      ? new Written(`[${items.map(textOf).join(",")}]`)
      : (items as Array<Json>)
  }
  const record = json as { readonly [key: string]: Json }
  const keys = sortedKeys(record).filter((key) => record[key] !== undefined)
  const values = keys.map((key) => prepareSorted(record[key]))
  if (keys.some(isArrayIndex) || values.some((value) => value instanceof Written)) {
    return new Written(`{${keys.map((key, i) => `${JSON.stringify(key)}:${textOf(values[i]!)}`).join(",")}}`)
  }
  const out: Record<string, Json> = {}
  for (let i = 0; i < keys.length; i++) defineKey(out, keys[i]!, values[i])
  return out
}

const writeCompactSorted = (json: Json): string => textOf(prepareSorted(json))

const clampSpace = (space: number | undefined): number => Math.min(10, Math.max(0, Math.floor(space ?? 0)))

/**
 * JSON text of plain JSON (no typed encoding: marked strings are written as they are), with the
 * same options as {@link stringify}. Used to hash documents that are already typed JSON.
 *
 * @example
 * ```ts
 * formatJson({ b: 1, a: 2 }, { sortKeys: true }) // '{"a":2,"b":1}'
 * ```
 *
 * @since 0.1.0
 */
export const formatJson = (json: Json, options?: { readonly sortKeys?: boolean; readonly space?: number }): string => {
  const space = clampSpace(options?.space)
  if (options?.sortKeys !== true) return JSON.stringify(json, null, space)
  return space === 0 ? writeCompactSorted(json) : writeSorted(json, "", " ".repeat(space))
}

/**
 * Typed JSON text of a state value: compact unless `space` is given; `sortKeys` sorts object keys
 * by code point at every level, as Python's `sort_keys=True`.
 *
 * @example
 * ```ts
 * stringify({ b: 1, a: BigDecimal.unsafeFromString("1.50") }, { sortKeys: true })
 * // Right('{"a":"\uF0261.50","b":1}')
 * ```
 *
 * @since 0.1.0
 */
export const stringify = (
  value: unknown,
  options?: { readonly sortKeys?: boolean; readonly path?: string; readonly space?: number }
): Either.Either<string, NonSerializableStateValue> =>
  options?.sortKeys === true && clampSpace(options.space) === 0
    ? stringifySorted(value, options.path)
    : Either.map(encode(value, options?.path), (json) => formatJson(json, options))

/**
 * The state value of typed JSON text.
 *
 * @example
 * ```ts
 * parse('{"n":"\uF0261.5"}') // Right({ n: BigDecimal 1.5 })
 * ```
 *
 * @since 0.1.0
 */
export const parse = (text: string): Either.Either<StateValue, InvalidTypedJson> =>
  Either.map(
    Either.try({
      try: () => JSON.parse(text) as Json,
      catch: (error) => new InvalidTypedJson({ reason: error instanceof Error ? error.message : String(error) })
    }),
    decode
  )

// ---------------------------------------------------------------------------------------------
// Guards, equality, Schema
// ---------------------------------------------------------------------------------------------

const isJsonWith = (value: unknown, ancestors: Set<object>): boolean => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(value)
    case "object": {
      if (value === null) return true
      if (ancestors.has(value)) return false
      if (Array.isArray(value)) {
        ancestors.add(value)
        for (const item of value) if (!isJsonWith(item, ancestors)) return false
        ancestors.delete(value)
        return true
      }
      const proto: unknown = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return false
      ancestors.add(value)
      const record = value as Record<string, unknown>
      for (const key of Object.keys(record)) if (!isJsonWith(record[key], ancestors)) return false
      ancestors.delete(value)
      return true
    }
    default:
      return false
  }
}

/**
 * Whether a value is plain JSON (finite numbers, plain objects, no cycles).
 *
 * @since 0.1.0
 */
export const isJson = (value: unknown): value is Json => {
  try {
    return isJsonWith(value, new Set())
  } catch {
    return false
  }
}

/**
 * Whether a value can be kept in state (exactly when {@link encode} succeeds).
 *
 * @since 0.1.0
 */
export const isStateValue = (value: unknown): value is StateValue => Either.isRight(encode(value))

// What decode can return: a state value, where a marked string that did not decode may remain.
const isDecodedStateValue = (value: unknown): value is StateValue => Either.isRight(encodeWith(value, "", true, false))

const isPlainObject = (value: object): boolean => {
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const definedKeys = (record: Record<string, unknown>): Array<string> =>
  Object.keys(record).filter((key) => record[key] !== undefined)

/**
 * Deep structural equality of state values: Dates by time, BigDecimals by value (`1.50` equals
 * `1.5`), bytes by content, Uuid/CalendarDate/TimeOfDay by text, objects by their defined keys.
 *
 * @example
 * ```ts
 * equals({ d: new Date(0) }, { d: new Date(0) }) // true
 * ```
 *
 * @since 0.1.0
 */
export const equals = (a: StateValue, b: StateValue): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    const bs = b as ReadonlyArray<StateValue>
    return (a as ReadonlyArray<StateValue>).every((item, i) => equals(item, bs[i]!))
  }
  if (Array.isArray(b)) return false
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime()
  if (BigDecimal.isBigDecimal(a)) return BigDecimal.isBigDecimal(b) && BigDecimal.equals(a, b)
  if (a instanceof Uint8Array) {
    return b instanceof Uint8Array && a.length === b.length && a.every((byte, i) => byte === b[i])
  }
  if (a instanceof Uuid) return b instanceof Uuid && canonicalUuid(a.value) === canonicalUuid(b.value)
  if (a instanceof CalendarDate) return b instanceof CalendarDate && a.iso === b.iso
  if (a instanceof TimeOfDay) return b instanceof TimeOfDay && a.iso === b.iso
  if (!isPlainObject(a) || !isPlainObject(b)) return false
  const ra = a as Record<string, StateValue>
  const rb = b as Record<string, StateValue>
  const keys = definedKeys(ra)
  if (keys.length !== definedKeys(rb).length) return false
  return keys.every((key) => Object.hasOwn(rb, key) && rb[key] !== undefined && equals(ra[key]!, rb[key]!))
}

/**
 * Plain JSON as a Schema (checks finiteness, plain objects and cycles).
 *
 * @since 0.1.0
 */
export const JsonSchema: Schema.Schema<Json> = Schema.declare(isJson, {
  identifier: "Json",
  description: "a JSON value"
})

/**
 * The state values as a Schema; a failure message names the path and reason. It also accepts what
 * {@link decode} can return: a marked string whose body did not decode (dlt may have written it);
 * {@link encode} still refuses such a string.
 *
 * @since 0.1.0
 */
export const StateValueSchema: Schema.Schema<StateValue> = Schema.declare(isDecodedStateValue, {
  identifier: "StateValue",
  description: "a value that can be kept in pipeline state",
  message: (issue) =>
    Either.match(encodeWith(issue.actual, "", true, false), {
      onLeft: (error) => error.message,
      onRight: () => "Expected a state value"
    })
})

/**
 * A Schema codec between typed JSON and state values, for use inside other Schemas.
 *
 * @example
 * ```ts
 * const Slot = Schema.Record({ key: Schema.String, value: StateValueFromJson })
 * Schema.decodeUnknownSync(Slot)({ at: "\uF0272024-01-01T00:00:00Z" }) // { at: Date }
 * ```
 *
 * @since 0.1.0
 */
export const StateValueFromJson: Schema.Schema<StateValue, Json> = Schema.transformOrFail(
  JsonSchema,
  StateValueSchema,
  {
    strict: true,
    decode: (json) => ParseResult.succeed(decode(json)),
    encode: (value, _, ast) =>
      Either.match(encode(value), {
        onLeft: (error) => ParseResult.fail(new ParseResult.Type(ast, value, error.message)),
        onRight: (json) => ParseResult.succeed(json)
      })
  }
)
