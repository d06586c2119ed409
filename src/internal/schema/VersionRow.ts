/**
 * A row of dlt's `_dlt_version` table: one stored schema version. dlt writes one row per schema
 * version it loads with (`version`, `engine_version`, `inserted_at`, `schema_name`,
 * `version_hash`, `schema`), in that column order, all NOT NULL; `schema` is the document as
 * compact JSON (see `dlt-vectors/sqlite-state-table.json` and `postgres-state-table.json`).
 *
 * The newest schema of a source is the row of its `schema_name` with the highest `version`
 * (ties: the newest `inserted_at`), as dlt's `get_stored_schema` reads it.
 *
 * @example
 * ```ts
 * import { Either } from "effect"
 * import * as StoredSchema from "./StoredSchema.js" // internal modules
 * import * as VersionRow from "./VersionRow.js"
 *
 * const row = VersionRow.toVersionRow(StoredSchema.empty("chess"), new Date())
 * // { version: 1, engine_version: 11, inserted_at, schema_name: "chess", version_hash: "...", schema: '{"version":1,...}' }
 * const back = VersionRow.fromVersionRow(row) // Either.right(the same document)
 * ```
 *
 * @since 0.2.0
 */
import { Either } from "effect"
import * as StoredSchema from "./StoredSchema.js"

/**
 * The columns of `_dlt_version`, in dlt's order, with their dlt data types.
 *
 * @since 0.2.0
 */
export const COLUMNS = ["version", "engine_version", "inserted_at", "schema_name", "version_hash", "schema"] as const

/**
 * A `_dlt_version` row as pipestate writes it. A destination binds `inserted_at` as its timestamp
 * type (UTC; dlt's SQLite destination stores naive UTC text `YYYY-MM-DD HH:MM:SS.ffffff`, its
 * PostgreSQL destination `timestamptz`).
 *
 * @since 0.2.0
 */
export interface VersionRow {
  readonly version: number
  readonly engine_version: number
  readonly inserted_at: Date
  readonly schema_name: string
  readonly version_hash: string
  readonly schema: string
}

/**
 * A `_dlt_version` row as a destination returns it: integers may come back as strings (PostgreSQL
 * `int8`) or bigints, and `inserted_at` in any form (it is not read).
 *
 * @since 0.2.0
 */
export interface StoredVersionRow {
  readonly version: unknown
  readonly engine_version?: unknown
  readonly inserted_at?: unknown
  readonly schema_name: unknown
  readonly version_hash: unknown
  readonly schema: unknown
}

/**
 * The row that stores `schema`. The document should be bumped first (`StoredSchema.bump`), so that
 * its version and hash describe its content.
 *
 * @since 0.2.0
 */
export const toVersionRow = (schema: StoredSchema.StoredSchema, insertedAt: Date): VersionRow => ({
  version: schema.version,
  engine_version: schema.engine_version,
  inserted_at: insertedAt,
  schema_name: schema.name,
  version_hash: schema.version_hash,
  schema: StoredSchema.toText(schema)
})

const toInt = (value: unknown): number | undefined => {
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : undefined
  if (typeof value === "bigint")
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : undefined
  if (typeof value === "string" && /^-?\d+$/.test(value)) return toInt(Number(value))
  return undefined
}

/**
 * Reads the schema a `_dlt_version` row holds (written by dlt or by pipestate). The row's
 * `schema_name`, `version` and `version_hash` must agree with the document's; a row that
 * disagrees with its own document is reported, never silently trusted.
 *
 * @since 0.2.0
 */
export const fromVersionRow = (
  row: StoredVersionRow
): Either.Either<StoredSchema.StoredSchema, StoredSchema.InvalidStoredSchema> => {
  const name = typeof row.schema_name === "string" ? row.schema_name : "?"
  const invalid = (reason: string) =>
    Either.left(new StoredSchema.InvalidStoredSchema({ schemaName: name, reason: `its _dlt_version row: ${reason}` }))
  if (typeof row.schema !== "string") return invalid("the schema column is not text")
  const version = toInt(row.version)
  if (version === undefined) return invalid(`the version ${String(row.version)} is not an integer`)
  return Either.flatMap(StoredSchema.fromText(row.schema), (schema) => {
    if (schema.name !== name)
      return invalid(`schema_name is ${JSON.stringify(name)} but the document is named ${JSON.stringify(schema.name)}`)
    if (schema.version !== version) return invalid(`version is ${version} but the document says ${schema.version}`)
    if (schema.version_hash !== row.version_hash) {
      return invalid(
        `version_hash is ${JSON.stringify(row.version_hash)} but the document says ${JSON.stringify(schema.version_hash)}`
      )
    }
    return Either.right(schema)
  })
}
