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
const DATETIME = "\uF027"
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

// what toISOString writes for years 0001..9999, the form we read most
const CANONICAL_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

const parseDatetime = (text: string): Date | undefined => {
  if (CANONICAL_DATETIME.test(text) && !text.startsWith("0000")) {
    const date = new Date(text)
    // Date rolls 2024-02-30 over to March and accepts hour 24: reject what it changed
    return date.getUTCDate() === Number(text.slice(8, 10)) && date.getUTCHours() === Number(text.slice(11, 13))
      ? date
      : undefined
  }
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

const bytesToBase64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

const copyBytes = (buffer: Buffer): Uint8Array => new Uint8Array(buffer)

const decodeMarked = (text: string, mark: number): StateValue => {
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

// One mutable context per encode call: the path is a stack of segments rendered only on failure,
// so the common (successful) case allocates nothing for paths.
interface EncodeContext {
  readonly segments: Array<string | number>
  readonly ancestors: Set<object>
  // the Schema guard: validate only (no output is built), and let through marked strings that
  // decoding kept as strings (dlt can write them)
  readonly check: boolean
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

const encodeObject = (value: object, ctx: EncodeContext): Json | Fail => {
  if (Array.isArray(value)) {
    if (ctx.ancestors.has(value)) return fail(ctx, "the array contains itself (a circular reference)")
    ctx.ancestors.add(value)
    const n = value.length
    const out: Array<Json> | undefined = ctx.check ? undefined : new Array(n)
    for (let i = 0; i < n; i++) {
      ctx.segments.push(i)
      const item: unknown = value[i]
      if (item === undefined) {
        return fail(ctx, "undefined is not a state value inside an array: use null")
      }
      const encoded = encodeAny(item, ctx)
      if (encoded === FAIL) return FAIL
      ctx.segments.pop()
      if (out !== undefined) out[i] = encoded
    }
    ctx.ancestors.delete(value)
    return out ?? null
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) {
    if (ctx.ancestors.has(value)) return fail(ctx, "the object contains itself (a circular reference)")
    ctx.ancestors.add(value)
    const record = value as Record<string, unknown>
    const out: Record<string, Json> | undefined = ctx.check ? undefined : {}
    for (const key of Object.keys(record)) {
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
      if (key === "__proto__") {
        Object.defineProperty(out, key, { value: encoded, enumerable: true, writable: true, configurable: true })
      } else {
        out[key] = encoded
      }
    }
    ctx.ancestors.delete(value)
    return out ?? null
  }
  if (value instanceof Date) {
    const time = value.getTime()
    if (Number.isNaN(time)) return fail(ctx, "the Date is invalid")
    const year = value.getUTCFullYear()
    if (year < 1 || year > 9999) {
      return fail(ctx, `the Date is in year ${year}: only years 0001..9999 can be stored (dlt reads no others)`)
    }
    return ctx.check ? null : DATETIME + value.toISOString()
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

const encodeAny = (value: unknown, ctx: EncodeContext): Json | Fail => {
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
  encodeWith(value, path, false)

// in check mode the Right value is a placeholder: only success or the error counts
const encodeWith = (value: unknown, path: string, check: boolean): Either.Either<Json, NonSerializableStateValue> => {
  const ctx: EncodeContext = { segments: [], ancestors: new Set(), check, reason: "" }
  try {
    const json = encodeAny(value, ctx)
    return json === FAIL
      ? Either.left(new NonSerializableStateValue({ path: renderPath(path, ctx.segments), reason: ctx.reason }))
      : Either.right(json)
  } catch (error) {
    // a throwing getter or proxy, or nesting deeper than the stack
    const reason =
      error instanceof RangeError
        ? "the value is nested too deeply"
        : `reading it threw: ${error instanceof Error ? error.message : String(error)}`
    return Either.left(new NonSerializableStateValue({ path: renderPath(path, ctx.segments), reason }))
  }
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

const HIGH_UNITS = /[\uD800-\uFFFF]/

// UTF-16 order equals code point order unless a key holds a unit at or above U+D800
const sortedKeys = (record: { readonly [key: string]: unknown }): Array<string> => {
  const keys = Object.keys(record)
  return keys.some((key) => HIGH_UNITS.test(key)) ? keys.sort(compareKeys) : keys.sort()
}

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

// The hot case (the version hash of every commit): compact and sorted. Native JSON.stringify is
// several times faster than any writer of ours, so each subtree is rebuilt with sorted keys and
// handed to it; only objects with array-index keys ("0", "10"), which every JS object lists first
// in numeric order, and their ancestors are written by hand.
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,9})$/
const isArrayIndex = (key: string): boolean => ARRAY_INDEX.test(key) && Number(key) < 4294967295

class Written {
  constructor(readonly text: string) {}
}

const defineKey = (target: Record<string, unknown>, key: string, value: unknown): void => {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  } else {
    target[key] = value
  }
}

const textOf = (prepared: Json | Written): string =>
  prepared instanceof Written ? prepared.text : JSON.stringify(prepared)

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
  const space = Math.min(10, Math.max(0, Math.floor(options?.space ?? 0)))
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
  Either.map(encode(value, options?.path), (json) => formatJson(json, options))

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
const isDecodedStateValue = (value: unknown): value is StateValue => Either.isRight(encodeWith(value, "", true))

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
    Either.match(encodeWith(issue.actual, "", true), {
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
