/**
 * The values users keep in pipeline state, and their JSON form: dlt's "typed JSON", exact to the
 * character.
 *
 * Plain JSON cannot tell a timestamp from a string, so dlt marks special values with one Private Use
 * Area character in front of their text form. We read and write the same marks, spelled as dlt
 * (orjson 3.8, Python 3.11) spells them, so that a state written by pipestate reads in dlt as the
 * same Python values and a state written by dlt comes back from pipestate as the same text:
 *
 * | mark   | Python value         | text after the mark        | JS value (decoded)              |
 * | ------ | -------------------- | -------------------------- | ------------------------------- |
 * | U+F026 | `Decimal`            | `str(Decimal)`             | `BigDecimal` / `SpecialDecimal` |
 * | U+F027 | `datetime`           | `isoformat()`              | {@link Timestamp}               |
 * | U+F028 | `date`               | `isoformat()`              | {@link CalendarDate}            |
 * | U+F029 | `UUID` (read only)   | its text                   | {@link Uuid}                    |
 * | U+F02A | `HexBytes`           | `0x` + lowercase hex       | {@link HexBytes}                |
 * | U+F02B | `bytes`              | standard base64            | `Uint8Array`                    |
 * | U+F02D | `time`               | `isoformat()`              | {@link TimeOfDay}               |
 *
 * Numbers keep what Python sees: an integer token is an `int` (a JS `number` when safe, else a
 * `bigint`), a token with a fraction or exponent is a `float` (a JS `number`, or a {@link Float}
 * when its value is a whole number JS would write as an int). A UUID is written as a plain string,
 * as orjson does. A marked string that is not a valid typed value stays that string, and is
 * written back unchanged.
 *
 * @since 0.1.0
 */
import { BigDecimal, Data, Either, ParseResult, Schema } from "effect"

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/**
 * A UUID; `value` is the canonical lowercase text (`8-4-4-4-12` hex digits). Build one with
 * {@link makeUuid}, which accepts any case, braces and a `urn:uuid:` prefix. It is stored as a
 * plain string (as orjson, dlt's JSON library, writes a `uuid.UUID`), so it reads back as that
 * string: decode it with {@link UuidSchema} in a typed key.
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
 * A time of day (Python's `time`), as ISO text such as `12:30:00`, `12:30:00.500000` or
 * `12:30:00+02:00`. It is written as Python's `time.isoformat()`: seconds always, six fraction
 * digits when there is a fraction; {@link makeTimeOfDay} gives that form.
 *
 * @example
 * ```ts
 * Either.getOrThrow(makeTimeOfDay("12:30:00.5")).iso // "12:30:00.500000"
 * ```
 *
 * @since 0.1.0
 */
export class TimeOfDay extends Data.TaggedClass("TimeOfDay")<{ readonly iso: string }> {}

/**
 * A Python `float` whose value is a whole number (`1.0`, `1e15`): a JS `number` cannot tell it from
 * an `int`, so a state that dlt wrote with `1.0` decodes to `Float(1)` and is written back as
 * `1.0`. Other floats decode to plain numbers. Wrap a whole number in a `Float` to store it as a
 * float.
 *
 * @example
 * ```ts
 * stringify({ ratio: new Float(1) }) // Right('{"ratio":1.0}')
 * ```
 *
 * @since 0.1.0
 */
export class Float {
  /** @since 0.1.0 */
  readonly _tag = "Float"
  constructor(readonly value: number) {}
  /** @since 0.1.0 */
  toJSON(): number {
    return this.value
  }
}

/**
 * A Python `Decimal` that `BigDecimal` cannot hold: `NaN`, `sNaN`, `Infinity`, `-Infinity` and
 * negative zeros (`-0`, `-0.00`, `-0E+3`). `text` is its `str()`; it is stored as that text.
 *
 * @since 0.1.0
 */
export class SpecialDecimal extends Data.TaggedClass("SpecialDecimal")<{ readonly text: string }> {}

/**
 * Bytes that dlt writes as hex (its `HexBytes`, U+F02A `0x…`): a `Uint8Array` that keeps that
 * spelling. Every `Uint8Array` method works on it.
 *
 * @since 0.1.0
 */
export class HexBytes extends Uint8Array {}

/**
 * A datetime with microseconds and the UTC offset it was written with, or a naive one (Python's
 * `datetime` with and without `tzinfo`). dlt's `2024-02-29T12:34:56.789123+05:30` is
 * `{ epochSecond, microsecond: 789123, offsetSeconds: 19800 }` and is written back as that text.
 *
 * - `epochSecond`: whole seconds since 1970-01-01T00:00:00Z of the instant; for a naive value, of
 *   its wall time read as UTC
 * - `microsecond`: 0..999,999
 * - `offsetSeconds`: the offset east of UTC in seconds (-86,399..86,399), `null` when naive
 *
 * A JS `Date` is accepted wherever a state value is, as a UTC timestamp (`+00:00`).
 *
 * @example
 * ```ts
 * const t = Either.getOrThrow(Timestamp.parse("2024-01-01T10:20:30.123456+00:00"))
 * t.microsecond // 123456
 * t.toString() // "2024-01-01T10:20:30.123456+00:00"
 * Timestamp.fromDate(new Date(0)).toString() // "1970-01-01T00:00:00+00:00"
 * ```
 *
 * @since 0.1.0
 */
export class Timestamp {
  constructor(
    readonly epochSecond: number,
    readonly microsecond: number,
    readonly offsetSeconds: number | null
  ) {}

  /** @since 0.1.0 */
  get _tag(): "Timestamp" {
    return "Timestamp"
  }

  /** Whether it has no offset (a wall time). @since 0.1.0 */
  get isNaive(): boolean {
    return this.offsetSeconds === null
  }

  /** Microseconds since the epoch of the instant (a naive value read as UTC). @since 0.1.0 */
  get epochMicros(): bigint {
    return BigInt(this.epochSecond) * 1_000_000n + BigInt(this.microsecond)
  }

  /**
   * The instant as a `Date` (a naive value read as UTC). A `Date` holds milliseconds: the
   * microseconds below them are dropped.
   *
   * @since 0.1.0
   */
  toDate(): Date {
    return new Date(this.epochSecond * 1000 + Math.floor(this.microsecond / 1000))
  }

  /** Python's `isoformat()`, as stored. @since 0.1.0 */
  toString(): string {
    return formatTimestamp(this, "T")
  }

  /** @since 0.1.0 */
  toJSON(): string {
    return formatTimestamp(this, "T")
  }

  /** The same as `toString()`: Python's `isoformat()`, with the offset (naive: none). @since 0.1.0 */
  toISOString(): string {
    return formatTimestamp(this, "T")
  }

  /** The same instant at another offset (`null`: naive UTC wall time). @since 0.1.0 */
  withOffset(offsetSeconds: number | null): Timestamp {
    return new Timestamp(this.epochSecond, this.microsecond, offsetSeconds)
  }

  /**
   * A UTC timestamp (`+00:00`) of a valid `Date`, with its milliseconds as microseconds.
   *
   * @since 0.1.0
   */
  static fromDate(date: Date): Timestamp {
    const time = date.getTime()
    const ms = ((time % 1000) + 1000) % 1000
    return new Timestamp((time - ms) / 1000, ms * 1000, 0)
  }

  /**
   * A timestamp from microseconds since the epoch.
   *
   * @since 0.1.0
   */
  static fromEpochMicros(micros: bigint, offsetSeconds: number | null = 0): Timestamp {
    let seconds = micros / 1_000_000n
    let rest = micros % 1_000_000n
    if (rest < 0n) {
      rest += 1_000_000n
      seconds -= 1n
    }
    return new Timestamp(Number(seconds), Number(rest), offsetSeconds)
  }

  /**
   * Reads ISO 8601 text as Python 3.11's `datetime.fromisoformat` (after dlt's `Z` handling) does:
   * `YYYY-MM-DD`, `T` or space, `HH:MM[:SS[.f]]` (1..6 fraction digits), then nothing (naive),
   * `Z`, or an offset `±HH[:MM[:SS]]`.
   *
   * @since 0.1.0
   */
  static parse(text: string): Either.Either<Timestamp, InvalidStateValue> {
    const value = parseDatetimeText(text, 0)
    return value === undefined
      ? Either.left(
          new InvalidStateValue({
            kind: "datetime",
            input: text,
            reason: "expected YYYY-MM-DDTHH:MM[:SS[.ffffff]] and an optional offset (Z, +HH:MM) in years 0001..9999"
          })
        )
      : Either.right(value)
  }

  /**
   * Orders by instant (a naive value read as UTC); a negative number when `a` is earlier.
   *
   * @since 0.1.0
   */
  static compare(a: Timestamp, b: Timestamp): number {
    return a.epochSecond !== b.epochSecond ? a.epochSecond - b.epochSecond : a.microsecond - b.microsecond
  }
}

/**
 * A value that can be kept in pipeline state. `Date` and `Uuid` are accepted as input; they read
 * back as {@link Timestamp} and as a plain string. A `bigint` reads back as a `number` when it is a
 * safe integer.
 *
 * @since 0.1.0
 */
export type StateValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Float
  | Date
  | Timestamp
  | BigDecimal.BigDecimal
  | SpecialDecimal
  | Uint8Array
  | Uuid
  | CalendarDate
  | TimeOfDay
  | ReadonlyArray<StateValue>
  | { readonly [key: string]: StateValue }

/**
 * JSON as dlt reads it: an integer token beyond the safe range is a `bigint`, a float token with a
 * whole value a {@link Float}. Objects may carry the order of their keys (see {@link record}).
 *
 * @since 0.1.0
 */
export type Json =
  | null
  | boolean
  | number
  | bigint
  | Float
  | string
  | ReadonlyArray<Json>
  | { readonly [key: string]: Json }

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
      "State holds JSON values (null, boolean, finite number, bigint within 64 bits, string, arrays, plain objects) " +
      "and Date, Timestamp, Float, BigDecimal, Uint8Array, Uuid, CalendarDate and TimeOfDay: convert the value to one of these."
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
const HEXBYTES = "\uF02A"
const B64BYTES = "\uF02B"
const TIME = "\uF02D"
const FIRST_MARK = 0xf026
const LAST_MARK = 0xf02d

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const HEX32 = /^[0-9a-fA-F]{32}$/
const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/
const DATETIME_TEXT =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)?)?$/
const TIME_TEXT =
  /^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d{1,6}))?)?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2})(?::?(\d{2}))?)?)?$/
const DECIMAL_TEXT = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/
const SPECIAL_DECIMAL = /^-?(?:Infinity|s?NaN(?:[1-9]\d*)?)$/
const HEX_BODY = /^0x(?:[0-9a-f]{2})*$/

const isLeapYear = (year: number): boolean => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)

const daysInMonth = (year: number, month: number): number => {
  if (month === 2) return isLeapYear(year) ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

const validYmd = (y: number, m: number, d: number): boolean =>
  y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m)

// Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date
const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146_097 + doe - 719_468
}

// wall seconds of years 0001..9999 (Python's datetime.MINYEAR..MAXYEAR)
const MIN_WALL = daysFromCivil(1, 1, 1) * 86_400
const MAX_WALL = daysFromCivil(9999, 12, 31) * 86_400 + 86_399

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

// --- datetimes -------------------------------------------------------------------------------

// two decimal digits at `i`, or -1
const digits2 = (text: string, i: number): number => {
  const a = text.charCodeAt(i) - 48
  const b = text.charCodeAt(i + 1) - 48
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1
}

const makeTimestamp = (
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  microsecond: number,
  offset: number | null
): Timestamp | undefined => {
  if (!validYmd(year, month, day) || hour > 23 || minute > 59 || second > 59) return undefined
  if (offset !== null && (offset <= -86_400 || offset >= 86_400)) return undefined
  const wall = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
  return new Timestamp(wall - (offset ?? 0), microsecond, offset)
}

// The form dlt writes, from `start` on (after the mark), without a regex nor a copy:
// `YYYY-MM-DDTHH:MM:SS`, an optional `.ffffff` (1..6 digits), then nothing, `Z` or `±HH:MM`.
// Undefined for anything else, which the general parser decides.
const parseCommonDatetime = (text: string, start: number): Timestamp | undefined => {
  const n = text.length
  if (
    n - start < 19 ||
    text.charCodeAt(start + 4) !== 45 || // -
    text.charCodeAt(start + 7) !== 45 ||
    text.charCodeAt(start + 10) !== 84 || // T
    text.charCodeAt(start + 13) !== 58 || // :
    text.charCodeAt(start + 16) !== 58
  ) {
    return undefined
  }
  const century = digits2(text, start)
  const yy = digits2(text, start + 2)
  const month = digits2(text, start + 5)
  const day = digits2(text, start + 8)
  const hour = digits2(text, start + 11)
  const minute = digits2(text, start + 14)
  const second = digits2(text, start + 17)
  if (century < 0 || yy < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return undefined
  let i = start + 19
  let micro = 0
  if (i < n && text.charCodeAt(i) === 46) {
    const from = ++i
    while (i < n) {
      const c = text.charCodeAt(i) - 48
      if (c < 0 || c > 9) break
      micro = micro * 10 + c
      i++
    }
    const count = i - from
    if (count === 0 || count > 6) return undefined
    for (let k = count; k < 6; k++) micro *= 10
  }
  let offset: number | null = null
  if (i < n) {
    const c = text.charCodeAt(i)
    if ((c === 90 || c === 122) && i + 1 === n) {
      offset = 0
    } else if ((c === 43 || c === 45) && i + 6 === n && text.charCodeAt(i + 3) === 58) {
      const oh = digits2(text, i + 1)
      const om = digits2(text, i + 4)
      if (oh < 0 || om < 0 || om > 59) return undefined
      offset = (c === 45 ? -1 : 1) * (oh * 3600 + om * 60)
    } else {
      return undefined
    }
  }
  return makeTimestamp(century * 100 + yy, month, day, hour, minute, second, micro, offset)
}

const fractionMicros = (digits: string | undefined): number =>
  digits === undefined ? 0 : Number(`${digits}00000`.slice(0, 6))

const parseOffset = (
  sign: string | undefined,
  h: string | undefined,
  m: string | undefined,
  s: string | undefined
): number | undefined => {
  if (sign === undefined) return 0
  const oh = Number(h)
  const om = m === undefined ? 0 : Number(m)
  const os = s === undefined ? 0 : Number(s)
  if (oh > 23 || om > 59 || os > 59) return undefined
  return (sign === "-" ? -1 : 1) * (oh * 3600 + om * 60 + os)
}

const parseDatetimeText = (text: string, start: number): Timestamp | undefined => {
  const common = parseCommonDatetime(text, start)
  if (common !== undefined) return common
  const m = DATETIME_TEXT.exec(start === 0 ? text : text.slice(start))
  if (m === null) return undefined
  let offset: number | null = null
  if (m[8] !== undefined) offset = 0
  else if (m[9] !== undefined) {
    const parsed = parseOffset(m[9], m[10], m[11], m[12])
    if (parsed === undefined) return undefined
    offset = parsed
  }
  return makeTimestamp(
    Number(m[1]),
    Number(m[2]),
    Number(m[3]),
    m[4] === undefined ? 0 : Number(m[4]),
    m[5] === undefined ? 0 : Number(m[5]),
    m[6] === undefined ? 0 : Number(m[6]),
    fractionMicros(m[7]),
    offset
  )
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`)
const pad6 = (n: number): string => `${n}`.padStart(6, "0")

// Python's utcoffset part of isoformat: +HH:MM, with :SS when there are seconds
const formatOffset = (offset: number): string => {
  const sign = offset < 0 ? "-" : "+"
  const abs = Math.abs(offset)
  const h = Math.floor(abs / 3600)
  const m = Math.floor((abs % 3600) / 60)
  const s = abs % 60
  return `${sign}${pad2(h)}:${pad2(m)}${s === 0 ? "" : `:${pad2(s)}`}`
}

const DAY = 86_400

// The civil date and time of `wall` (seconds since the epoch, no offset) into CIVIL as year, month,
// day, hour, minute, second: Howard Hinnant's days_from_civil inverse, written into one reused array
// (the formatters below run once per datetime of a state or a load, and allocate nothing else)
const CIVIL = new Int32Array(6)
const civilInto = (wall: number): Int32Array => {
  const days = Math.floor(wall / DAY)
  let rest = wall - days * DAY
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const doe = z - era * 146_097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const m = mp < 10 ? mp + 3 : mp - 9
  CIVIL[0] = yoe + era * 400 + (m <= 2 ? 1 : 0)
  CIVIL[1] = m
  CIVIL[2] = doy - Math.floor((153 * mp + 2) / 5) + 1
  CIVIL[5] = rest % 60
  rest = (rest - CIVIL[5]) / 60
  CIVIL[4] = rest % 60
  CIVIL[3] = (rest - CIVIL[4]) / 60
  return CIVIL
}

// The wall date and time of a timestamp as chars `YYYY-MM-DD?HH:MM:SS` (sep at 10), from a mark
// (0: none): one flat string from char codes (concatenations make ropes that JSON.stringify has to
// flatten).
const wallChars = (wall: number, sep: number, mark: number): string => {
  const c = civilInto(wall)
  const y = c[0]!
  const m = c[1]!
  const d = c[2]!
  const h = c[3]!
  const mi = c[4]!
  const s = c[5]!
  const core = String.fromCharCode(
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
    sep,
    48 + Math.floor(h / 10),
    48 + (h % 10),
    58,
    48 + Math.floor(mi / 10),
    48 + (mi % 10),
    58,
    48 + Math.floor(s / 10),
    48 + (s % 10)
  )
  return mark === 0 ? core : String.fromCharCode(mark) + core
}

const micros6 = (micro: number): string =>
  String.fromCharCode(
    46,
    48 + Math.floor(micro / 100_000),
    48 + (Math.floor(micro / 10_000) % 10),
    48 + (Math.floor(micro / 1000) % 10),
    48 + (Math.floor(micro / 100) % 10),
    48 + (Math.floor(micro / 10) % 10),
    48 + (micro % 10)
  )

// The common case of the datetime mark (U+F027) + isoformat: UTC, `+00:00`, as one flat string
// from char codes in one call (concatenations make ropes that JSON.stringify has to flatten)
const markedUtc = (wall: number, micro: number, quoted: boolean): string => {
  const c = civilInto(wall)
  const y = c[0]!
  const m = c[1]!
  const d = c[2]!
  const h = c[3]!
  const mi = c[4]!
  const s = c[5]!
  const y0 = 48 + Math.floor(y / 1000)
  const y1 = 48 + (Math.floor(y / 100) % 10)
  const y2 = 48 + (Math.floor(y / 10) % 10)
  const y3 = 48 + (y % 10)
  const m0 = 48 + Math.floor(m / 10)
  const m1 = 48 + (m % 10)
  const d0 = 48 + Math.floor(d / 10)
  const d1 = 48 + (d % 10)
  const h0 = 48 + Math.floor(h / 10)
  const h1 = 48 + (h % 10)
  const i0 = 48 + Math.floor(mi / 10)
  const i1 = 48 + (mi % 10)
  const s0 = 48 + Math.floor(s / 10)
  const s1 = 48 + (s % 10)
  if (micro === 0) {
    if (quoted) {
      // prettier-ignore
      return String.fromCharCode(
        34,
        0xf027,
        y0,
        y1,
        y2,
        y3,
        45,
        m0,
        m1,
        45,
        d0,
        d1,
        84,
        h0,
        h1,
        58,
        i0,
        i1,
        58,
        s0,
        s1,
        43,
        48,
        48,
        58,
        48,
        48,
        34
      )
    }
    // prettier-ignore
    return String.fromCharCode(
      0xf027,
      y0,
      y1,
      y2,
      y3,
      45,
      m0,
      m1,
      45,
      d0,
      d1,
      84,
      h0,
      h1,
      58,
      i0,
      i1,
      58,
      s0,
      s1,
      43,
      48,
      48,
      58,
      48,
      48
    )
  }
  if (quoted) {
    // prettier-ignore
    return String.fromCharCode(
      34,
      0xf027,
      y0,
      y1,
      y2,
      y3,
      45,
      m0,
      m1,
      45,
      d0,
      d1,
      84,
      h0,
      h1,
      58,
      i0,
      i1,
      58,
      s0,
      s1,
      46,
      48 + Math.floor(micro / 100_000),
      48 + (Math.floor(micro / 10_000) % 10),
      48 + (Math.floor(micro / 1000) % 10),
      48 + (Math.floor(micro / 100) % 10),
      48 + (Math.floor(micro / 10) % 10),
      48 + (micro % 10),
      43,
      48,
      48,
      58,
      48,
      48,
      34
    )
  }
  // prettier-ignore
  return String.fromCharCode(
    0xf027,
    y0,
    y1,
    y2,
    y3,
    45,
    m0,
    m1,
    45,
    d0,
    d1,
    84,
    h0,
    h1,
    58,
    i0,
    i1,
    58,
    s0,
    s1,
    46,
    48 + Math.floor(micro / 100_000),
    48 + (Math.floor(micro / 10_000) % 10),
    48 + (Math.floor(micro / 1000) % 10),
    48 + (Math.floor(micro / 100) % 10),
    48 + (Math.floor(micro / 10) % 10),
    48 + (micro % 10),
    43,
    48,
    48,
    58,
    48,
    48
  )
}

// Python's isoformat(sep), with an optional mark in front
const formatTimestampParts = (
  epochSecond: number,
  microsecond: number,
  offset: number | null,
  sep: number,
  mark: number,
  quoted = false
): string => {
  if (offset === 0 && mark === 0xf027 && sep === 84) return markedUtc(epochSecond, microsecond, quoted)
  const head = wallChars(epochSecond + (offset ?? 0), sep, mark)
  const fraction = microsecond === 0 ? "" : micros6(microsecond)
  const text =
    offset === null
      ? fraction === ""
        ? head
        : head + fraction
      : head + fraction + (offset === 0 ? "+00:00" : formatOffset(offset))
  return quoted ? `"${text}"` : text
}

const formatTimestamp = (t: Timestamp, sep: "T" | " "): string =>
  formatTimestampParts(t.epochSecond, t.microsecond, t.offsetSeconds, sep === "T" ? 84 : 32, 0)

const timestampProblem = (t: Timestamp): string | undefined => {
  if (!Number.isSafeInteger(t.epochSecond)) return "its epochSecond is not an integer"
  if (!Number.isInteger(t.microsecond) || t.microsecond < 0 || t.microsecond > 999_999) {
    return "its microsecond is not an integer in 0..999999"
  }
  const offset = t.offsetSeconds
  if (offset !== null && (!Number.isInteger(offset) || offset <= -86_400 || offset >= 86_400)) {
    return "its offsetSeconds is not an integer strictly between -86400 and 86400"
  }
  const wall = t.epochSecond + (offset ?? 0)
  if (wall < MIN_WALL || wall > MAX_WALL) return "its wall time is outside years 0001..9999 (the years dlt reads)"
  return undefined
}

/**
 * The text dlt's SQLite destination (SQLAlchemy) stores for a timestamp: naive UTC wall time with a
 * space and six fraction digits, `2026-11-29 16:28:54.191953`. A naive `Timestamp` is written as
 * its wall time.
 *
 * @example
 * ```ts
 * formatSqliteTimestamp(new Date("2026-11-29T16:28:54.191Z")) // "2026-11-29 16:28:54.191000"
 * ```
 *
 * @since 0.1.0
 */
export const formatSqliteTimestamp = (value: Date | Timestamp): string => {
  if (value instanceof Timestamp) return wallChars(value.epochSecond, 32, 0) + micros6(value.microsecond)
  // a Date (a load's timestamp cells): no Timestamp made on the way
  const time = value.getTime()
  const ms = ((time % 1000) + 1000) % 1000
  return wallChars((time - ms) / 1000, 32, 0) + micros6(ms * 1000)
}

/**
 * Reads a timestamp stored in SQLite: dlt's `2026-11-29 16:28:54.191953` (naive UTC) and the ISO
 * text of earlier pipestate versions (`2026-11-29T15:59:12.318Z`), as a UTC `Timestamp`. Text
 * with an offset is converted to UTC.
 *
 * @example
 * ```ts
 * parseSqliteTimestamp("2026-11-29 16:28:54.191953") // Right(Timestamp 2026-11-29T16:28:54.191953+00:00)
 * ```
 *
 * @since 0.1.0
 */
export const parseSqliteTimestamp = (text: string): Either.Either<Timestamp, InvalidStateValue> =>
  Either.map(Timestamp.parse(text), (t) => t.withOffset(0))

// --- times of day ------------------------------------------------------------------------------

const canonicalTime = (text: string): string | undefined => {
  const m = TIME_TEXT.exec(text)
  if (m === null) return undefined
  const h = Number(m[1])
  const mi = m[2] === undefined ? 0 : Number(m[2])
  const s = m[3] === undefined ? 0 : Number(m[3])
  if (h > 23 || mi > 59 || s > 59) return undefined
  const micro = fractionMicros(m[4])
  let offset = ""
  if (m[5] !== undefined) offset = "+00:00"
  else if (m[6] !== undefined) {
    const parsed = parseOffset(m[6], m[7], m[8], m[9])
    if (parsed === undefined) return undefined
    offset = formatOffset(parsed)
  }
  return `${pad2(h)}:${pad2(mi)}:${pad2(s)}${micro === 0 ? "" : `.${pad6(micro)}`}${offset}`
}

// --- decimals ------------------------------------------------------------------------------------

// Python's Decimal.__str__ (to-scientific-string) of sign, coefficient digits and exponent
const pythonDecimalText = (negative: boolean, digits: string, exponent: number): string => {
  const leftdigits = exponent + digits.length
  const dotplace = exponent <= 0 && leftdigits > -6 ? leftdigits : 1
  let intpart: string
  let fracpart: string
  if (dotplace <= 0) {
    intpart = "0"
    fracpart = `.${"0".repeat(-dotplace)}${digits}`
  } else if (dotplace >= digits.length) {
    intpart = digits + "0".repeat(dotplace - digits.length)
    fracpart = ""
  } else {
    intpart = digits.slice(0, dotplace)
    fracpart = `.${digits.slice(dotplace)}`
  }
  const e = leftdigits - dotplace
  const exp = leftdigits === dotplace ? "" : `E${e >= 0 ? "+" : "-"}${Math.abs(e)}`
  return (negative ? "-" : "") + intpart + fracpart + exp
}

const formatDecimal = (d: BigDecimal.BigDecimal): string => {
  const negative = d.value < 0n
  return pythonDecimalText(negative, (negative ? -d.value : d.value).toString(), -d.scale)
}

// the exponents a Decimal text may carry here: beyond them BigDecimal arithmetic would explode
const MAX_DECIMAL_EXPONENT = 1_000_000

const parseDecimalText = (text: string): BigDecimal.BigDecimal | SpecialDecimal | undefined => {
  const m = DECIMAL_TEXT.exec(text)
  if (m === null) return SPECIAL_DECIMAL.test(text) ? new SpecialDecimal({ text }) : undefined
  const intDigits = m[2]!
  const fracDigits = m[3] ?? ""
  if (intDigits === "" && fracDigits === "") return undefined
  const exponent = (m[4] === undefined ? 0 : Number(m[4])) - fracDigits.length
  if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > MAX_DECIMAL_EXPONENT) return undefined
  const all = (intDigits + fracDigits).replace(/^0+/, "")
  const digits = all === "" ? "0" : all
  if (m[1] === "-" && digits === "0") {
    return new SpecialDecimal({ text: pythonDecimalText(true, "0", exponent) })
  }
  const coefficient = BigInt(digits)
  return BigDecimal.make(m[1] === "-" ? -coefficient : coefficient, -exponent)
}

// --- floats --------------------------------------------------------------------------------------

/**
 * orjson's spelling of a float (the `ryu` crate's format): plain digits up to 16 integer digits
 * with `.0` for whole numbers (`1.0`, `1000000000000000.0`), `0.000ddd` down to 1e-5, otherwise
 * scientific without `+` (`1e16`, `1.5e-10`, `1.7976931348623157e308`).
 *
 * @since 0.1.0
 */
export const formatFloat = (value: number): string => {
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0"
  const negative = value < 0
  const exp = (negative ? -value : value).toExponential()
  const e = exp.indexOf("e")
  const digits = exp.charCodeAt(1) === 46 ? exp[0] + exp.slice(2, e) : exp.slice(0, e)
  const length = digits.length
  const kk = Number(exp.slice(e + 1)) + 1
  const k = kk - length
  let out: string
  if (k >= 0 && kk <= 16) out = `${digits}${"0".repeat(k)}.0`
  else if (kk > 0 && kk <= 16) out = `${digits.slice(0, kk)}.${digits.slice(kk)}`
  else if (kk > -5 && kk <= 0) out = `0.${"0".repeat(-kk)}${digits}`
  else if (length === 1) out = `${digits}e${kk - 1}`
  else out = `${digits[0]}.${digits.slice(1)}e${kk - 1}`
  return negative ? `-${out}` : out
}

// the JSON text of a number as dlt writes the value it stands for: an int when it is a safe
// integer, else a float
const numberText = (value: number): string =>
  Number.isSafeInteger(value) && !Object.is(value, -0) ? `${value}` : formatFloat(value)

const isWholeFloat = (value: number): boolean => Number.isSafeInteger(value) && !Object.is(value, -0)

const MIN_INT64 = -(2n ** 63n)
const MAX_UINT64 = 2n ** 64n - 1n
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER)
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

// --- constructors ------------------------------------------------------------------------------

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
 * A {@link TimeOfDay} from ISO text: `HH`, `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fraction` (1..6
 * digits), with an optional offset (`Z`, `+02:00`), in Python's `isoformat()` spelling.
 *
 * @example
 * ```ts
 * makeTimeOfDay("12:30:00.5") // Right(TimeOfDay { iso: "12:30:00.500000" })
 * ```
 *
 * @since 0.1.0
 */
export const makeTimeOfDay = (text: string): Either.Either<TimeOfDay, InvalidStateValue> => {
  const iso = canonicalTime(text)
  return iso === undefined
    ? Either.left(
        new InvalidStateValue({ kind: "time of day", input: text, reason: "expected HH:MM:SS[.ffffff][offset]" })
      )
    : Either.right(new TimeOfDay({ iso }))
}

/**
 * A decimal from text as Python's `Decimal` reads it: `BigDecimal` for finite values (the scale is
 * kept: `1.50` stays `1.50`), {@link SpecialDecimal} for `NaN`, `Infinity` and negative zero.
 *
 * @example
 * ```ts
 * makeDecimal("1.23E+5") // Right(BigDecimal 123 scale -3), written back as "1.23E+5"
 * ```
 *
 * @since 0.1.0
 */
export const makeDecimal = (text: string): Either.Either<BigDecimal.BigDecimal | SpecialDecimal, InvalidStateValue> => {
  const value = parseDecimalText(text)
  return value === undefined
    ? Either.left(
        new InvalidStateValue({ kind: "Decimal", input: text, reason: "expected digits, a fraction and an exponent" })
      )
    : Either.right(value)
}

const bytesToBase64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

const bytesToHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

// the value of a marked string, or the string itself when its body is not a valid typed value
const decodeMarked = (text: string, mark: number): StateValue => {
  if (mark === 0xf027) {
    const value = parseDatetimeText(text, 1)
    return value ?? text
  }
  const body = text.slice(1)
  switch (mark) {
    case 0xf026:
      return parseDecimalText(body) ?? text
    case 0xf028:
      return isCalendarDateText(body) ? new CalendarDate({ iso: body }) : text
    case 0xf029: {
      const value = canonicalUuid(body)
      return value === undefined ? text : new Uuid({ value })
    }
    case 0xf02a:
      return HEX_BODY.test(body) ? new HexBytes(Buffer.from(body.slice(2), "hex")) : text
    case 0xf02b: {
      // canonical base64 only: anything else would be written back differently
      const bytes = Buffer.from(body, "base64")
      return bytes.toString("base64") === body ? new Uint8Array(bytes) : text
    }
    case 0xf02d: {
      const iso = canonicalTime(body)
      return iso === undefined ? text : new TimeOfDay({ iso })
    }
    default:
      // U+F02C (dlt's Wei) and others: kept as the string, written back as it was
      return text
  }
}

// ---------------------------------------------------------------------------------------------
// Key order
// ---------------------------------------------------------------------------------------------

// Every JS object lists array-index keys ("0", "10") first, in numeric order, whatever the
// insertion order; Python dicts keep insertion order. An object whose insertion order differs
// from the JS order carries it under this symbol (not enumerable: a copy made by spreading drops
// it, and then JS order is the order).
const KEY_ORDER: unique symbol = Symbol.for("pipestate/StateValue/keyOrder") as never

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

const sameOrder = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const setKeyOrder = (target: object, order: ReadonlyArray<string>): void => {
  if (sameOrder(order, Object.keys(target))) return
  Object.defineProperty(target, KEY_ORDER, { value: order, enumerable: false, writable: false, configurable: true })
}

// the keys of a record in insertion order (the remembered order when it still names exactly the
// object's keys)
const orderedKeys = (record: object): Array<string> => {
  const keys = Object.keys(record)
  const order = (record as { readonly [KEY_ORDER]?: ReadonlyArray<string> })[KEY_ORDER]
  if (order === undefined || order.length !== keys.length) return keys
  for (const key of order) if (!Object.hasOwn(record, key)) return keys
  return [...order]
}

/**
 * A plain object whose keys keep the order of `entries` in the typed JSON text, as a Python dict
 * keeps insertion order. Only needed for keys that look like array indexes (`"10"`, `"2"`), which
 * every JS object lists first; decoded objects keep their order by themselves.
 *
 * @example
 * ```ts
 * stringify(record([["10", "a"], ["2", "b"]])) // Right('{"10":"a","2":"b"}')
 * ```
 *
 * @since 0.1.0
 */
export const record = <A>(entries: Iterable<readonly [string, A]>): { readonly [key: string]: A } => {
  const out: Record<string, A> = {}
  const order: Array<string> = []
  for (const [key, value] of entries) {
    if (!Object.hasOwn(out, key)) order.push(key)
    defineKey(out, key, value)
  }
  setKeyOrder(out, order)
  return out
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

// Text already written by hand, where JSON.stringify would write something else (a float, a big
// integer, keys in an order JS does not keep); its ancestors become written text too.
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

const sortedKeys = (record: object): Array<string> => sortKeys(Object.keys(record))

// How an encode call writes: `check` validates only; `tree` builds the typed JSON tree (bigint,
// Float and key orders as they are); `text` builds what JSON.stringify turns into the exact text,
// with Written nodes where it would not.
type Mode = "check" | "tree" | "text"

// One mutable context per encode call: the path is a stack of segments rendered only on failure,
// so the common (successful) case allocates nothing for paths.
interface EncodeContext {
  readonly segments: Array<string | number>
  readonly ancestors: Set<object>
  readonly mode: Mode
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

// String.prototype.isWellFormed (Node 20; TypeScript's lib names it from ES2024 on)
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed()

const LONE_SURROGATE =
  "it holds a lone surrogate (a UTF-16 unit U+D800..U+DFFF without its pair), which is no Unicode text: dlt " +
  "cannot read a state holding one. Remove it or replace it with U+FFFD (String.prototype.toWellFormed)"

const encodeString = (value: string, ctx: EncodeContext): Encoded | Fail => {
  if (!isWellFormed(value)) return fail(ctx, `the string ${LONE_SURROGATE}`)
  const c = value.charCodeAt(0)
  if (c >= FIRST_MARK && c <= LAST_MARK && decodeMarked(value, c) !== value) {
    return fail(
      ctx,
      `the string starts with the private-use character U+${c.toString(16).toUpperCase()}, which typed JSON ` +
        "reserves to mark special values, and the rest reads as such a value, so it would be read back as something " +
        "else: remove that character"
    )
  }
  return value
}

const encodeArray = (value: ReadonlyArray<unknown>, ctx: EncodeContext): Encoded | Fail => {
  if (ctx.ancestors.has(value)) return fail(ctx, "the array contains itself (a circular reference)")
  ctx.ancestors.add(value)
  const n = value.length
  const out: Array<Encoded> | undefined = ctx.mode === "check" ? undefined : new Array(n)
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
      if (encoded instanceof Written) written = true
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
  const keys = ctx.sort ? sortedKeys(record) : orderedKeys(record)
  const out: Record<string, Encoded> | undefined = ctx.mode === "check" ? undefined : {}
  const order: Array<string> | undefined = ctx.mode === "tree" ? [] : undefined
  let written = false
  for (const key of keys) {
    ctx.segments.push(key)
    const item = record[key]
    if (item === undefined) {
      ctx.segments.pop()
      continue
    }
    if (!isWellFormed(key)) return fail(ctx, `the key ${LONE_SURROGATE}`)
    const encoded = encodeAny(item, ctx)
    if (encoded === FAIL) return FAIL
    ctx.segments.pop()
    if (out === undefined) continue
    defineKey(out, key, encoded)
    order?.push(key)
    if (encoded instanceof Written) written = true
  }
  ctx.ancestors.delete(value)
  if (out === undefined) return null
  if (order !== undefined) {
    if (hasArrayIndex(order)) setKeyOrder(out, order)
    return out as Record<string, Json>
  }
  // text: JSON.stringify writes array-index keys first, so an object with one whose order is not
  // the JS order is written by hand
  if (written || (hasArrayIndex(keys) && !sameOrder(keys, Object.keys(out)))) {
    const parts: Array<string> = []
    for (const key of keys) {
      if (Object.hasOwn(out, key)) parts.push(`${JSON.stringify(key)}:${textOf(out[key]!)}`)
    }
    return new Written(`{${parts.join(",")}}`)
  }
  return out as Record<string, Json>
}

const encodeNumber = (value: number, ctx: EncodeContext): Encoded | Fail => {
  if (!Number.isFinite(value)) {
    return fail(
      ctx,
      `the number ${value} is not finite: JSON has no NaN or Infinity (dlt would store null); use null or a SpecialDecimal`
    )
  }
  return ctx.mode === "text" && !isWholeFloat(value) ? new Written(formatFloat(value)) : value
}

const encodeBigInt = (value: bigint, ctx: EncodeContext): Encoded | Fail => {
  if (value < MIN_INT64 || value > MAX_UINT64) {
    return fail(
      ctx,
      `the integer ${value} is beyond 64 bits (-2^63..2^64-1), which dlt's JSON library cannot write: store it as a BigDecimal or a string`
    )
  }
  if (value >= MIN_SAFE && value <= MAX_SAFE) return Number(value)
  return ctx.mode === "text" ? new Written(`${value}`) : value
}

// `quoted`: a Date or Timestamp is written as its JSON string (quotes included), as the text
// writer wants it
const encodeObject = (value: object, ctx: EncodeContext, quoted = false): Encoded | Fail => {
  if (Array.isArray(value)) return encodeArray(value, ctx)
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) return encodeRecord(value, ctx)
  if (value instanceof Date) {
    const time = value.getTime()
    if (Number.isNaN(time)) return fail(ctx, "the Date is invalid")
    const ms = ((time % 1000) + 1000) % 1000
    const seconds = (time - ms) / 1000
    if (seconds < MIN_WALL || seconds > MAX_WALL) {
      return fail(
        ctx,
        `the Date is in year ${value.getUTCFullYear()}: only years 0001..9999 can be stored (dlt reads no others)`
      )
    }
    return ctx.mode === "check" ? null : formatTimestampParts(seconds, ms * 1000, 0, 84, 0xf027, quoted)
  }
  if (value instanceof Timestamp) {
    const problem = timestampProblem(value)
    if (problem !== undefined) return fail(ctx, `the Timestamp is invalid: ${problem}`)
    return ctx.mode === "check"
      ? null
      : formatTimestampParts(value.epochSecond, value.microsecond, value.offsetSeconds, 84, 0xf027, quoted)
  }
  if (value instanceof Float) {
    const v = value.value
    if (typeof v !== "number" || !Number.isFinite(v)) return fail(ctx, `the Float ${v} is not a finite number`)
    if (ctx.mode === "text") return new Written(formatFloat(v))
    return isWholeFloat(v) ? value : v
  }
  if (BigDecimal.isBigDecimal(value)) return ctx.mode === "check" ? null : DECIMAL + formatDecimal(value)
  if (value instanceof SpecialDecimal) {
    const parsed = typeof value.text === "string" ? parseDecimalText(value.text) : undefined
    return parsed instanceof SpecialDecimal && parsed.text === value.text
      ? DECIMAL + value.text
      : fail(ctx, `${JSON.stringify(value.text)} is not a special Decimal: build it with makeDecimal`)
  }
  if (value instanceof HexBytes) return ctx.mode === "check" ? null : `${HEXBYTES}0x${bytesToHex(value)}`
  if (value instanceof Uint8Array) return ctx.mode === "check" ? null : B64BYTES + bytesToBase64(value)
  if (value instanceof Uuid) {
    // orjson writes a uuid.UUID as its plain text, with no mark
    const text = canonicalUuid(value.value)
    return text === undefined ? fail(ctx, `${JSON.stringify(value.value)} is not a UUID: build it with makeUuid`) : text
  }
  if (value instanceof CalendarDate) {
    return isCalendarDateText(value.iso)
      ? DATE + value.iso
      : fail(ctx, `${JSON.stringify(value.iso)} is not a date: build it with makeCalendarDate`)
  }
  if (value instanceof TimeOfDay) {
    const iso = typeof value.iso === "string" ? canonicalTime(value.iso) : undefined
    return iso === undefined
      ? fail(ctx, `${JSON.stringify(value.iso)} is not a time of day: build it with makeTimeOfDay`)
      : TIME + iso
  }
  return fail(ctx, describeInstance(value))
}

const encodeAny = (value: unknown, ctx: EncodeContext): Encoded | Fail => {
  switch (typeof value) {
    case "string":
      return encodeString(value, ctx)
    case "number":
      return encodeNumber(value, ctx)
    case "boolean":
      return value
    case "object":
      return value === null ? null : encodeObject(value, ctx)
    case "bigint":
      return encodeBigInt(value, ctx)
    case "undefined":
      return fail(ctx, "undefined is not a state value: use null")
    case "function":
      return fail(ctx, "a function is not a state value")
    case "symbol":
      return fail(ctx, "a symbol is not a state value")
  }
}

const encodeWith = (
  value: unknown,
  path: string,
  mode: Mode,
  sort: boolean
): Either.Either<Encoded, NonSerializableStateValue> => {
  const ctx: EncodeContext = { segments: [], ancestors: new Set(), mode, sort, reason: "" }
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
 * The typed JSON of a state value, in one pass. Fails with the path of the first value that cannot
 * be stored (a lone surrogate, a non-finite number, an integer beyond 64 bits, a Map, ...); `path`
 * is the path of `value` itself (it prefixes the path in the error).
 *
 * @example
 * ```ts
 * encode({ since: new Date(0) }) // Right({ since: "\uF0271970-01-01T00:00:00+00:00" })
 * encode({ n: "x\ud800" }, "sources.s") // Left(NonSerializableStateValue { path: "sources.s.n" })
 * ```
 *
 * @since 0.1.0
 */
export const encode = (value: unknown, path = ""): Either.Either<Json, NonSerializableStateValue> =>
  encodeWith(value, path, "tree", false) as Either.Either<Json, NonSerializableStateValue>

/**
 * Checks that a value can be stored, building nothing: `Right` exactly when {@link encode} is.
 *
 * @since 0.1.0
 */
export const validate = (value: unknown, path = ""): Either.Either<void, NonSerializableStateValue> =>
  Either.map(encodeWith(value, path, "check", false), () => undefined)

/**
 * Compact typed JSON text of a state value with the keys of every object sorted by code point
 * (Python's `sort_keys=True`): what the version hash is computed over.
 *
 * @example
 * ```ts
 * stringifySorted({ b: 1, a: new Date(0) }) // Right('{"a":"\uF0271970-01-01T00:00:00+00:00","b":1}')
 * ```
 *
 * @since 0.1.0
 */
export const stringifySorted = (value: unknown, path = ""): Either.Either<string, NonSerializableStateValue> => {
  const sorted = encodeWith(value, path, "text", true)
  if (Either.isRight(sorted)) return Either.right(textOf(sorted.right))
  // the error names the first bad value in document order, as encode does, not in sorted order
  return Either.flatMap(encodeWith(value, path, "check", false), () => Either.left(sorted.left))
}

const stringifyCompact = (value: unknown, path: string): Either.Either<string, NonSerializableStateValue> =>
  Either.map(encodeWith(value, path, "text", false), textOf)

// Both texts from one walk: every value is checked and written once. A value is written as one
// string when both texts agree on it, else as a TextPair (its objects' keys in insertion order,
// and sorted); no intermediate JSON tree is built.
class TextPair {
  constructor(
    readonly doc: string,
    readonly sorted: string
  ) {}
}

// the characters JSON.stringify escapes in a well-formed string
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters JSON must escape
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/

// JSON.stringify(text) for a well-formed string
const quote = (text: string): string => (NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`)

// the text of an encoded leaf (a string, number, boolean, null or Written)
const leafText = (encoded: Encoded): string =>
  typeof encoded === "string" ? quote(encoded) : encoded instanceof Written ? encoded.text : JSON.stringify(encoded)

// whether JSON.stringify may write this array itself (when its items are JSON primitives that
// encode to themselves): a plain array, with no toJSON of its own or of a subclass
const isPlainArray = (value: ReadonlyArray<unknown>): boolean =>
  Object.getPrototypeOf(value) === Array.prototype && !Object.hasOwn(value, "toJSON")

const writeBoth = (value: unknown, ctx: EncodeContext): string | TextPair | Fail => {
  if (typeof value !== "object" || value === null) {
    const encoded = encodeAny(value, ctx)
    return encoded === FAIL ? FAIL : leafText(encoded)
  }
  if (Array.isArray(value)) return writeArray(value, ctx)
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) {
    // dates come with their quotes (one string fewer each)
    const quoted = value instanceof Date || value instanceof Timestamp
    const encoded = encodeObject(value, ctx, quoted)
    if (encoded === FAIL) return FAIL
    return typeof encoded === "string" && quoted ? encoded : leafText(encoded)
  }
  return writeRecord(value as Record<string, unknown>, ctx)
}

// The texts are concatenated one part at a time: V8 keeps a long concatenation as a rope and
// flattens it once, which is faster than joining an array of parts.

const writeArray = (value: ReadonlyArray<unknown>, ctx: EncodeContext): string | TextPair | Fail => {
  if (ctx.ancestors.has(value)) return fail(ctx, "the array contains itself (a circular reference)")
  ctx.ancestors.add(value)
  const n = value.length
  // as long as every item is a JSON primitive that encodes to itself, nothing is written: the
  // text is then JSON.stringify's of the array
  let native = isPlainArray(value)
  let doc = "["
  let sorted: string | undefined
  for (let i = 0; i < n; i++) {
    ctx.segments.push(i)
    const item: unknown = value[i]
    if (item === undefined) return fail(ctx, "undefined is not a state value inside an array: use null")
    let written: string | TextPair | Fail
    if (native && (typeof item !== "object" || item === null)) {
      const encoded = encodeAny(item, ctx)
      if (encoded === FAIL) return FAIL
      ctx.segments.pop()
      if (encoded === item) continue
      written = leafText(encoded)
    } else {
      written = writeBoth(item, ctx)
      if (written === FAIL) return FAIL
      ctx.segments.pop()
    }
    if (native) {
      // the items before are JSON primitives, their own encoding
      native = false
      for (let j = 0; j < i; j++) doc += j === 0 ? leafText(value[j] as Encoded) : `,${leafText(value[j] as Encoded)}`
    }
    const comma = i === 0 ? "" : ","
    if (typeof written === "string") {
      doc += comma + written
      if (sorted !== undefined) sorted += comma + written
    } else {
      if (sorted === undefined) sorted = doc
      doc += comma + written.doc
      sorted += comma + written.sorted
    }
  }
  ctx.ancestors.delete(value)
  if (native) return JSON.stringify(value)
  return sorted === undefined ? `${doc}]` : new TextPair(`${doc}]`, `${sorted}]`)
}

const writeRecord = (record: Record<string, unknown>, ctx: EncodeContext): string | TextPair | Fail => {
  if (ctx.ancestors.has(record)) return fail(ctx, "the object contains itself (a circular reference)")
  ctx.ancestors.add(record)
  const all = orderedKeys(record)
  const keys: Array<string> = new Array(all.length)
  // `,"key":` and the sorted text of the value of each key, for the sorted text
  const names: Array<string> = new Array(all.length)
  const values: Array<string> = new Array(all.length)
  let doc = "{"
  let n = 0
  let pairs = false
  let inOrder = true
  for (const key of all) {
    ctx.segments.push(key)
    const item = record[key]
    if (item === undefined) {
      ctx.segments.pop()
      continue
    }
    if (!isWellFormed(key)) return fail(ctx, `the key ${LONE_SURROGATE}`)
    const written = writeBoth(item, ctx)
    if (written === FAIL) return FAIL
    ctx.segments.pop()
    if (inOrder && n > 0 && compareKeys(keys[n - 1]!, key) > 0) inOrder = false
    const name = NEEDS_ESCAPE.test(key) ? `,${JSON.stringify(key)}:` : `,"${key}":`
    const value = typeof written === "string" ? written : written.sorted
    if (typeof written !== "string") pairs = true
    doc += (n === 0 ? name.slice(1) : name) + (typeof written === "string" ? written : written.doc)
    keys[n] = key
    names[n] = name
    values[n] = value
    n++
  }
  ctx.ancestors.delete(record)
  doc += "}"
  if (inOrder && !pairs) return doc
  let order: ReadonlyArray<number> | undefined
  if (!inOrder) {
    keys.length = n
    const at = new Map<string, number>()
    for (let i = 0; i < n; i++) at.set(keys[i]!, i)
    order = sortKeys(keys).map((key) => at.get(key)!)
  }
  let sorted = "{"
  for (let i = 0; i < n; i++) {
    const j = order === undefined ? i : order[i]!
    sorted += (i === 0 ? names[j]!.slice(1) : names[j]!) + values[j]!
  }
  return new TextPair(doc, `${sorted}}`)
}

/**
 * The compact typed JSON text of a state value twice, from one walk over it: `doc` with keys in
 * insertion order (what {@link stringify} writes) and `sorted` with the keys of every object
 * sorted by code point (what {@link stringifySorted} writes, the text of the version hash).
 *
 * @example
 * ```ts
 * stringifyBoth({ b: 1, a: 2 }) // Right({ doc: '{"b":1,"a":2}', sorted: '{"a":2,"b":1}' })
 * ```
 *
 * @since 0.1.0
 */
export const stringifyBoth = (
  value: unknown,
  path = ""
): Either.Either<{ readonly doc: string; readonly sorted: string }, NonSerializableStateValue> => {
  const ctx: EncodeContext = { segments: [], ancestors: new Set(), mode: "text", sort: false, reason: "" }
  try {
    const written = writeBoth(value, ctx)
    if (written === FAIL) {
      return Either.left(new NonSerializableStateValue({ path: renderPath(path, ctx.segments), reason: ctx.reason }))
    }
    return Either.right(
      typeof written === "string" ? { doc: written, sorted: written } : { doc: written.doc, sorted: written.sorted }
    )
  } catch (error) {
    const reason =
      error instanceof RangeError
        ? "the value is nested too deeply"
        : `reading it threw: ${error instanceof Error ? error.message : String(error)}`
    return Either.left(new NonSerializableStateValue({ path: renderPath(path, ctx.segments), reason }))
  }
}

// ---------------------------------------------------------------------------------------------
// Writing JSON trees
// ---------------------------------------------------------------------------------------------

// whether JSON.stringify writes this tree as dlt would: no bigint, Float, float number or
// remembered key order
const isNative = (json: Json, depth: number): boolean => {
  switch (typeof json) {
    case "number":
      return isWholeFloat(json)
    case "bigint":
      return false
    case "object": {
      if (json === null) return true
      if (depth > 1000) return false
      if (Array.isArray(json)) {
        for (const item of json as ReadonlyArray<Json>) if (!isNative(item, depth + 1)) return false
        return true
      }
      if (json instanceof Float) return false
      if ((json as { readonly [KEY_ORDER]?: unknown })[KEY_ORDER] !== undefined) return false
      const record = json as { readonly [key: string]: Json }
      for (const key of Object.keys(record)) {
        const item = record[key]
        if (item !== undefined && !isNative(item, depth + 1)) return false
      }
      return true
    }
    default:
      return true
  }
}

const writeJson = (json: Json | undefined, sort: boolean, indent: string, step: string): string => {
  switch (typeof json) {
    case "number":
      return numberText(json)
    case "bigint":
      return `${json}`
    case "string":
      return JSON.stringify(json)
    case "boolean":
      return json ? "true" : "false"
    case "undefined":
      return "null"
  }
  if (json === null) return "null"
  if (json instanceof Float) return formatFloat(json.value)
  const inner = indent + step
  const open = step === "" ? "" : `\n${inner}`
  const close = step === "" ? "" : `\n${indent}`
  const sep = step === "" ? "," : `,\n${inner}`
  if (Array.isArray(json)) {
    if (json.length === 0) return "[]"
    const parts = (json as ReadonlyArray<Json>).map((item) => writeJson(item, sort, inner, step))
    return `[${open}${parts.join(sep)}${close}]`
  }
  const record = json as { readonly [key: string]: Json }
  const keys = (sort ? sortedKeys(record) : orderedKeys(record)).filter((key) => record[key] !== undefined)
  if (keys.length === 0) return "{}"
  const colon = step === "" ? ":" : ": "
  const parts = keys.map((key) => JSON.stringify(key) + colon + writeJson(record[key], sort, inner, step))
  return `{${open}${parts.join(sep)}${close}}`
}

const clampSpace = (space: number | undefined): number => Math.min(10, Math.max(0, Math.floor(space ?? 0)))

/**
 * JSON text of a typed JSON tree (no typed encoding: marked strings are written as they are), as
 * dlt writes it: floats and big integers in orjson's spelling, keys in their remembered order, or
 * sorted by code point with `sortKeys`; compact unless `space` is given.
 *
 * @example
 * ```ts
 * formatJson({ b: 1, a: new Float(2) }, { sortKeys: true }) // '{"a":2.0,"b":1}'
 * ```
 *
 * @since 0.1.0
 */
export const formatJson = (json: Json, options?: { readonly sortKeys?: boolean; readonly space?: number }): string => {
  const space = clampSpace(options?.space)
  const sort = options?.sortKeys === true
  if (!sort && isNative(json, 0)) return JSON.stringify(json, null, space)
  return writeJson(json, sort, "", " ".repeat(space))
}

/**
 * Typed JSON text of a state value: compact unless `space` is given; `sortKeys` sorts object keys
 * by code point at every level, as Python's `sort_keys=True`. Compact text is exactly what dlt
 * writes for the same Python values.
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
): Either.Either<string, NonSerializableStateValue> => {
  const space = clampSpace(options?.space)
  const path = options?.path ?? ""
  if (space === 0) return options?.sortKeys === true ? stringifySorted(value, path) : stringifyCompact(value, path)
  return Either.map(encode(value, path), (json) => formatJson(json, options))
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

const decodeAny = (json: unknown, depth: number): StateValue => {
  switch (typeof json) {
    case "string": {
      const c = json.charCodeAt(0)
      return c >= FIRST_MARK && c <= LAST_MARK ? decodeMarked(json, c) : json
    }
    case "bigint":
      return json >= MIN_SAFE && json <= MAX_SAFE ? Number(json) : json
    case "object":
      break
    default:
      return json as StateValue
  }
  if (json === null) return null
  if (depth > 10_000) throw new RangeError("nested too deeply")
  if (Array.isArray(json)) {
    const n = json.length
    const out: Array<StateValue> = new Array(n)
    for (let i = 0; i < n; i++) out[i] = decodeAny(json[i], depth + 1)
    return out
  }
  if (json instanceof Float) return isWholeFloat(json.value) ? json : json.value
  const source = json as Record<string, unknown>
  const out: Record<string, StateValue> = {}
  const keys = orderedKeys(source)
  for (const key of keys) {
    const item = source[key]
    if (item !== undefined) defineKey(out, key, decodeAny(item, depth + 1))
  }
  if (hasArrayIndex(keys)) setKeyOrder(out, keys)
  return out
}

/**
 * The state value of typed JSON. Never fails: a marked string that does not decode stays a string.
 *
 * @example
 * ```ts
 * decode("\uF0261.50") // BigDecimal 1.50
 * decode({ at: "\uF0272024-01-01T00:00:00+00:00" }) // { at: Timestamp }
 * ```
 *
 * @since 0.1.0
 */
export const decode = (json: Json): StateValue => decodeAny(json, 0)

// How deep the in-place decoder goes; deeper documents are left to the lossless parser.
const MAX_IN_PLACE_DEPTH = 1000

/**
 * What the in-place decoder found besides the value: `marks`, how many strings started with a
 * mark; `ints`, whether a safe integer occurred (the text may have spelled it as a float, `1.0`);
 * `bigs`, whether a whole number beyond the safe range occurred (the text may have spelled an
 * integer that `JSON.parse` rounded).
 *
 * @since 0.1.0
 */
export interface InPlaceResult {
  readonly value: StateValue
  readonly marks: number
  readonly ints: boolean
  readonly bigs: boolean
}

interface InPlace {
  readonly latin1: boolean
  marks: number
  ints: boolean
  bigs: boolean
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

const decodeLeaf = (text: string, ctx: InPlace): StateValue => {
  const mark = markOf(text, ctx.latin1)
  if (mark === 0) return text
  ctx.marks++
  if (mark === 0xf027) {
    const value = parseCommonDatetime(text, ctx.latin1 ? 3 : 1)
    if (value !== undefined) return value
  }
  // a body that does not decode leaves the string (in its UTF-16 form)
  return decodeMarked(ctx.latin1 ? String.fromCharCode(mark) + text.slice(3) : text, mark)
}

// false where JSON.parse may have lost what the text said: -0, a non-finite number, an object
// whose first key is an array index (its insertion order is lost)
const noteNumber = (value: number, ctx: InPlace): boolean => {
  if (Number.isSafeInteger(value)) {
    if (value === 0 && Object.is(value, -0)) return false
    ctx.ints = true
    return true
  }
  if (!Number.isFinite(value)) return false
  if (Number.isInteger(value)) ctx.bigs = true
  return true
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
        if (decoded !== item) items[i] = decoded
      } else if (typeof item === "object") {
        if (item !== null && !decodeNodeInPlace(item, depth + 1, ctx)) return false
      } else if (typeof item === "number" && !noteNumber(item, ctx)) {
        return false
      }
    }
    return true
  }
  const record = node as Record<string, unknown>
  const keys = Object.keys(record)
  if (keys.length > 0) {
    const c = keys[0]!.charCodeAt(0)
    if (c >= 48 && c <= 57 && isArrayIndex(keys[0]!)) return false
  }
  for (const key of keys) {
    const item = record[key]
    if (typeof item === "string") {
      const decoded = decodeLeaf(item, ctx)
      if (decoded !== item) defineKey(record, key, decoded)
    } else if (typeof item === "object") {
      if (item !== null && !decodeNodeInPlace(item, depth + 1, ctx)) return false
    } else if (typeof item === "number" && !noteNumber(item, ctx)) {
      return false
    }
  }
  return true
}

const decodeInPlaceWith = (json: unknown, ctx: InPlace): StateValue | undefined => {
  switch (typeof json) {
    case "string":
      return decodeLeaf(json, ctx)
    case "number":
      return noteNumber(json, ctx) ? json : undefined
    case "object":
      if (json === null) return null
      try {
        return decodeNodeInPlace(json, 0, ctx) ? (json as StateValue) : undefined
      } catch {
        return undefined
      }
    default:
      return json as StateValue
  }
}

/**
 * {@link decode} for JSON that `JSON.parse` has just returned and that nothing else holds: the
 * marked strings are replaced in the tree itself, which is returned, with no copy.
 *
 * `JSON.parse` cannot say everything the text said (`1.0` is `1`, a 19-digit integer is rounded,
 * `{"10":…,"2":…}` is reordered): `undefined` where the tree shows that it may have lost something
 * it cannot check (-0, non-finite numbers, an object with an array-index key, nesting deeper than
 * 1,000 levels), and the tree is then partly decoded: drop it and use {@link parse}. Otherwise pass
 * the result and the text to {@link isExactParse} before trusting it.
 *
 * With `latin1`, the JSON was parsed from UTF-8 bytes read as Latin-1 text (one char per byte:
 * much faster to make and to parse), where a mark appears as the three chars of its UTF-8 bytes;
 * the result is then right only for a text without backslashes where every non-ASCII byte belongs
 * to a mark that starts a string: check that `3 * marks` is the number of non-ASCII bytes.
 *
 * @example
 * ```ts
 * const tree = JSON.parse(text)
 * const result = decodeParsedInPlace(tree)
 * const value = result !== undefined && isExactParse(text, result) ? result.value : parse(text)
 * ```
 *
 * @since 0.1.0
 */
export const decodeParsedInPlace = (json: unknown, latin1 = false): InPlaceResult | undefined => {
  const ctx: InPlace = { latin1, marks: 0, ints: false, bigs: false }
  const value = decodeInPlaceWith(json, ctx)
  return value === undefined ? undefined : { value, marks: ctx.marks, ints: ctx.ints, bigs: ctx.bigs }
}

// a float token that JSON.parse reads as a safe integer (`1.0`, `1e5`), or a digit run long
// enough for an integer past 2^53; they may also match inside strings (then the exact parser
// runs for nothing)
const WHOLE_FLOAT_TOKEN = /[0-9]\.0+(?![0-9])|[0-9][eE][+-]?[0-9]+(?![0-9A-Za-z_])/
const LONG_DIGITS = /[0-9]{16}/

/**
 * Whether `JSON.parse` read `text` exactly, given what {@link decodeParsedInPlace} found in its
 * tree: no float token among the integers (`1.0` would read back as the int `1`) and no integer
 * token of 16 or more digits (rounded past 2^53). Conservative: `false` sends the text to the
 * exact parser, which is always right.
 *
 * @since 0.1.0
 */
export const isExactParse = (text: string, found: { readonly ints: boolean; readonly bigs: boolean }): boolean =>
  !(found.ints && WHOLE_FLOAT_TOKEN.test(text)) && !(found.bigs && LONG_DIGITS.test(text))

// ---------------------------------------------------------------------------------------------
// The exact parser
// ---------------------------------------------------------------------------------------------

// JSON text as dlt reads it: integer tokens as ints of any size, float tokens as floats, keys in
// insertion order. Throws a SyntaxError on bad text.
const parseExact = (text: string): Json => {
  const n = text.length
  let i = 0
  const error = (what: string): never => {
    throw new SyntaxError(`${what} at position ${i}`)
  }
  const skip = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 32 || c === 10 || c === 13 || c === 9) i++
      else break
    }
  }
  const readString = (): string => {
    const start = i + 1
    let escaped = false
    i = start
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 34) break
      if (c === 92) {
        escaped = true
        i += 2
        continue
      }
      if (c < 0x20) error("a control character in a string")
      i++
    }
    if (i >= n) error("an unterminated string")
    const end = i
    i++
    return escaped ? (JSON.parse(text.slice(start - 1, end + 1)) as string) : text.slice(start, end)
  }
  const digits = (): number => {
    const from = i
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c < 48 || c > 57) break
      i++
    }
    return i - from
  }
  const readNumber = (): Json => {
    const start = i
    if (text.charCodeAt(i) === 45) i++
    const first = text.charCodeAt(i)
    const count = digits()
    if (count === 0 || (first === 48 && count > 1)) error("an invalid number")
    let float = false
    if (text.charCodeAt(i) === 46) {
      i++
      float = true
      if (digits() === 0) error("an invalid number")
    }
    const e = text.charCodeAt(i)
    if (e === 101 || e === 69) {
      i++
      float = true
      const sign = text.charCodeAt(i)
      if (sign === 43 || sign === 45) i++
      if (digits() === 0) error("an invalid number")
    }
    const token = text.slice(start, i)
    if (!float) {
      if (token.length < 16) {
        const v = Number(token)
        return v === 0 ? 0 : v
      }
      const big = BigInt(token)
      return big >= MIN_SAFE && big <= MAX_SAFE ? Number(big) : big
    }
    const v = Number(token)
    if (!Number.isFinite(v)) error(`the number ${token}, beyond the double range,`)
    return isWholeFloat(v) ? new Float(v) : v
  }
  const literal = (word: string, value: Json): Json => {
    if (text.startsWith(word, i)) {
      i += word.length
      return value
    }
    return error("an unexpected token")
  }
  const readValue = (depth: number): Json => {
    if (depth > 10_000) error("nesting too deep")
    skip()
    const c = text.charCodeAt(i)
    switch (c) {
      case 123: {
        // {
        i++
        const out: Record<string, Json> = {}
        const order: Array<string> = []
        skip()
        if (text.charCodeAt(i) === 125) {
          i++
          return out
        }
        for (;;) {
          skip()
          if (text.charCodeAt(i) !== 34) error("a missing key")
          const key = readString()
          skip()
          if (text.charCodeAt(i) !== 58) error("a missing colon")
          i++
          const value = readValue(depth + 1)
          if (!Object.hasOwn(out, key)) order.push(key)
          defineKey(out, key, value)
          skip()
          const next = text.charCodeAt(i++)
          if (next === 44) continue
          if (next === 125) break
          i--
          error("a missing comma or }")
        }
        if (hasArrayIndex(order)) setKeyOrder(out, order)
        return out
      }
      case 91: {
        // [
        i++
        const out: Array<Json> = []
        skip()
        if (text.charCodeAt(i) === 93) {
          i++
          return out
        }
        for (;;) {
          out.push(readValue(depth + 1))
          skip()
          const next = text.charCodeAt(i++)
          if (next === 44) continue
          if (next === 93) break
          i--
          error("a missing comma or ]")
        }
        return out
      }
      case 34:
        return readString()
      case 116:
        return literal("true", true)
      case 102:
        return literal("false", false)
      case 110:
        return literal("null", null)
      default:
        if (c === 45 || (c >= 48 && c <= 57)) return readNumber()
        return error(i >= n ? "the end of the text" : "an unexpected token")
    }
  }
  const value = readValue(0)
  skip()
  if (i < n) error("text after the JSON value")
  return value
}

const invalidJson = (error: unknown): InvalidTypedJson =>
  new InvalidTypedJson({
    reason:
      error instanceof RangeError ? "it is nested too deeply" : error instanceof Error ? error.message : String(error)
  })

/**
 * JSON text as dlt reads it, with nothing lost: integers of any size (`bigint` past 2^53), floats
 * with whole values as {@link Float}, keys in their order. `JSON.parse` does the work when the text
 * allows (see {@link isExactParse}); an exact parser of our own the rest.
 *
 * @example
 * ```ts
 * parseJson('{"n":9223372036854775807,"f":1.0}') // Right({ n: 9223372036854775807n, f: Float(1) })
 * ```
 *
 * @since 0.1.0
 */
export const parseJson = (text: string): Either.Either<Json, InvalidTypedJson> =>
  Either.try({ try: () => parseExact(text), catch: invalidJson })

/**
 * The state value of typed JSON text, exactly (see {@link parseJson}).
 *
 * @example
 * ```ts
 * parse('{"n":"\uF0261.5"}') // Right({ n: BigDecimal 1.5 })
 * ```
 *
 * @since 0.1.0
 */
export const parse = (text: string): Either.Either<StateValue, InvalidTypedJson> => {
  let tree: unknown
  try {
    tree = JSON.parse(text)
  } catch (error) {
    return Either.left(invalidJson(error))
  }
  const fast = decodeParsedInPlace(tree)
  if (fast !== undefined && isExactParse(text, fast)) return Either.right(fast.value)
  return Either.map(parseJson(text), decode)
}

// ---------------------------------------------------------------------------------------------
// Guards, equality, Schema
// ---------------------------------------------------------------------------------------------

const isJsonWith = (value: unknown, ancestors: Set<object>): boolean => {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "bigint":
      return true
    case "number":
      return Number.isFinite(value)
    case "object": {
      if (value === null) return true
      if (value instanceof Float) return Number.isFinite(value.value)
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
 * Whether a value is a typed JSON tree (finite numbers, bigints, Floats, plain objects, no cycles).
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
export const isStateValue = (value: unknown): value is StateValue => Either.isRight(validate(value))

// What decode can return: also what JSON text can hold and dlt cannot write, a string with a lone
// surrogate (escaped, `"\ud800"`) or an integer beyond 64 bits; such a state is read, and encode
// refuses the value, with its path, when the state is written.
const isDecodedStateValue = (value: unknown): value is StateValue => {
  const checked = validate(value)
  return (
    Either.isRight(checked) ||
    checked.left.reason.includes("lone surrogate") ||
    checked.left.reason.includes("beyond 64 bits")
  )
}

/**
 * Whether two state values are stored as the same typed JSON, keys in any order (as Python compares
 * dicts): a `Date` equals the UTC `Timestamp` of its time, a `Uuid` its text, a safe `bigint` its
 * `number`; `BigDecimal` 1.50 and 1.5 differ (dlt stores them differently), as do `Timestamp`s of
 * one instant at two offsets.
 *
 * @example
 * ```ts
 * equals({ d: new Date(0) }, { d: Timestamp.fromDate(new Date(0)) }) // true
 * ```
 *
 * @since 0.1.0
 */
export const equals = (a: StateValue, b: StateValue): boolean => {
  if (a === b) return true
  const ta = stringifySorted(a)
  const tb = stringifySorted(b)
  return Either.isRight(ta) && Either.isRight(tb) && ta.right === tb.right
}

/**
 * Typed JSON trees as a Schema (checks finiteness, plain objects and cycles).
 *
 * @since 0.1.0
 */
export const JsonSchema: Schema.Schema<Json> = Schema.declare(isJson, {
  identifier: "Json",
  description: "a JSON value"
})

/**
 * The state values as a Schema; a failure message names the path and reason. It also accepts what
 * {@link decode} can return.
 *
 * @since 0.1.0
 */
export const StateValueSchema: Schema.Schema<StateValue> = Schema.declare(isDecodedStateValue, {
  identifier: "StateValue",
  description: "a value that can be kept in pipeline state",
  message: (issue) =>
    Either.match(validate(issue.actual), {
      onLeft: (error) => error.message,
      onRight: () => "Expected a state value"
    })
})

/**
 * A Schema codec between typed JSON trees and state values, for use inside other Schemas.
 *
 * @example
 * ```ts
 * const Slot = Schema.Record({ key: Schema.String, value: StateValueFromJson })
 * Schema.decodeUnknownSync(Slot)({ at: "\uF0272024-01-01T00:00:00+00:00" }) // { at: Timestamp }
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

// --- Schemas for typed keys ----------------------------------------------------------------------

/**
 * A {@link Timestamp} instance.
 *
 * @since 0.1.0
 */
export const TimestampFromSelf: Schema.Schema<Timestamp> = Schema.declare(
  (u: unknown): u is Timestamp => u instanceof Timestamp && timestampProblem(u) === undefined,
  { identifier: "Timestamp" }
)

const ValidDate = Schema.DateFromSelf.pipe(
  Schema.filter((d) => !Number.isNaN(d.getTime()), { message: () => "an invalid Date" })
)

/**
 * A typed-key Schema for datetimes: decodes a stored datetime (a `Timestamp`, or a `Date` set
 * earlier in the same run) to a {@link Timestamp}, keeping microseconds and offset.
 *
 * @example
 * ```ts
 * const LastSeen = ResourceState.key("last_seen", StateValue.TimestampSchema, () => Timestamp.fromDate(new Date(0)))
 * ```
 *
 * @since 0.1.0
 */
export const TimestampSchema: Schema.Schema<Timestamp, Timestamp | Date> = Schema.transform(
  Schema.Union(TimestampFromSelf, ValidDate),
  TimestampFromSelf,
  { strict: true, decode: (v) => (v instanceof Date ? Timestamp.fromDate(v) : v), encode: (t) => t }
)

/**
 * A typed-key Schema for a JS `Date`: decodes a stored datetime to a `Date`, and fails on one with
 * microseconds below the millisecond (a `Date` cannot hold them: use {@link TimestampSchema}).
 *
 * @since 0.1.0
 */
export const DateSchema: Schema.Schema<Date, Timestamp | Date> = Schema.transformOrFail(
  Schema.Union(TimestampFromSelf, ValidDate),
  ValidDate,
  {
    strict: true,
    decode: (v, _, ast) => {
      if (v instanceof Date) return ParseResult.succeed(v)
      return v.microsecond % 1000 === 0
        ? ParseResult.succeed(v.toDate())
        : ParseResult.fail(
            new ParseResult.Type(ast, v, `${v} has microseconds a Date cannot hold: read it with TimestampSchema`)
          )
    },
    encode: (d) => ParseResult.succeed(d)
  }
)

/**
 * A {@link Uuid} instance.
 *
 * @since 0.1.0
 */
export const UuidFromSelf: Schema.Schema<Uuid> = Schema.declare((u: unknown): u is Uuid => u instanceof Uuid, {
  identifier: "Uuid"
})

/**
 * A typed-key Schema for UUIDs: decodes the plain string dlt (orjson) stores, or a `Uuid`, to a
 * {@link Uuid}; stores its canonical text.
 *
 * @since 0.1.0
 */
export const UuidSchema: Schema.Schema<Uuid, string | Uuid> = Schema.transformOrFail(
  Schema.Union(Schema.String, UuidFromSelf),
  UuidFromSelf,
  {
    strict: true,
    decode: (v, _, ast) => {
      if (v instanceof Uuid) return ParseResult.succeed(v)
      return Either.match(makeUuid(v), {
        onLeft: (error) => ParseResult.fail(new ParseResult.Type(ast, v, error.message)),
        onRight: ParseResult.succeed
      })
    },
    encode: (u) => ParseResult.succeed(u.value)
  }
)

/**
 * A typed-key Schema for integers of any size within 64 bits: decodes a stored int (a `number`
 * when safe, else a `bigint`) to a `bigint`.
 *
 * @since 0.1.0
 */
export const BigIntSchema: Schema.Schema<bigint, number | bigint> = Schema.transformOrFail(
  Schema.Union(Schema.Number, Schema.BigIntFromSelf),
  Schema.BigIntFromSelf,
  {
    strict: true,
    decode: (v, _, ast) =>
      typeof v === "bigint"
        ? ParseResult.succeed(v)
        : Number.isSafeInteger(v)
          ? ParseResult.succeed(BigInt(v))
          : ParseResult.fail(new ParseResult.Type(ast, v, `${v} is not an integer`)),
    encode: (b) => ParseResult.succeed(b >= MIN_SAFE && b <= MAX_SAFE ? Number(b) : b)
  }
)

/**
 * A typed-key Schema for numbers that dlt may hold as a float: decodes a `number` or a
 * {@link Float} to a `number`.
 *
 * @since 0.1.0
 */
export const NumberSchema: Schema.Schema<number, number | Float> = Schema.transform(
  Schema.Union(
    Schema.Number,
    Schema.declare((u: unknown): u is Float => u instanceof Float, { identifier: "Float" })
  ),
  Schema.Number,
  { strict: true, decode: (v) => (v instanceof Float ? v.value : v), encode: (n) => n }
)
