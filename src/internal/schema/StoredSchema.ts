/**
 * The stored schema of one source, in dlt's format (`TStoredSchema`, schema engine 11): its tables
 * and columns with their data types and hints, the resource and write disposition of each table,
 * dlt's `_dlt_*` system tables, and dlt's normalizer settings. It is versioned and hashed exactly as
 * dlt does (`dlt/common/schema/utils.py`: `generate_version_hash`, `bump_version_if_modified`), so a
 * schema pipestate writes to `_dlt_version` is one dlt reads, and back.
 *
 * The document is plain JSON. Every function here is pure and returns a new document; keys the
 * module does not know (dlt's other hints, `x-*` extensions) are kept as they are. Key order is
 * kept too: it is part of what dlt writes, and the order of columns is part of the version hash.
 *
 * Shape (as dlt writes it; `?` = may be absent):
 * ```
 * { version, version_hash, engine_version: 11, name,
 *   tables: { <table>: { name, columns: { <column>: { name, data_type?, nullable?, primary_key?,
 *                                                      merge_key?, unique?, row_key?, variant?, ... } },
 *                        write_disposition?, resource?, parent?, description?, "x-normalizer"?, ... } },
 *   settings?: { default_hints?, detections?, preferred_types?, ... },
 *   normalizers?: { names: "snake_case", json: { module } },
 *   previous_hashes: [up to 10 hashes, newest first] }
 * ```
 *
 * A column pipestate created from a field whose name differs from the column's records that field
 * under `x-pipestate-field` (see `Normalize`): the field → column map is part of the schema.
 *
 * @example
 * ```ts
 * import * as StoredSchema from "./StoredSchema.js" // internal module
 *
 * let schema = StoredSchema.empty("chess")                      // version 1, dlt's system tables
 * schema = StoredSchema.mergeTables(schema, [playersTable])     // what a load adds
 * schema = StoredSchema.bump(schema)                            // version 2 when the content changed
 * StoredSchema.tablesOf(schema, "players_games")                // ["players_games"]
 * ```
 *
 * @since 0.2.0
 */
import { createHash } from "node:crypto"
import { Either, Option, ParseResult, Schema } from "effect"
import type * as TableSchema from "../destination/TableSchema.js"
import { DataType, toColumnType } from "./DataType.js"
import * as Naming from "./Naming.js"

// ---------------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------------

/**
 * dlt's schema engine version this module reads and writes.
 *
 * @since 0.2.0
 */
export const ENGINE_VERSION = 11

/**
 * How many previous hashes a schema keeps (dlt's `store_prev_hash`).
 *
 * @since 0.2.0
 */
export const MAX_PREVIOUS_HASHES = 10

/**
 * dlt's system tables.
 *
 * @since 0.2.0
 */
export const VERSION_TABLE = "_dlt_version"
/** @since 0.2.0 */
export const LOADS_TABLE = "_dlt_loads"
/** @since 0.2.0 */
export const PIPELINE_STATE_TABLE = "_dlt_pipeline_state"
/** @since 0.2.0 */
export const C_DLT_ID = "_dlt_id"
/** @since 0.2.0 */
export const C_DLT_LOAD_ID = "_dlt_load_id"

/**
 * The column hint that records the field a column was made from, when it differs from the
 * column's name.
 *
 * @since 0.2.0
 */
export const FIELD_HINT = "x-pipestate-field"

/**
 * The table hint that records every resource writing a table, when more than one does (dlt's
 * `resource` names one): `["a", "b"]`. dlt ignores `x-*` hints and keeps them.
 *
 * @since 0.2.0
 */
export const RESOURCES_HINT = "x-pipestate-resources"

const Extensions = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * A column (dlt's `TColumnSchema`). Only `name` is required; `data_type` is absent on a column
 * that has hints but has seen no value yet (an "incomplete" column).
 *
 * @since 0.2.0
 */
export const Column = Schema.Struct(
  {
    name: Schema.String,
    data_type: Schema.optional(DataType),
    nullable: Schema.optional(Schema.Boolean),
    primary_key: Schema.optional(Schema.Boolean),
    merge_key: Schema.optional(Schema.Boolean),
    unique: Schema.optional(Schema.Boolean),
    row_key: Schema.optional(Schema.Boolean),
    variant: Schema.optional(Schema.Boolean),
    precision: Schema.optional(Schema.Number),
    scale: Schema.optional(Schema.Number)
  },
  Extensions
)

/** @since 0.2.0 */
export type Column = typeof Column.Type

/**
 * dlt's write dispositions; `skip` is used by the system tables.
 *
 * @since 0.2.0
 */
export const WriteDisposition = Schema.Literal("skip", "append", "replace", "merge")

/** @since 0.2.0 */
export type WriteDisposition = typeof WriteDisposition.Type

/**
 * A table (dlt's `TTableSchema`). `columns` is ordered: the order is the table's column order.
 *
 * @since 0.2.0
 */
export const Table = Schema.Struct(
  {
    name: Schema.String,
    columns: Schema.Record({ key: Schema.String, value: Column }),
    write_disposition: Schema.optional(WriteDisposition),
    resource: Schema.optional(Schema.String),
    parent: Schema.optional(Schema.String),
    description: Schema.optional(Schema.String)
  },
  Extensions
)

/** @since 0.2.0 */
export type Table = typeof Table.Type

/**
 * The stored schema document (dlt's `TStoredSchema`).
 *
 * @since 0.2.0
 */
export const StoredSchemaDocument = Schema.Struct(
  {
    version: Schema.Int,
    version_hash: Schema.String,
    engine_version: Schema.Int,
    name: Schema.String,
    tables: Schema.Record({ key: Schema.String, value: Table }),
    settings: Schema.optional(Extensions),
    normalizers: Schema.optional(Extensions),
    previous_hashes: Schema.Array(Schema.String)
  },
  Extensions
)

/** @since 0.2.0 */
export type StoredSchema = typeof StoredSchemaDocument.Type

/**
 * A document that is not a stored schema pipestate can read: not JSON, not dlt's structure, or a
 * schema engine other than 10 or 11.
 *
 * @since 0.2.0
 */
export class InvalidStoredSchema extends Schema.TaggedError<InvalidStoredSchema>()("InvalidStoredSchema", {
  schemaName: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `the stored schema ${JSON.stringify(this.schemaName)} cannot be read: ${this.reason}`
  }
}

const validate = Schema.validateEither(StoredSchemaDocument)

/**
 * Checks that `value` has dlt's stored-schema structure and returns it unchanged (same object, same
 * key order). Engine 10 documents are upgraded to 11 as dlt upgrades them (a new document).
 *
 * @since 0.2.0
 */
export const fromJson = (value: unknown): Either.Either<StoredSchema, InvalidStoredSchema> => {
  const name =
    typeof value === "object" && value !== null && typeof (value as { name?: unknown }).name === "string"
      ? (value as { name: string }).name
      : "?"
  const engine =
    typeof value === "object" && value !== null ? (value as { engine_version?: unknown }).engine_version : undefined
  if (engine !== ENGINE_VERSION && engine !== 10) {
    return Either.left(
      new InvalidStoredSchema({
        schemaName: name,
        reason: `its schema engine is ${JSON.stringify(engine ?? null)}, pipestate reads engines 10 and 11 (dlt 1.x); load it once with a current dlt to upgrade it`
      })
    )
  }
  return Either.match(validate(value), {
    onLeft: (error) =>
      Either.left(
        new InvalidStoredSchema({ schemaName: name, reason: ParseResult.TreeFormatter.formatErrorSync(error) })
      ),
    onRight: () => {
      const doc = value as StoredSchema
      return Either.right(engine === 10 ? upgradeFrom10(doc) : doc)
    }
  })
}

// dlt's migration 10 → 11 only records that paths were not broken on normalize
const upgradeFrom10 = (doc: StoredSchema): StoredSchema => ({
  ...doc,
  engine_version: ENGINE_VERSION,
  normalizers: { ...(doc.normalizers ?? {}), use_break_path_on_normalize: false }
})

/**
 * The document as dlt writes it into `_dlt_version.schema`: compact JSON in the document's key
 * order.
 *
 * @since 0.2.0
 */
export const toText = (schema: StoredSchema): string => JSON.stringify(schema)

/**
 * Reads a document written by dlt or by `toText`.
 *
 * @since 0.2.0
 */
export const fromText = (text: string): Either.Either<StoredSchema, InvalidStoredSchema> => {
  const known = parsedTexts.get(text)
  if (known !== undefined) return Either.right(known)
  const read = parseText(text)
  if (Either.isRight(read)) {
    if (parsedTexts.size >= PARSED_TEXTS_KEPT) parsedTexts.delete(parsedTexts.keys().next().value as string)
    parsedTexts.set(text, read.right)
  }
  return read
}

// Every commit reads the newest stored version of its source's schema, which is nearly always the
// text the previous commit wrote: the documents of the last texts read are kept (they are never
// changed in place: every change makes a new document), so an unchanged schema is parsed, checked
// and hashed once per process.
const PARSED_TEXTS_KEPT = 16
const parsedTexts = new Map<string, StoredSchema>()

const parseText = (text: string): Either.Either<StoredSchema, InvalidStoredSchema> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return Either.left(
      new InvalidStoredSchema({
        schemaName: "?",
        reason: `it is not JSON (${error instanceof Error ? error.message : String(error)})`
      })
    )
  }
  return fromJson(parsed)
}

// ---------------------------------------------------------------------------------------------
// dlt's system tables and columns, as a dlt run writes them into the schema
// ---------------------------------------------------------------------------------------------

/**
 * `_dlt_version` as dlt declares it (`utils.version_table`).
 *
 * @since 0.2.0
 */
export const versionTable: Table = {
  name: VERSION_TABLE,
  columns: {
    version: { name: "version", data_type: "bigint", nullable: false },
    engine_version: { name: "engine_version", data_type: "bigint", nullable: false },
    inserted_at: { name: "inserted_at", data_type: "timestamp", nullable: false },
    schema_name: { name: "schema_name", data_type: "text", nullable: false },
    version_hash: { name: "version_hash", data_type: "text", nullable: false },
    schema: { name: "schema", data_type: "text", nullable: false }
  },
  write_disposition: "skip",
  resource: VERSION_TABLE,
  description: "Created by DLT. Tracks schema updates"
}

/**
 * `_dlt_loads` as dlt declares it (`utils.loads_table`).
 *
 * @since 0.2.0
 */
export const loadsTable: Table = {
  name: LOADS_TABLE,
  columns: {
    load_id: { name: "load_id", data_type: "text", nullable: false, precision: 64 },
    schema_name: { name: "schema_name", data_type: "text", nullable: true },
    status: { name: "status", data_type: "bigint", nullable: false },
    inserted_at: { name: "inserted_at", data_type: "timestamp", nullable: false },
    schema_version_hash: { name: "schema_version_hash", data_type: "text", nullable: true }
  },
  write_disposition: "skip",
  resource: LOADS_TABLE,
  description: "Created by DLT. Tracks completed loads"
}

/**
 * `_dlt_load_id` of a data table, as dlt's normalizer adds it.
 *
 * @since 0.2.0
 */
export const dltLoadIdColumn: Column = { name: C_DLT_LOAD_ID, data_type: "text", nullable: false }

/**
 * `_dlt_id` of a data table, as dlt's normalizer adds it (the row key).
 *
 * @since 0.2.0
 */
export const dltIdColumn: Column = { name: C_DLT_ID, data_type: "text", nullable: false, unique: true, row_key: true }

/**
 * `_dlt_pipeline_state` as a dlt run records it in the schema once it loaded a state row (the
 * structure of the `_dlt_version` rows in `dlt-vectors/*-state-table.json`).
 *
 * @since 0.2.0
 */
export const pipelineStateTable: Table = {
  columns: {
    version: { name: "version", data_type: "bigint", nullable: false },
    engine_version: { name: "engine_version", data_type: "bigint", nullable: false },
    pipeline_name: { name: "pipeline_name", data_type: "text", nullable: false },
    state: { name: "state", data_type: "text", nullable: false },
    created_at: { name: "created_at", data_type: "timestamp", nullable: false },
    version_hash: { name: "version_hash", data_type: "text", nullable: true },
    _dlt_load_id: { name: C_DLT_LOAD_ID, data_type: "text", nullable: false, precision: 64 },
    _dlt_id: dltIdColumn
  },
  write_disposition: "append",
  file_format: "preferred",
  name: PIPELINE_STATE_TABLE,
  resource: PIPELINE_STATE_TABLE,
  "x-normalizer": { "seen-data": true }
}

/**
 * dlt's default settings: the hints its relational normalizer gives `_dlt_*` columns. dlt also
 * declares the `iso_timestamp` detection; pipestate does not detect timestamps in text, so it does
 * not declare it (a dlt pipeline continuing this schema then keeps such text as text, as we do).
 *
 * @since 0.2.0
 */
export const defaultSettings = {
  default_hints: {
    not_null: ["_dlt_id", "_dlt_root_id", "_dlt_parent_id", "_dlt_list_idx", "_dlt_load_id"],
    parent_key: ["_dlt_parent_id"],
    root_key: ["_dlt_root_id"],
    unique: ["_dlt_id"],
    row_key: ["_dlt_id"]
  }
} as const

/**
 * dlt's normalizers: `snake_case` names and the relational JSON normalizer.
 *
 * @since 0.2.0
 */
export const defaultNormalizers = {
  names: Naming.NAME,
  json: { module: "dlt.common.normalizers.json.relational" }
} as const

// ---------------------------------------------------------------------------------------------
// Version and hash
// ---------------------------------------------------------------------------------------------

const compareCodePoints = (a: string, b: string): number => {
  // Python sorts str by code point; JavaScript's default sort compares UTF-16 units, which
  // differs only when a surrogate pair meets a character in U+E000..U+FFFF
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!
    const y = b.codePointAt(i)!
    if (x !== y) return x - y
    if (x > 0xffff) i++
  }
  return a.length - b.length
}

const sortedKeys = (record: object): Array<string> => Object.keys(record).sort(compareCodePoints)

// orjson's compact output with sorted keys; the document is plain JSON (no NaN, no undefined)
const sortedJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null"
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(",")}]`
  const record = value as Record<string, unknown>
  const parts: Array<string> = []
  for (const key of sortedKeys(record)) {
    const item = record[key]
    if (item === undefined) continue
    parts.push(`${JSON.stringify(key)}:${sortedJson(item)}`)
  }
  return `{${parts.join(",")}}`
}

/**
 * dlt's `generate_version_hash`: SHA3-256 over the document without `version`, `version_hash`,
 * `imported_version_hash` and `previous_hashes` as compact JSON with sorted keys, then over every
 * table name (sorted) followed by its column names in order; standard base64, padded.
 *
 * @example
 * ```ts
 * hash(StoredSchema.empty("chess")) === StoredSchema.empty("chess").version_hash // true
 * ```
 *
 * @since 0.2.0
 */
export const hash = (schema: StoredSchema): string => {
  const known = hashes.get(schema)
  if (known !== undefined) return known
  const computed = computeHash(schema)
  hashes.set(schema, computed)
  return computed
}

// documents are never changed in place, so an object's content hash is computed once
const hashes = new WeakMap<StoredSchema, string>()

const computeHash = (schema: StoredSchema): string => {
  const { version: _v, version_hash: _h, imported_version_hash: _i, previous_hashes: _p, ...content } = schema
  const h = createHash("sha3-256").update(sortedJson(content), "utf8")
  for (const table of sortedKeys(schema.tables)) {
    h.update(table, "utf8")
    for (const column of Object.keys(schema.tables[table]!.columns)) h.update(column, "utf8")
  }
  return h.digest("base64")
}

/**
 * dlt's `bump_version_if_modified`: a document without a hash gets its first hash (version 1, or
 * the version it has); a document whose content hash changed gets `version + 1`, its old hash
 * first in `previous_hashes` (at most 10 kept); an unchanged document is returned as it is.
 *
 * @example
 * ```ts
 * const s = StoredSchema.empty("chess")               // version 1
 * StoredSchema.bump(s) === s                           // true: nothing changed
 * StoredSchema.bump(StoredSchema.mergeTables(s, [t])).version // 2
 * ```
 *
 * @since 0.2.0
 */
export const bump = (schema: StoredSchema): StoredSchema => {
  const next = hash(schema)
  const previous = schema.version_hash
  if (previous === "") return { ...schema, version: schema.version > 0 ? schema.version : 1, version_hash: next }
  if (next === previous) return schema
  const hashes = schema.previous_hashes.includes(previous)
    ? schema.previous_hashes
    : [previous, ...schema.previous_hashes].slice(0, MAX_PREVIOUS_HASHES)
  return { ...schema, version: schema.version + 1, version_hash: next, previous_hashes: hashes }
}

/**
 * Whether the content changed since the document was last bumped.
 *
 * @since 0.2.0
 */
export const isModified = (schema: StoredSchema): boolean => hash(schema) !== schema.version_hash

/**
 * A new schema for a source: dlt's system tables `_dlt_version` and `_dlt_loads`, its default
 * hints and normalizers, version 1 with its hash set (as a new dlt `Schema` is first stored).
 *
 * `name` is used as given. dlt loads a schema only when its name is a Python identifier of at most
 * 64 characters (see `isDltSchemaName`).
 *
 * @since 0.2.0
 */
export const empty = (name: string): StoredSchema =>
  bump({
    version: 1,
    version_hash: "",
    engine_version: ENGINE_VERSION,
    name,
    tables: { [VERSION_TABLE]: versionTable, [LOADS_TABLE]: loadsTable },
    settings: defaultSettings,
    normalizers: defaultNormalizers,
    previous_hashes: []
  })

/**
 * Whether dlt accepts `name` as a schema name (a Python identifier, at most 64 characters; this
 * checks the ASCII subset of identifiers).
 *
 * @since 0.2.0
 */
export const isDltSchemaName = (name: string): boolean => name.length <= 64 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

/**
 * Whether a table belongs to dlt (`_dlt*`).
 *
 * @since 0.2.0
 */
export const isDltTable = (name: string): boolean => Naming.isDltName(name)

/**
 * The data tables (not `_dlt*`), in document order.
 *
 * @since 0.2.0
 */
export const dataTables = (schema: StoredSchema): ReadonlyArray<Table> =>
  Object.entries(schema.tables)
    .filter(([name]) => !isDltTable(name))
    .map(([, table]) => table)

/**
 * The root table of `table` (itself, or the ancestor reached through `parent`).
 */
const rootOf = (schema: StoredSchema, table: Table): Table => {
  let current = table
  const seen = new Set<string>()
  while (current.parent !== undefined && !seen.has(current.name)) {
    seen.add(current.name)
    const parent = schema.tables[current.parent]
    if (parent === undefined) break
    current = parent
  }
  return current
}

/**
 * The resource of a table: its own `resource`, the resource of its root table for a dlt nested
 * table, or (dlt's default) the root table's name.
 *
 * @since 0.2.0
 */
export const resourceOf = (schema: StoredSchema, table: Table): string => {
  const root = rootOf(schema, table)
  return root.resource ?? root.name
}

/**
 * The resources recorded under `x-pipestate-resources` of a table (none when the hint is absent or
 * not a list of strings).
 *
 * @since 0.2.0
 */
export const recordedWriters = (table: Table): ReadonlyArray<string> => {
  const hint = table[RESOURCES_HINT]
  return Array.isArray(hint) ? hint.filter((r): r is string => typeof r === "string") : []
}

/**
 * Every resource that writes a table: the resource of the table ({@link resourceOf}) first, then the
 * others its root table records under `x-pipestate-resources`, each once.
 *
 * @example
 * ```ts
 * StoredSchema.writersOf(schema, schema.tables.shared!) // ["a", "b"]
 * ```
 *
 * @since 0.2.0
 */
export const writersOf = (schema: StoredSchema, table: Table): ReadonlyArray<string> => [
  ...new Set([resourceOf(schema, table), ...recordedWriters(rootOf(schema, table))])
]

/**
 * The data tables of a resource (its root tables and their nested tables, including tables it
 * shares with other resources), in document order. This finds the tables of a resource that never
 * stored state.
 *
 * @example
 * ```ts
 * StoredSchema.tablesOf(schema, "players_games") // ["players_games"]
 * ```
 *
 * @since 0.2.0
 */
export const tablesOf = (schema: StoredSchema, resource: string): ReadonlyArray<string> =>
  dataTables(schema)
    .filter((table) => writersOf(schema, table).includes(resource))
    .map((table) => table.name)

/**
 * The resources that write data tables in the schema, in document order, each once.
 *
 * @since 0.2.0
 */
export const resources = (schema: StoredSchema): ReadonlyArray<string> => [
  ...new Set(dataTables(schema).flatMap((table) => writersOf(schema, table)))
]

const mergeColumn = (existing: Column, update: Column): Column => {
  let changed = false
  for (const key of Object.keys(update)) {
    if (existing[key] !== update[key]) {
      changed = true
      break
    }
  }
  return changed ? { ...existing, ...update } : existing
}

/**
 * Merges one table into another (dlt's `merge_table`, for the updates a load makes): columns
 * already there keep their position and take the update's hints; new columns are added at the
 * end in the update's order; table properties of the update win. Columns absent from the update
 * are kept.
 *
 * @since 0.2.0
 */
export const mergeTable = (existing: Table, update: Table): Table => {
  const columns: Record<string, Column> = { ...existing.columns }
  let changed = false
  for (const [name, column] of Object.entries(update.columns)) {
    const before = columns[name]
    const merged = before === undefined ? column : mergeColumn(before, column)
    if (merged !== before) {
      columns[name] = merged
      changed = true
    }
  }
  const { columns: _columns, ...props } = update
  for (const [key, value] of Object.entries(props)) {
    if (!isSameJson(existing[key], value)) changed = true
  }
  return changed ? { ...existing, ...props, columns } : existing
}

const isSameJson = (a: unknown, b: unknown): boolean =>
  a === b ||
  (typeof a === "object" && typeof b === "object" && a !== null && b !== null && sortedJson(a) === sortedJson(b))

/**
 * Merges table updates into the schema (new tables are added at the end, in order). The version
 * is not changed: `bump` does that once before the schema is stored.
 *
 * @since 0.2.0
 */
export const mergeTables = (schema: StoredSchema, updates: ReadonlyArray<Table>): StoredSchema => {
  let tables: Record<string, Table> | undefined
  for (const update of updates) {
    const current = (tables ?? schema.tables)[update.name]
    const merged = current === undefined ? update : mergeTable(current, update)
    if (merged === current) continue
    tables ??= { ...schema.tables }
    tables[update.name] = merged
  }
  return tables === undefined ? schema : { ...schema, tables }
}

/**
 * The schema with `_dlt_pipeline_state` declared, as after dlt's first load of a state row.
 *
 * @since 0.2.0
 */
export const withPipelineStateTable = (schema: StoredSchema): StoredSchema =>
  schema.tables[PIPELINE_STATE_TABLE] === undefined ? mergeTables(schema, [pipelineStateTable]) : schema

/**
 * The schema without `tables` and their nested tables (`drop`). dlt's own tables are never
 * dropped; unknown names are ignored.
 *
 * @since 0.2.0
 */
export const dropTables = (schema: StoredSchema, names: ReadonlyArray<string>): StoredSchema => {
  const drop = new Set(names.filter((n) => !isDltTable(n)))
  if (drop.size === 0) return schema
  const tables: Record<string, Table> = {}
  let changed = false
  for (const [name, table] of Object.entries(schema.tables)) {
    if (drop.has(name) || drop.has(rootOf(schema, table).name)) {
      changed = true
      continue
    }
    tables[name] = table
  }
  return changed ? { ...schema, tables } : schema
}

/**
 * The field a column was made from: its `x-pipestate-field` hint, or `None` when the column
 * records none (its field is spelled like the column, or dlt made it).
 *
 * @since 0.2.0
 */
export const fieldOf = (column: Column): string | undefined => {
  const field = column[FIELD_HINT]
  return typeof field === "string" ? field : undefined
}

/**
 * A stored table as a destination creates it: each column with its pipestate type (`text` for a
 * dlt type pipestate has none for, and for a column without a type yet), NOT NULL where the schema
 * says `nullable: false`, the primary-key columns, and the write disposition (`skip`, dlt's for
 * its own tables, becomes `append`).
 *
 * @example
 * ```ts
 * StoredSchema.toTableSchema(StoredSchema.versionTable)
 * // { name: "_dlt_version", writeDisposition: "append", primaryKey: [],
 * //   columns: [{ name: "version", type: "bigint", nullable: false, primaryKey: false }, ...] }
 * ```
 *
 * @since 0.2.0
 */
export const toTableSchema = (table: Table): TableSchema.TableSchema => {
  const columns = Object.values(table.columns).map(
    (column): TableSchema.Column => ({
      name: column.name,
      type: Option.getOrElse(
        column.data_type === undefined ? Option.none() : toColumnType(column.data_type),
        () => "text" as const
      ),
      nullable: column.nullable !== false,
      primaryKey: column.primary_key === true
    })
  )
  return {
    name: table.name,
    writeDisposition:
      table.write_disposition === "replace" || table.write_disposition === "merge" ? table.write_disposition : "append",
    primaryKey: columns.filter((c) => c.primaryKey).map((c) => c.name),
    columns
  }
}
