/**
 * Records become rows. Field names become column names by dlt's `snake_case` (`schema/Naming`),
 * column types are inferred from values, new columns are added as they appear, a value that does
 * not fit its column's type goes to a variant column `<column>__v_<data_type>` (dlt's rule), and
 * `_dlt_load_id` / `_dlt_id` are added. Works a chunk at a time.
 *
 * What never happens silently:
 * - **Two fields, one column.** A column holds one field. When two different fields of a table
 *   map to the same column in a run (in one record or in different records), normalization fails
 *   with `ColumnNameCollision` naming both fields, the table and the column. We chose an error over
 *   a renaming rule (e.g. suffixing the second field) because any such rule depends on the order in
 *   which fields first arrive, so the same data could land in different columns on different runs
 *   or machines, and the names would no longer be dlt's.
 * - **The mapping is stable across runs.** A column made from a field spelled differently records
 *   that field in the stored schema (`x-pipestate-field`); later runs map that field, and a field
 *   spelled like the column itself, to it, and refuse any other spelling. A column whose field is
 *   not recorded (dlt created it, or its field is spelled like it, which dlt's schema shows as is)
 *   accepts the first field that maps to it in a run, and records it when spelled differently. So
 *   the order of runs does not matter: `name` then `Name` loads both into `name`, as `Name` then
 *   `name` does (dlt's rule), while `userId` then `UserId` is refused either way.
 * - **dlt's own columns.** A field whose column name starts with `_dlt` (`_dlt_id`, `__dlt_load_id`,
 *   ...) is refused with `ReservedColumnName`.
 * - **Keys.** Primary-key columns are NOT NULL (`nullable: false`). A record whose key is missing
 *   or null fails with `MissingPrimaryKey` (resource, table, key column, position of the record in
 *   its resource's stream, 0-based). A key value of another type is coerced only when no
 *   information is lost (`"1"` into a bigint key, `7` into a text key); otherwise
 *   `InvalidPrimaryKeyValue`. A key never goes to a variant column.
 *
 * @since 0.1.0
 */
import { BigDecimal, Either, Schema } from "effect"
import type { ExistingColumn } from "../../destination/Destination.js"
import {
  type Cell,
  type Column,
  type ColumnType,
  decimalText,
  type RowBatch,
  type TableSchema,
  type WriteDisposition
} from "../destination/TableSchema.js"
import * as DataType from "../schema/DataType.js"
import * as Naming from "../schema/Naming.js"
import * as StoredSchema from "../schema/StoredSchema.js"
import { isStateValue, Timestamp } from "../../state/StateValue.js"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * A record holds a value no column type can hold (a function, a symbol, a class instance, an
 * invalid date).
 *
 * @since 0.1.0
 */
export class UnsupportedValue extends Schema.TaggedError<UnsupportedValue>()("UnsupportedValue", {
  table: Schema.String,
  column: Schema.String,
  reason: Schema.String,
  /** the value is nested in a json value (an object or array column) */
  nested: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    return this.nested === true
      ? `table ${this.table}, column ${this.column}: ${this.reason}; inside an object or array, convert it to a string, number, boolean, plain object or array in the resource (a Date or Timestamp is written as its text)`
      : `table ${this.table}, column ${this.column}: ${this.reason}; convert it to a string, number, boolean, Date, BigDecimal, Uint8Array, plain object or array in the resource`
  }
}

/**
 * Two different fields of one table map to the same column name.
 *
 * @since 0.2.0
 */
export class ColumnNameCollision extends Schema.TaggedError<ColumnNameCollision>()("ColumnNameCollision", {
  resource: Schema.String,
  table: Schema.String,
  column: Schema.String,
  /** the field that holds the column, then the field that also maps to it */
  fields: Schema.Tuple(Schema.String, Schema.String),
  position: Schema.Number
}) {
  override get message(): string {
    const [first, second] = this.fields
    return `resource ${this.resource}, table ${this.table}: the fields ${JSON.stringify(first)} and ${JSON.stringify(second)} both become the column ${this.column} (dlt's snake_case naming), so one would overwrite the other (record ${this.position}). Rename one of the fields in the resource`
  }
}

/**
 * A field's column name is reserved by dlt (`_dlt*`).
 *
 * @since 0.2.0
 */
export class ReservedColumnName extends Schema.TaggedError<ReservedColumnName>()("ReservedColumnName", {
  resource: Schema.String,
  table: Schema.String,
  field: Schema.String,
  column: Schema.String,
  position: Schema.Number
}) {
  override get message(): string {
    return `resource ${this.resource}, table ${this.table}: the field ${JSON.stringify(this.field)} becomes the column ${this.column}, and columns starting with _dlt belong to dlt (_dlt_id, _dlt_load_id, ...) (record ${this.position}). Rename the field in the resource`
  }
}

/**
 * A record lacks a value for a primary-key column.
 *
 * @since 0.2.0
 */
export class MissingPrimaryKey extends Schema.TaggedError<MissingPrimaryKey>()("MissingPrimaryKey", {
  resource: Schema.String,
  table: Schema.String,
  column: Schema.String,
  /** the record's position in its resource's stream (0-based) */
  position: Schema.Number,
  found: Schema.Literal("missing", "null")
}) {
  override get message(): string {
    return `resource ${this.resource}, table ${this.table}: record ${this.position} has ${this.found === "null" ? "a null" : "no"} primary key ${this.column}; every record needs its key (a record without one could never be matched, and would overwrite or duplicate others). Fix the record in the resource or filter it out`
  }
}

/**
 * A primary-key value that cannot be put into its column's type without losing information.
 *
 * @since 0.2.0
 */
export class InvalidPrimaryKeyValue extends Schema.TaggedError<InvalidPrimaryKeyValue>()("InvalidPrimaryKeyValue", {
  resource: Schema.String,
  table: Schema.String,
  column: Schema.String,
  position: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `resource ${this.resource}, table ${this.table}: record ${this.position} has an invalid primary key ${this.column}: ${this.reason}. Convert the key in the resource so that all records agree on its type`
  }
}

/**
 * A resource's declared keys cannot work (checked when a run is planned, before anything runs):
 * `merge` without a primary key, or a primary key naming the same column twice or a `_dlt*` column.
 *
 * @since 0.2.0
 */
export class InvalidResourceKeys extends Schema.TaggedError<InvalidResourceKeys>()("InvalidResourceKeys", {
  source: Schema.String,
  resource: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `source ${this.source}, resource ${this.resource}: ${this.reason}`
  }
}

/**
 * Everything `TableNormalizer.normalize` can fail with.
 *
 * @since 0.2.0
 */
export type NormalizeError =
  | UnsupportedValue
  | ColumnNameCollision
  | ReservedColumnName
  | MissingPrimaryKey
  | InvalidPrimaryKeyValue

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/**
 * dlt's snake_case naming of a table or column name (see `schema/Naming`), shortened to 63
 * characters as for PostgreSQL.
 *
 * @example
 * ```ts
 * normalizeIdentifier("firstName") // "first_name"
 * normalizeIdentifier("na!e")      // "na_e"
 * ```
 *
 * @since 0.1.0
 */
export const normalizeIdentifier = (name: string): string => Naming.normalizeIdentifier(name)

/**
 * The plan-time check of a resource's keys: `merge` needs a primary key; the key's fields must
 * name distinct columns and none of dlt's.
 *
 * @example
 * ```ts
 * validateResource("shop", { name: "users", writeDisposition: "merge", primaryKey: [] })
 * // Either.left(InvalidResourceKeys: ... add primaryKey ... or use writeDisposition "append")
 * ```
 *
 * @since 0.2.0
 */
export const validateResource = (
  source: string,
  resource: {
    readonly name: string
    readonly writeDisposition: WriteDisposition
    readonly primaryKey: ReadonlyArray<string>
  }
): Either.Either<void, InvalidResourceKeys> => {
  const fail = (reason: string) => Either.left(new InvalidResourceKeys({ source, resource: resource.name, reason }))
  if (resource.writeDisposition === "merge" && resource.primaryKey.length === 0) {
    return fail(
      'writeDisposition "merge" matches records on their primary key, and the resource declares none (its rows would only be appended). Add primaryKey: ["<field>", ...] with the fields that identify a record, or use writeDisposition: "append"'
    )
  }
  const seen = new Map<string, string>()
  for (const field of resource.primaryKey) {
    const column = Naming.normalizeIdentifier(field)
    if (Naming.isDltName(column)) {
      return fail(
        `the primary key field ${JSON.stringify(field)} becomes the column ${column}, which belongs to dlt (_dlt*)`
      )
    }
    const other = seen.get(column)
    if (other !== undefined) {
      return fail(
        `the primary key fields ${JSON.stringify(other)} and ${JSON.stringify(field)} both become the column ${column}`
      )
    }
    seen.set(column, field)
  }
  return Either.right(undefined)
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

type Inferred = ColumnType | null | UnsupportedReason

interface UnsupportedReason {
  readonly unsupported: string
}

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const infer = (value: unknown): Inferred => {
  switch (typeof value) {
    case "string":
      return "text"
    case "number":
      return Number.isSafeInteger(value) ? "bigint" : "double"
    case "bigint":
      return "bigint"
    case "boolean":
      return "boolean"
    case "undefined":
      return null
    case "object": {
      if (value === null) return null
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? { unsupported: "an invalid Date" } : "timestamp"
      if (value instanceof Timestamp) return isStateValue(value) ? "timestamp" : { unsupported: "an invalid Timestamp" }
      if (value instanceof Uint8Array) return "bytes"
      if (BigDecimal.isBigDecimal(value)) return "decimal"
      if (Array.isArray(value) || isPlainObject(value)) return "json"
      return { unsupported: describeInstance(value) }
    }
    default:
      return { unsupported: `a ${typeof value}` }
  }
}

// deeper nesting than this in a json value is refused (JSON.stringify would also meet a cycle here)
const MAX_JSON_DEPTH = 256

// what an object that is no plain value is, for messages: its class, or for Effect's data types
// (whose class is Object) the type their toJSON names (`an Effect Option`, `an Effect DateTime`)
const describeInstance = (value: object): string => {
  const name: unknown = value.constructor?.name
  if (typeof name === "string" && name !== "" && name !== "Object") return `an instance of ${name}`
  try {
    const json: unknown = (value as { readonly toJSON?: () => unknown }).toJSON?.()
    const id = typeof json === "object" && json !== null ? (json as { readonly _id?: unknown })._id : undefined
    if (typeof id === "string") return `an Effect ${id}`
  } catch {
    // a toJSON that throws tells nothing more
  }
  return "an object that is not a plain object"
}

const describeNested = (value: unknown): string => {
  if (typeof value !== "object" || value === null) return `a ${typeof value}`
  if (BigDecimal.isBigDecimal(value)) return "a BigDecimal"
  return describeInstance(value)
}

/** Why a json value would not be written as what it holds: the path inside it, and what is there. */
class JsonProblem {
  constructor(
    readonly path: Array<string>,
    readonly what: string
  ) {}
}

/**
 * A json value (a plain object or array) as it is written, in one walk: the value itself; a copy
 * with every `Date` inside as a `Timestamp`, which JSON writes as dlt writes a datetime (Python's
 * isoformat, `2024-01-02T03:04:05.678000+00:00`, not `Date.toJSON`'s `…05.678Z`: one spelling per
 * json column; only the containers on the way to a Date are copied, the resource's value is never
 * changed); or the {@link JsonProblem} of the first nested value JSON would drop, empty or rewrite —
 * a function, symbol or bigint, an invalid Date, a Map, Set, Uint8Array, BigDecimal or other class
 * instance (JSON writes `{}`, its fields or a debugging form) — or of nesting past 256 levels.
 * Strings, numbers, booleans, null, plain objects, arrays and Timestamps are fine; `undefined` in
 * an object is a missing key, as in JSON.
 */
const jsonCell = (value: unknown, depth: number): unknown => {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "undefined":
      return value
    case "object": {
      if (value === null || value instanceof Timestamp) return value
      if (value instanceof Date) {
        return Number.isNaN(value.getTime()) ? new JsonProblem([], "an invalid Date") : Timestamp.fromDate(value)
      }
      if (depth >= MAX_JSON_DEPTH)
        return new JsonProblem([], `values nested deeper than ${MAX_JSON_DEPTH} levels (a cycle?)`)
      if (Array.isArray(value)) {
        let copy: Array<unknown> | undefined
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i]
          const cell = jsonCell(item, depth + 1)
          if (cell instanceof JsonProblem) {
            cell.path.push(`[${i}]`)
            return cell
          }
          if (cell !== item) {
            copy ??= [...value]
            copy[i] = cell
          }
        }
        return copy ?? value
      }
      if (isPlainObject(value)) {
        const record = value as Record<string, unknown>
        let copy: Record<string, unknown> | undefined
        for (const key in record) {
          const item = record[key]
          const cell = jsonCell(item, depth + 1)
          if (cell instanceof JsonProblem) {
            cell.path.push(/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`)
            return cell
          }
          if (cell !== item) {
            copy ??= { ...record }
            Object.defineProperty(copy, key, { value: cell, enumerable: true, writable: true, configurable: true })
          }
        }
        return copy ?? value
      }
      // other classes' toJSON (Effect's data types among them) write a debugging form, not the value
      return new JsonProblem([], describeNested(value))
    }
    default:
      return new JsonProblem([], describeNested(value))
  }
}

const INT8_MIN = -(2n ** 63n)
const INT8_MAX = 2n ** 63n - 1n

/** Converts `value` (inferred as `from`) into a cell of a column of type `to`, or undefined when it does not fit. */
const coerce = (value: unknown, from: ColumnType, to: ColumnType): Cell | undefined => {
  if (from === to) {
    if (to === "bigint" && typeof value === "bigint" && (value < INT8_MIN || value > INT8_MAX)) return undefined
    return value as Cell
  }
  switch (to) {
    case "double":
      // an integer a double holds exactly (a bigint past 2^53 that it would round goes to a variant)
      if (from === "bigint") {
        if (typeof value !== "bigint") return Number(value)
        const double = Number(value)
        return BigInt(double) === value ? double : undefined
      }
      return undefined
    case "text":
      if (from === "timestamp") return (value as Date).toISOString()
      if (from === "decimal") return decimalText(value as BigDecimal.BigDecimal)
      if (from === "bigint" || from === "double" || from === "boolean") return String(value)
      return undefined
    case "decimal":
      if (from === "bigint" || from === "double") {
        return Either.getOrUndefined(Either.fromOption(BigDecimal.fromString(String(value)), () => undefined))
      }
      return undefined
    case "timestamp":
      return from === "text" ? timestampOfText(value as string) : undefined
    default:
      return undefined
  }
}

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/

/**
 * ISO 8601 text as a timestamp cell, exactly: microseconds kept, an offset kept, no offset read as
 * UTC (as dlt reads a naive datetime; never the machine's time zone). `undefined` when it is not
 * such text, or not exactly (more than six fraction digits): the value then goes to a variant column.
 */
const timestampOfText = (text: string): Timestamp | undefined => {
  if (!ISO_TIMESTAMP.test(text)) return undefined
  const parsed = Either.getOrUndefined(Timestamp.parse(text))
  return parsed === undefined ? undefined : parsed.isNaive ? parsed.withOffset(0) : parsed
}
const CANONICAL_INTEGER = /^-?(0|[1-9]\d*)$/
const DECIMAL_TEXT = /^-?\d+(\.\d+)?$/

const integerCell = (n: bigint): number | bigint | string =>
  n < INT8_MIN || n > INT8_MAX
    ? `${n} is outside the 64-bit range of a bigint key`
    : n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(n)
      : n

const describe = (value: unknown, type: ColumnType): string => {
  if (type === "text") return `the text ${JSON.stringify(value)}`
  if (type === "json") return "an object or array"
  if (type === "decimal") return `the decimal ${BigDecimal.format(value as BigDecimal.BigDecimal)}`
  if (type === "timestamp") return `the timestamp ${(value as Date | Timestamp).toISOString()}`
  if (type === "bytes") return "bytes"
  return `the ${type} ${String(value)}`
}

/**
 * A key value (inferred as `from`) as a cell of a key column of type `to`: the cell, or the reason
 * it cannot be one without losing information.
 */
const coerceKey = (value: unknown, from: ColumnType, to: ColumnType): { readonly cell: Cell } | string => {
  if (from === "json") return "a key must be a single value, not an object or array"
  if (from === to) {
    if (typeof value === "bigint" && (value < INT8_MIN || value > INT8_MAX)) {
      return `${value} is outside the 64-bit range of a bigint key`
    }
    return { cell: value as Cell }
  }
  const lossy = `${describe(value, from)} does not fit the key column's type ${DataType.fromColumnType(to)} without losing information`
  switch (to) {
    case "bigint": {
      if (from === "text" && CANONICAL_INTEGER.test(value as string)) {
        const cell = integerCell(BigInt(value as string))
        return typeof cell === "string" ? cell : { cell }
      }
      if (from === "decimal") {
        const d = BigDecimal.normalize(value as BigDecimal.BigDecimal)
        if (d.scale <= 0) {
          const cell = integerCell(d.value * 10n ** BigInt(-d.scale))
          return typeof cell === "string" ? cell : { cell }
        }
      }
      return lossy
    }
    case "text":
      if (from === "bigint") return { cell: String(value) }
      return lossy
    case "double":
      if (from === "bigint" && typeof value === "number") return { cell: value }
      return lossy
    case "decimal":
      if (from === "bigint") return { cell: BigDecimal.fromBigInt(BigInt(value as number | bigint)) }
      if (from === "text" && DECIMAL_TEXT.test(value as string)) {
        return Either.match(
          Either.fromOption(BigDecimal.fromString(value as string), () => lossy),
          {
            onLeft: (reason) => reason,
            onRight: (cell) => ({ cell })
          }
        )
      }
      return lossy
    case "timestamp":
      if (from === "text") {
        const cell = timestampOfText(value as string)
        if (cell !== undefined) return { cell }
      }
      return lossy
    default:
      return lossy
  }
}

// ---------------------------------------------------------------------------------------------
// The normalizer
// ---------------------------------------------------------------------------------------------

/**
 * Where records come from, for error messages: the resource and the position of the chunk's first
 * record in the resource's stream.
 *
 * @since 0.2.0
 */
export interface RecordOrigin {
  readonly resource: string
  readonly offset: number
}

interface ColumnInfo {
  /** the stored schema's column, when the table was stored before */
  readonly stored: StoredSchema.Column | undefined
  /** the field the column holds across runs, when known (`undefined`: unclaimed) */
  field: string | undefined
  /** the field that mapped to the column in this run (`undefined`: none yet) */
  runField: string | undefined
  readonly variant: boolean
}

/**
 * Turns records of one table into row batches, keeping the table's columns across chunks and the
 * field → column mapping of the stored schema.
 *
 * @example
 * ```ts
 * const users = new TableNormalizer({ name: "users", resource: "users", writeDisposition: "merge", primaryKey: ["id"] })
 * users.normalize([{ id: 1, userName: "ada" }], loadId, newId, { resource: "users", offset: 0 })
 * // Right({ table: "users", columns: [id, user_name, _dlt_load_id, _dlt_id], rows: [[1, "ada", loadId, "..."]] })
 * users.storedTable() // the table for the stored schema (user_name records x-pipestate-field: "userName")
 * ```
 *
 * @since 0.1.0
 */
export class TableNormalizer {
  readonly name: string
  readonly resource: string
  /** every resource writing the table (`resource` first) */
  readonly resources: ReadonlyArray<string>
  readonly writeDisposition: WriteDisposition
  /** the primary-key column names */
  readonly primaryKey: ReadonlyArray<string>
  private readonly keyFields: ReadonlyArray<string>
  private readonly columns: Array<Column> = []
  private readonly info: Array<ColumnInfo> = []
  private readonly index = new Map<string, number>()
  /** field → column, for fields already accepted */
  private readonly names = new Map<string, string>()
  /** field → column of the stored schema's recorded fields (`x-pipestate-field`) */
  private readonly recorded = new Map<string, string>()
  /** field → position of its column, once a value of the field went there (the hot path's one lookup) */
  private readonly fieldPositions = new Map<string, number>()
  /** positions of the primary-key columns (-1: not created yet), in `primaryKey` order */
  private readonly keyPositions: Array<number>
  private readonly stored: StoredSchema.Table | undefined
  private rowCount = 0

  /**
   * @param options.name the table name (already normalized)
   * @param options.resource the resource the table belongs to (errors, the stored table); default `name`
   * @param options.resources every resource writing the table, when several do (recorded in the
   *   stored table under `x-pipestate-resources`); default `[resource]`
   * @param options.primaryKey the resource's primary-key fields (as the records spell them)
   * @param options.stored the table in the source's stored schema, if the table was loaded before
   * @param options.existing the table's columns in the destination (columns the stored table lacks are added)
   */
  constructor(options: {
    readonly name: string
    readonly resource?: string
    readonly resources?: ReadonlyArray<string>
    readonly writeDisposition: WriteDisposition
    readonly primaryKey?: ReadonlyArray<string>
    readonly existing?: ReadonlyArray<ExistingColumn>
    readonly stored?: StoredSchema.Table
  }) {
    this.name = options.name
    this.resource = options.resource ?? options.name
    this.resources = [...new Set([this.resource, ...(options.resources ?? [])])]
    this.writeDisposition = options.writeDisposition
    this.stored = options.stored
    // columns of the stored schema first (their order is the table's), then any the destination adds
    const recorded = this.recorded
    for (const column of Object.values(options.stored?.columns ?? {})) {
      const field = StoredSchema.fieldOf(column)
      if (field !== undefined) recorded.set(field, column.name)
    }
    this.keyFields = options.primaryKey ?? []
    this.primaryKey = this.keyFields.map((field) => recorded.get(field) ?? Naming.normalizeIdentifier(field))
    this.keyPositions = this.primaryKey.map(() => -1)
    for (const column of Object.values(options.stored?.columns ?? {})) {
      const type = column.data_type === undefined ? undefined : DataType.toColumnType(column.data_type)
      this.addColumn(column.name, type === undefined || type._tag === "None" ? "text" : type.value, {
        stored: column,
        field: StoredSchema.fieldOf(column),
        runField: undefined,
        variant: column.variant === true
      })
    }
    for (const column of options.existing ?? []) {
      this.addColumn(column.name, column.type ?? "text", {
        stored: undefined,
        field: undefined,
        runField: undefined,
        variant: false
      })
    }
  }

  /** rows normalized so far */
  get rows(): number {
    return this.rowCount
  }

  // a table always has dlt's columns, even before its first row (a `replace` table with none)
  private ensureDltColumns(): void {
    const none: ColumnInfo = { stored: undefined, field: undefined, runField: undefined, variant: false }
    this.addColumn(StoredSchema.C_DLT_LOAD_ID, "text", none)
    this.addColumn(StoredSchema.C_DLT_ID, "text", { ...none })
  }

  /** the table as it stands now, for the destination */
  schema(): TableSchema {
    this.ensureDltColumns()
    return {
      name: this.name,
      writeDisposition: this.writeDisposition,
      primaryKey: this.primaryKey,
      columns: [...this.columns]
    }
  }

  /**
   * The table as it stands now, for the stored schema (dlt's form): columns in order with their
   * data types and hints, the resource, the write disposition, and `x-normalizer.seen-data` once
   * rows were loaded. Merge it with `StoredSchema.mergeTables`.
   */
  storedTable(): StoredSchema.Table {
    this.ensureDltColumns()
    const columns: Record<string, StoredSchema.Column> = {}
    const keys = new Set(this.primaryKey)
    this.columns.forEach((column, position) => {
      const info = this.info[position]!
      const isKey = keys.has(column.name)
      let stored: StoredSchema.Column
      if (info.stored !== undefined) {
        stored = info.stored
        if (stored.data_type === undefined) stored = { ...stored, data_type: DataType.fromColumnType(column.type) }
        if (isKey && (stored.primary_key !== true || stored.nullable !== false)) {
          stored = { ...stored, nullable: false, primary_key: true }
        } else if (!isKey && stored.primary_key === true) {
          // the resource's key changed: only its current columns are the primary key (dlt drops
          // the compound hint from the others); the column stays NOT NULL as the table has it
          const { primary_key: _dropped, ...rest } = stored
          stored = rest as StoredSchema.Column
        }
      } else if (column.name === StoredSchema.C_DLT_LOAD_ID) {
        stored = StoredSchema.dltLoadIdColumn
      } else if (column.name === StoredSchema.C_DLT_ID) {
        stored = StoredSchema.dltIdColumn
      } else if (isKey) {
        stored = {
          name: column.name,
          nullable: false,
          primary_key: true,
          data_type: DataType.fromColumnType(column.type)
        }
      } else {
        stored = { name: column.name, data_type: DataType.fromColumnType(column.type), nullable: true }
        if (info.variant) stored = { ...stored, variant: true }
      }
      if (
        !info.variant &&
        info.field !== undefined &&
        info.field !== column.name &&
        StoredSchema.fieldOf(stored) === undefined
      ) {
        stored = { ...stored, [StoredSchema.FIELD_HINT]: info.field }
      }
      columns[column.name] = stored
    })
    const before = this.stored?.["x-normalizer"]
    const stored = typeof before === "object" && before !== null ? (before as Record<string, unknown>) : undefined
    const normalizer =
      this.rowCount > 0 && stored?.["seen-data"] !== true ? { "x-normalizer": { ...stored, "seen-data": true } } : {}
    // every resource that ever wrote the table, when several did (`resource` names one): `drop`
    // finds them all through it
    const writers = [
      ...new Set([
        ...(this.stored === undefined ? [] : [this.stored.resource ?? this.stored.name]),
        ...(this.stored === undefined ? [] : StoredSchema.recordedWriters(this.stored)),
        ...this.resources
      ])
    ]
    const shared = writers.length > 1 ? { [StoredSchema.RESOURCES_HINT]: writers } : {}
    if (this.stored !== undefined) {
      return { ...this.stored, columns, write_disposition: this.writeDisposition, ...normalizer, ...shared }
    }
    return {
      columns,
      write_disposition: this.writeDisposition,
      name: this.name,
      resource: this.resource,
      ...normalizer,
      ...shared
    }
  }

  private addColumn(name: string, type: ColumnType, info: ColumnInfo): number {
    const existing = this.index.get(name)
    if (existing !== undefined) return existing
    const position = this.columns.length
    const isKey = this.primaryKey.includes(name)
    const isDlt = name === StoredSchema.C_DLT_ID || name === StoredSchema.C_DLT_LOAD_ID
    const nullable = info.stored !== undefined ? info.stored.nullable !== false && !isKey : !isKey && !isDlt
    this.columns.push({ name, type, nullable, primaryKey: isKey })
    this.info.push(info)
    this.index.set(name, position)
    if (isKey) this.keyPositions[this.primaryKey.indexOf(name)] = position
    return position
  }

  /** the column of `field`, or the error that forbids it (first sight of a field only) */
  private columnName(field: string, resource: string, position: number): string | NormalizeError {
    let name = this.names.get(field)
    if (name !== undefined) return name
    name = this.recorded.get(field) ?? Naming.normalizeIdentifier(field)
    if (Naming.isDltName(name)) {
      return new ReservedColumnName({ resource, table: this.name, field, column: name, position })
    }
    const at = this.index.get(name)
    if (at !== undefined) {
      const info = this.info[at]!
      if (info.variant) {
        // a variant column is never a field's own column (snake_case never yields "__")
        return new ColumnNameCollision({ resource, table: this.name, column: name, fields: [name, field], position })
      }
      // in one run, a column holds one field
      const holder =
        info.runField !== undefined && info.runField !== field
          ? info.runField
          : // across runs: the field recorded for it, or a field spelled like the column itself
            info.field !== undefined && info.field !== field && field !== name
            ? info.field
            : undefined
      if (holder !== undefined) {
        return new ColumnNameCollision({ resource, table: this.name, column: name, fields: [holder, field], position })
      }
      info.runField = field
      if (info.field === undefined && field !== name) info.field = field
    }
    this.names.set(field, name)
    return name
  }

  private newColumn(name: string, field: string, type: ColumnType): number {
    return this.addColumn(name, type, { stored: undefined, field, runField: field, variant: false })
  }

  private variant(base: string, field: string, type: ColumnType): number {
    return this.addColumn(Naming.variantColumn(base, DataType.fromColumnType(type)), type, {
      stored: undefined,
      field,
      runField: field,
      variant: true
    })
  }

  private keyError(record: Record<string, unknown>, k: number, resource: string, position: number): MissingPrimaryKey {
    const column = this.primaryKey[k]!
    const field = this.keyFields[k]!
    const found = Object.hasOwn(record, field) && record[field] === null ? "null" : "missing"
    return new MissingPrimaryKey({ resource, table: this.name, column, position, found })
  }

  /**
   * Normalizes one chunk of records. `ids` yields one `_dlt_id` per row; `origin` names the
   * resource and the position of the chunk's first record for errors (default: this table, and
   * the count of rows normalized so far).
   */
  normalize(
    records: Iterable<unknown>,
    loadId: string,
    ids: () => string,
    origin?: RecordOrigin
  ): Either.Either<RowBatch, NormalizeError> {
    const rows: Array<Array<Cell>> = []
    const resource = origin?.resource ?? this.resource
    const offset = origin?.offset ?? this.rowCount
    let loadIdColumn = this.index.get(StoredSchema.C_DLT_LOAD_ID) ?? -1
    let idColumn = this.index.get(StoredSchema.C_DLT_ID) ?? -1
    const keyPositions = this.keyPositions
    const keyCount = keyPositions.length
    for (const raw of records) {
      const record: Record<string, unknown> =
        typeof raw === "object" && raw !== null && !Array.isArray(raw) && isPlainObject(raw)
          ? (raw as Record<string, unknown>)
          : { value: raw }
      const row: Array<Cell> = []
      for (const key in record) {
        let value = record[key]
        const type = infer(value)
        if (type === null) continue
        if (type === "json") {
          const cell = jsonCell(value, 0)
          if (cell instanceof JsonProblem) {
            const problem = cell
            const path = problem.path.reverse().join("")
            const at = path.length > 120 ? `${path.slice(0, 120)}…` : path
            return Either.left(
              new UnsupportedValue({
                table: this.name,
                column: this.names.get(key) ?? Naming.normalizeIdentifier(key),
                reason: `the json value holds ${problem.what}${at === "" ? "" : ` at ${at}`}, which JSON would drop, empty or rewrite (record ${offset + rows.length})`,
                nested: true
              })
            )
          }
          value = cell
        }
        // the common case: a field seen before, whose value has its column's type (JS bigints
        // are range-checked, and keys coerced: the path below)
        const known = this.fieldPositions.get(key)
        if (known !== undefined && typeof type === "string" && typeof value !== "bigint") {
          const column = this.columns[known]!
          if (column.type === type && !column.primaryKey) {
            while (row.length < known) row.push(null)
            row[known] = value as Cell
            continue
          }
        }
        const name = this.columnName(key, resource, offset + rows.length)
        if (typeof name !== "string") return Either.left(name)
        if (typeof type === "object") {
          return Either.left(
            new UnsupportedValue({ table: this.name, column: name, reason: `the value is ${type.unsupported}` })
          )
        }
        let position = this.index.get(name)
        if (position === undefined) {
          if (type === "json" && this.primaryKey.includes(name)) {
            return Either.left(
              new InvalidPrimaryKeyValue({
                resource,
                table: this.name,
                column: name,
                position: offset + rows.length,
                reason: "a key must be a single value, not an object or array"
              })
            )
          }
          position = this.newColumn(name, key, type)
        }
        this.fieldPositions.set(key, position)
        const column = this.columns[position]!
        let cell: Cell | undefined
        if (column.primaryKey) {
          const key = coerceKey(value, type, column.type)
          if (typeof key === "string") {
            return Either.left(
              new InvalidPrimaryKeyValue({
                resource,
                table: this.name,
                column: name,
                position: offset + rows.length,
                reason: key
              })
            )
          }
          cell = key.cell
        } else {
          cell = coerce(value, type, column.type)
          if (cell === undefined) {
            if (type === "bigint" && typeof value === "bigint" && column.type === "bigint") {
              // beyond int8: keep it exactly as a decimal
              position = this.variant(name, key, "decimal")
              cell = BigDecimal.fromBigInt(value)
            } else {
              position = this.variant(name, key, type)
              cell = value as Cell
            }
          }
        }
        while (row.length < position) row.push(null)
        row[position] = cell
      }
      if (loadIdColumn < 0) {
        // dlt's order: a new table's own columns first, then _dlt_load_id and _dlt_id
        loadIdColumn = this.addColumn(StoredSchema.C_DLT_LOAD_ID, "text", {
          stored: undefined,
          field: undefined,
          runField: undefined,
          variant: false
        })
      }
      if (idColumn < 0) {
        idColumn = this.addColumn(StoredSchema.C_DLT_ID, "text", {
          stored: undefined,
          field: undefined,
          runField: undefined,
          variant: false
        })
      }
      for (let k = 0; k < keyCount; k++) {
        const p = keyPositions[k]!
        if (p < 0 || p >= row.length || row[p] === null || row[p] === undefined) {
          return Either.left(this.keyError(record, k, resource, offset + rows.length))
        }
      }
      while (row.length <= Math.max(loadIdColumn, idColumn)) row.push(null)
      row[loadIdColumn] = loadId
      row[idColumn] = ids()
      rows.push(row)
    }
    this.rowCount += rows.length
    return Either.right({ table: this.name, columns: [...this.columns], rows })
  }
}
