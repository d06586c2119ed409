/**
 * dlt's `snake_case` naming convention: how table and column names are made from resource and
 * field names. A port of `dlt/common/normalizers/naming/snake_case.py` (dlt 1.26), checked against
 * dlt's own output in `test/schema/Naming.test.ts`.
 *
 * The rule, in order:
 * 1. surrounding whitespace is stripped (Python's `str.strip`);
 * 2. `+ - * @ |` become `x _ x a l`;
 * 3. every run of characters outside ASCII letters, decimal digits (any script, Python's `\d`) and
 *    `_` becomes one `_`;
 * 4. camelCase is broken (`firstName` → `first_name`, `HTTPResponse` → `http_response`) and the
 *    result lower-cased;
 * 5. a leading digit gets a `_` prefix;
 * 6. every trailing `_` becomes `x` (`name_` → `namex`, `_` → `x`);
 * 7. runs of `_` collapse to one (`a__b` → `a_b`), so `__` (dlt's path separator) never comes from
 *    a user's name;
 * 8. a name longer than `maxLength` keeps its head and tail around a 6-character tag: SHAKE-128 of
 *    the stripped input, base64 without padding, `/+` → `ab`, lower-cased (dlt's `shorten_identifier`).
 *
 * dlt refuses an empty (or all-whitespace) name; pipestate maps it to `_`, a name that no
 * non-empty input can produce (step 6), so it never collides with another field.
 *
 * @since 0.2.0
 */
import { createHash } from "node:crypto"

/**
 * PostgreSQL's identifier limit, which dlt's postgres destination also uses.
 *
 * @since 0.2.0
 */
export const DEFAULT_MAX_LENGTH = 63

/**
 * dlt's separator between a column and its variant suffix, and between path fragments.
 *
 * @since 0.2.0
 */
export const PATH_SEPARATOR = "__"

/**
 * The name of the naming convention, as the stored schema records it (`normalizers.names`).
 *
 * @since 0.2.0
 */
export const NAME = "snake_case"

// Python's str.strip() whitespace (str.isspace): differs from String.prototype.trim by U+001C..U+001F
// and U+0085 (stripped by Python) and U+FEFF (stripped by JavaScript only)
const PY_WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003,
  0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000
])

const pyStrip = (text: string): string => {
  let start = 0
  let end = text.length
  while (start < end && PY_WHITESPACE.has(text.charCodeAt(start))) start++
  while (end > start && PY_WHITESPACE.has(text.charCodeAt(end - 1))) end--
  return start === 0 && end === text.length ? text : text.slice(start, end)
}
const REDUCE = /[+\-*@|]/g
const REDUCED: Readonly<Record<string, string>> = { "+": "x", "-": "_", "*": "x", "@": "a", "|": "l" }
const NON_ALPHANUMERIC = /[^a-zA-Z\p{Nd}_]+/gu
const BREAK_1 = /([^_])([A-Z][a-z]+)/gu
const BREAK_2 = /([a-z0-9])([A-Z])/g
const LEADING_DIGIT = /^\p{Nd}/u
const TRAILING_UNDERSCORES = /_+$/
const UNDERSCORES = /__+/g

/**
 * dlt's tag for a shortened identifier: 4 bytes of SHAKE-128 (enough for a 0.1% collision chance),
 * base64 without padding, `/` → `a`, `+` → `b`, lower-cased.
 */
const tag = (identifier: string): string =>
  createHash("shake128", { outputLength: 4 })
    .update(identifier, "utf8")
    .digest("base64")
    .replace(/=+$/, "")
    .replace(/[/+]/g, (c) => (c === "/" ? "a" : "b"))
    .toLowerCase()

const HAS_SURROGATE = /[\uD800-\uDFFF]/

/**
 * dlt's `shorten_identifier`: a `normalized` name longer than `maxLength` keeps its head and tail
 * around the tag of `identifier` (the input it was made from). Lengths count code points, as
 * Python does.
 *
 * @since 0.2.0
 */
export const shorten = (normalized: string, identifier: string, maxLength: number = DEFAULT_MAX_LENGTH): string => {
  // lengths in code points, as Python counts them (only astral digits differ from UTF-16 units)
  const points = HAS_SURROGATE.test(normalized) ? Array.from(normalized) : undefined
  const length = points?.length ?? normalized.length
  if (maxLength <= 0 || length <= maxLength) return normalized
  const t = tag(identifier)
  const remaining = maxLength - t.length
  const head = Math.floor(remaining / 2) + (remaining % 2)
  const tail = Math.floor(remaining / 2)
  return points === undefined
    ? normalized.slice(0, head) + t + normalized.slice(length - tail)
    : points.slice(0, head).join("") + t + points.slice(length - tail).join("")
}

const snake = (stripped: string): string => {
  let out = stripped.replace(REDUCE, (c) => REDUCED[c]!).replace(NON_ALPHANUMERIC, "_")
  out = out.replace(BREAK_1, "$1_$2").replace(BREAK_2, "$1_$2").toLowerCase()
  if (LEADING_DIGIT.test(out)) out = `_${out}`
  const trailing = TRAILING_UNDERSCORES.exec(out)
  if (trailing !== null) out = out.slice(0, trailing.index) + "x".repeat(trailing[0].length)
  return out.replace(UNDERSCORES, "_")
}

/**
 * Normalizes a table or column name with dlt's `snake_case` convention (see the module comment).
 *
 * @example
 * ```ts
 * normalizeIdentifier("firstName")                // "first_name"
 * normalizeIdentifier("na!e")                     // "na_e"
 * normalizeIdentifier("__dlt_id")                 // "_dlt_id"
 * normalizeIdentifier('a"; DROP TABLE b; --')     // "a_drop_table_b" and one x per trailing underscore
 * ```
 *
 * @since 0.2.0
 */
export const normalizeIdentifier = (identifier: string, maxLength: number = DEFAULT_MAX_LENGTH): string => {
  const stripped = pyStrip(identifier)
  if (stripped === "") return "_"
  return shorten(snake(stripped), stripped, maxLength)
}

/**
 * The name of the variant column that holds the values of `column` whose type is `dataType`
 * (dlt's `<column>__v_<data_type>`, shortened as a whole like dlt's `shorten_fragments`).
 *
 * @example
 * ```ts
 * variantColumn("price", "double") // "price__v_double"
 * ```
 *
 * @since 0.2.0
 */
export const variantColumn = (column: string, dataType: string, maxLength: number = DEFAULT_MAX_LENGTH): string => {
  const path = `${column}${PATH_SEPARATOR}v_${dataType}`
  return shorten(path, path, maxLength)
}

/**
 * dlt's prefix of its own tables and columns (`_dlt_loads`, `_dlt_id`, ...).
 *
 * @since 0.2.0
 */
export const DLT_PREFIX = "_dlt"

/**
 * Whether a normalized name belongs to dlt (`_dlt*`, dlt's `is_dlt_table_or_column`).
 *
 * @since 0.2.0
 */
export const isDltName = (normalized: string): boolean => normalized.startsWith(DLT_PREFIX)
