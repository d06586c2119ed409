/**
 * `Dataset`: read the loaded data back, with the same query text and the same JS values on every
 * destination — dlt's `pipeline.dataset()` (after a run: {@link open}, or `Pipeline.dataset`) and
 * `dlt.current.pipeline().dataset()` (inside a resource: `PipelineContext.dataset`).
 *
 * **Statements** are @effect/sql tagged templates: `dataset.query` binds every interpolated value as
 * a parameter in the dialect's syntax (`?` on SQLite, `$1` on PostgreSQL), never spliced into the
 * text, so one query text runs on both. Interpolate `dataset.table(name)` for a table (quoted and
 * qualified for the destination), and any @effect/sql fragment (`dataset.sql.and([...])`,
 * `dataset.sql("column")` for an identifier). Values are bound as the destination stores them:
 * booleans as 1/0 on SQLite, `Date`/`Timestamp` as the stored timestamp text (microseconds kept),
 * `BigDecimal` as text, objects and arrays as JSON text, `CalendarDate`/`TimeOfDay` as ISO text.
 *
 * **Rows** are decoded by the stored schema (`_dlt_version`) to the same values everywhere:
 *
 * | dlt `data_type` | JS value |
 * | --- | --- |
 * | `text` | `string` |
 * | `bigint` | `number` when \|v\| ≤ 2^53−1 (`Number.MAX_SAFE_INTEGER`), else `bigint` (the state's rule) |
 * | `double` | `number` |
 * | `bool` | `boolean` (SQLite's 1/0 included) |
 * | `timestamp` | `StateValue.Timestamp` in UTC (`+00:00`), microseconds kept |
 * | `date` | `StateValue.CalendarDate` |
 * | `time` | `StateValue.TimeOfDay` |
 * | `decimal`, `wei` | `BigDecimal`, normalized (`12.50` → `12.5`: not every destination keeps a scale); `StateValue.SpecialDecimal` for NaN/±Infinity |
 * | `binary` | `Uint8Array` (a plain copy, never a driver `Buffer`) |
 * | `json` | the parsed JSON value (object key order is the destination's: PostgreSQL's jsonb orders keys) |
 * | NULL | `null` |
 *
 * A result column gets the type of the column of the same name in the tables the statement names
 * through `dataset.table(...)`; a statement naming none uses every table of the dataset's schemas.
 * A name two of those tables type differently, and a column no stored schema knows (an expression
 * such as `count(*)`, an alias, a table loaded by someone else) follow the **driver-neutral rule**:
 * its type comes from the database when the driver says it (PostgreSQL: `int2/4/8` and `oid` as
 * bigint, `float4/8` double, `bool`, `text`/`varchar`, `bytea` binary, `json/jsonb`, `date`,
 * `time`, `timestamp(tz)` — then decoded as in the table above; `numeric`, what PostgreSQL computes
 * `sum`/`avg` in, as a number like SQLite's: an integer by the bigint rule, else a double), else
 * from the value the driver returns (SQLite: integers by the bigint rule, reals as `number`, text as
 * `string`, blobs as `Uint8Array`). SQLite stores booleans as 1/0 and timestamps, decimals and json
 * as text, so an *expression* over such columns (`max(at)`, `a > b`) comes back as that text or
 * number there: select the column itself, alias it to the column's name, or name the type with
 * `types` (`dataset.query({ types: { newest: "timestamp" } })`...). `count`, `sum` of integers,
 * `max`/`min` of integer and text columns come back identical on both.
 *
 * An optional `Schema` decodes each row into the user's type; a row it refuses fails the query with
 * {@link RowDecodeError}. Each query runs in a span `pipestate.dataset.query`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Pipeline } from "effect-pipestate"
 *
 * const program = Effect.gen(function* () {
 *   yield* Pipeline.run(source)
 *   const dataset = yield* Pipeline.dataset
 *   const rows = yield* dataset.query`SELECT id, name, created_at FROM ${dataset.table("users")} WHERE id > ${3} ORDER BY id`
 *   // [{ id: 4, name: "Ada", created_at: Timestamp(2024-01-01T10:20:30.123456+00:00) }, ...]
 *   const User = Schema.Struct({ id: Schema.Number, name: Schema.String })
 *   const users = yield* dataset.query({ schema: User })`SELECT id, name FROM ${dataset.table("users")}`
 *   const some = yield* dataset.table("users").rows({ where: { name: "Ada" }, limit: 10 })
 * })
 * ```
 *
 * @since 0.2.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import { Effect, Option, ParseResult, Schema } from "effect"
import type { DatasetAccess, DatasetTarget, DestinationError, DestinationShape } from "../destination/Destination.js"
import type { DataType } from "../internal/schema/DataType.js"
import * as Schemas from "../internal/pipeline/Schemas.js"
import * as StoredSchema from "../internal/schema/StoredSchema.js"
import * as Values from "../internal/dataset/values.js"

/**
 * A value of a decoded row (see the table in the module's documentation).
 *
 * @since 0.2.0
 */
export type Value = Values.Value

/**
 * A decoded row: column name → value.
 *
 * @since 0.2.0
 */
export type Row = { readonly [column: string]: Value }

/**
 * A value a statement may bind (see the module's documentation for how each is bound).
 *
 * @since 0.2.0
 */
export type Param = Value | Date | undefined

/**
 * What a statement may interpolate: a value to bind, a table of the dataset, or an @effect/sql
 * fragment or helper.
 *
 * @since 0.2.0
 */
export type Argument = Param | Table | Statement.Fragment | Statement.Helper

/**
 * The table does not exist in the dataset (a query naming it, or {@link Table.rows}).
 *
 * @since 0.2.0
 */
export class TableNotFound extends Schema.TaggedError<TableNotFound>()("TableNotFound", {
  dataset: Schema.String,
  table: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const known =
      this.known.length === 0
        ? "the stored schemas of the dataset name no tables yet (has a run loaded it?)"
        : `its tables: ${this.known.join(", ")}`
    // the table is there: the statement named it without its dataset (PostgreSQL resolves a bare
    // name in the search_path, not in the dataset's schema)
    if (this.known.includes(this.table)) {
      return `dataset ${this.dataset} has table ${JSON.stringify(this.table)}, but the statement names it without its dataset: write ${`\${dataset.table(${JSON.stringify(this.table)})}`} in the query template (it qualifies the name on every destination)`
    }
    return `dataset ${this.dataset} has no table ${JSON.stringify(this.table)}; ${known}`
  }
}

/**
 * The database refused or failed a statement: a syntax error, an unknown column, a lost
 * connection. `statement` is the SQL text with its placeholders (never the bound values).
 *
 * @since 0.2.0
 */
export class QueryFailed extends Schema.TaggedError<QueryFailed>()("QueryFailed", {
  dataset: Schema.String,
  destination: Schema.String,
  statement: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `dataset ${this.dataset} (${this.destination}): the query failed: ${this.reason}\n  ${this.statement}`
  }
}

/**
 * A row that cannot be decoded: a value that does not fit its column's type, or a row the query's
 * `schema` refuses. `row` is the row's position in the result (0-based).
 *
 * @since 0.2.0
 */
export class RowDecodeError extends Schema.TaggedError<RowDecodeError>()("RowDecodeError", {
  dataset: Schema.String,
  row: Schema.Number,
  column: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    const where = this.column === undefined ? `row ${this.row}` : `row ${this.row}, column ${this.column}`
    return `dataset ${this.dataset}: ${where} cannot be decoded: ${this.reason}`
  }
}

/**
 * The destination cannot be queried: it is not a SQL database (a custom destination without a
 * `SqlClient`).
 *
 * @since 0.2.0
 */
export class DatasetUnavailable extends Schema.TaggedError<DatasetUnavailable>()("DatasetUnavailable", {
  dataset: Schema.String,
  destination: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `dataset ${this.dataset} on ${this.destination} cannot be read: ${this.reason}`
  }
}

/**
 * The errors of a query.
 *
 * @since 0.2.0
 */
export type QueryError = TableNotFound | QueryFailed | RowDecodeError | InvalidRowsOptions

/**
 * {@link Table.rows} was given an option no database would read the same way: a `limit` that is not
 * a whole number of at least 0 (SQLite reads `LIMIT -1` as no limit, PostgreSQL refuses it).
 *
 * @since 0.2.0
 */
export class InvalidRowsOptions extends Schema.TaggedError<InvalidRowsOptions>()("InvalidRowsOptions", {
  dataset: Schema.String,
  table: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `dataset ${this.dataset}, table ${this.table}: ${this.reason}`
  }
}

/**
 * The errors of opening a dataset.
 *
 * @since 0.2.0
 */
export type OpenError = DestinationError | DatasetUnavailable | QueryFailed

/**
 * Options of a query: `types` names the dlt data type of result columns (expressions, aliases) and
 * wins over the stored schema; `schema` decodes each decoded row into `A`.
 *
 * @since 0.2.0
 */
export interface QueryOptions<A, I> {
  readonly types?: { readonly [column: string]: DataType }
  readonly schema?: Schema.Schema<A, I, never>
}

/**
 * A statement as a tagged template, run and decoded.
 *
 * @since 0.2.0
 */
export type Template<A> = (
  strings: TemplateStringsArray,
  ...args: ReadonlyArray<Argument>
) => Effect.Effect<ReadonlyArray<A>, QueryError>

/**
 * `dataset.query\`...\`` runs a statement; `dataset.query(options)\`...\`` with options.
 *
 * @since 0.2.0
 */
export interface Query {
  (strings: TemplateStringsArray, ...args: ReadonlyArray<Argument>): Effect.Effect<ReadonlyArray<Row>, QueryError>
  <A = Row, I = Row>(options: QueryOptions<A, I>): Template<A>
}

/**
 * Options of {@link Table.rows}. `where` is a map of column → value (equality, `null` for IS NULL,
 * joined by AND) or an @effect/sql fragment (`dataset.sql\`id > ${3}\``); `orderBy` names columns.
 *
 * @since 0.2.0
 */
export interface RowsOptions<A, I> extends QueryOptions<A, I> {
  readonly where?: { readonly [column: string]: Param } | Statement.Fragment
  readonly orderBy?: string | ReadonlyArray<string>
  readonly limit?: number
}

/**
 * A table of the dataset. Interpolated in a statement it is the table's quoted, qualified name
 * (`"chess_data"."players"` on PostgreSQL, `main."players"` on SQLite).
 *
 * @since 0.2.0
 */
export interface Table extends Statement.Fragment {
  readonly name: string
  /** its columns in the stored schema (empty when no schema knows the table) */
  readonly columns: ReadonlyArray<StoredSchema.Column>
  readonly exists: Effect.Effect<boolean, QueryFailed>
  /** its rows (all of them unless `where`/`limit`), decoded by its columns' types */
  readonly rows: <A = Row, I = Row>(options?: RowsOptions<A, I>) => Effect.Effect<ReadonlyArray<A>, QueryError>
}

/**
 * Read access to the loaded data of a dataset.
 *
 * @since 0.2.0
 */
export interface Dataset {
  /** the dataset's name */
  readonly name: string
  /** the destination's name (`sqlite`, `postgres`, ...) */
  readonly destinationName: string
  /** @effect/sql's dialect of the destination: `sqlite`, `pg`, ... */
  readonly dialect: string
  /** the destination's SQL client: for fragments and identifiers (`sql("col")`, `sql.and`, `sql.in`) */
  readonly sql: SqlClient.SqlClient
  /** the newest stored schema of every source loaded into the dataset, as read when it was opened */
  readonly schemas: ReadonlyArray<StoredSchema.StoredSchema>
  /** the data tables of those schemas (no `_dlt_*` tables), sorted */
  readonly tables: ReadonlyArray<string>
  readonly table: (name: string) => Table
  readonly query: Query
}

const HELPER_TAGS = new Set([
  "ArrayHelper",
  "RecordInsertHelper",
  "RecordUpdateHelper",
  "RecordUpdateHelperSingle",
  "Identifier",
  "Custom"
])

const isHelper = (u: unknown): boolean =>
  typeof u === "object" && u !== null && HELPER_TAGS.has((u as { readonly _tag?: unknown })._tag as string)

const isSqliteBusy = (error: unknown): boolean => {
  let current: unknown = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { readonly code?: unknown }).code
    if (typeof code === "string" && code.startsWith("SQLITE_BUSY")) return true
    current = (current as { readonly cause?: unknown }).cause
  }
  return false
}

const errorText = (error: unknown): string => {
  if (isSqliteBusy(error)) {
    return "the SQLite file's write lock is held: a load in progress (this run's own, or another's) holds it from its first row to its commit. Reading works during a load; write to the dataset before or after a run, not from a resource while its rows load"
  }
  const cause = (error as { readonly cause?: unknown }).cause
  if (cause instanceof Error) return cause.message
  return error instanceof Error ? error.message : String(error)
}

// `no such table: main.users` (SQLite), `relation "ds.users" does not exist` (PostgreSQL)
const MISSING_TABLE = [/no such table: (?:[^.\s]+\.)?"?([^"\s]+)"?/, /relation "(?:[^"]*\.)?([^".]+)" does not exist/]

const missingTable = (reason: string): string | undefined => {
  for (const pattern of MISSING_TABLE) {
    const m = pattern.exec(reason)
    if (m !== null) return m[1]
  }
  return undefined
}

interface FieldInfo {
  readonly name: string
  readonly pgType: number | undefined
}

/**
 * A dataset over a destination's SQL access and the stored schemas that type its tables.
 *
 * @since 0.2.0
 */
export const make = (options: {
  readonly access: DatasetAccess
  readonly sql: SqlClient.SqlClient
  readonly destinationName: string
  readonly schemas: ReadonlyArray<StoredSchema.StoredSchema>
}): Dataset => {
  const { access, sql, schemas } = options
  const dialect = sql.onDialectOrElse({
    sqlite: () => "sqlite",
    pg: () => "pg",
    mysql: () => "mysql",
    mssql: () => "mssql",
    clickhouse: () => "clickhouse",
    orElse: () => "unknown"
  })
  const datasetName = access.name

  // table → column → data type, from every schema (a table two schemas declare: the first wins)
  const tableColumns = new Map<string, ReadonlyArray<StoredSchema.Column>>()
  for (const schema of schemas) {
    for (const [name, table] of Object.entries(schema.tables)) {
      if (!tableColumns.has(name)) tableColumns.set(name, Object.values(table.columns))
    }
  }
  const tables = [...tableColumns.keys()].filter((t) => !StoredSchema.isDltTable(t)).sort()

  // the literal segment of each table fragment: found again in any statement it is part of
  const tableOfSegment = new WeakMap<object, string>()

  const typesOf = (tableNames: ReadonlyArray<string>): ReadonlyMap<string, DataType | null> => {
    const types = new Map<string, DataType | null>()
    for (const table of tableNames) {
      for (const column of tableColumns.get(table) ?? []) {
        if (column.data_type === undefined) continue
        const seen = types.get(column.name)
        if (seen === undefined) types.set(column.name, column.data_type)
        else if (seen !== column.data_type) types.set(column.name, null)
      }
    }
    return types
  }
  const allTypes = typesOf([...tableColumns.keys()])

  const fail = (statement: string) => (error: SqlError.SqlError) => {
    const reason = errorText(error)
    const table = missingTable(reason)
    return table !== undefined
      ? new TableNotFound({ dataset: datasetName, table, known: tables })
      : new QueryFailed({ dataset: datasetName, destination: options.destinationName, statement, reason, cause: error })
  }

  /** runs a statement: the rows as the driver returns them, and the result's columns */
  const execute = (
    statement: Statement.Statement<Record<string, unknown>>
  ): Effect.Effect<
    { readonly rows: ReadonlyArray<Record<string, unknown>>; readonly fields: ReadonlyArray<FieldInfo> | undefined },
    SqlError.SqlError
  > => {
    if (dialect === "pg") {
      return Effect.map(statement.raw, (raw) => {
        const result = (Array.isArray(raw) ? raw[raw.length - 1] : raw) as
          | {
              readonly rows?: ReadonlyArray<Record<string, unknown>>
              readonly fields?: ReadonlyArray<{ readonly name: string; readonly dataTypeID: number }>
            }
          | undefined
        return {
          rows: result?.rows ?? [],
          fields: result?.fields?.map((f) => ({ name: f.name, pgType: f.dataTypeID }))
        }
      })
    }
    // SQLite returns integers past 2^53 exactly only as bigint
    return Effect.map(
      dialect === "sqlite" ? Effect.provideService(statement, SqlClient.SafeIntegers, true) : statement,
      (rows) => ({ rows, fields: undefined })
    )
  }

  const decodeRows = <A, I>(
    raw: {
      readonly rows: ReadonlyArray<Record<string, unknown>>
      readonly fields: ReadonlyArray<FieldInfo> | undefined
    },
    types: ReadonlyMap<string, DataType | null>,
    queryOptions: QueryOptions<A, I> | undefined
  ): Effect.Effect<ReadonlyArray<A>, RowDecodeError> => {
    const fields: ReadonlyArray<FieldInfo> =
      raw.fields ??
      (raw.rows.length === 0 ? [] : Object.keys(raw.rows[0]!).map((name) => ({ name, pgType: undefined })))
    const named = queryOptions?.types
    const decoders = fields.map((field): Values.Decoder => {
      const parsedJson = field.pgType !== undefined && Values.PG_JSON_TYPES.has(field.pgType)
      const type =
        (named !== undefined && Object.hasOwn(named, field.name) ? named[field.name] : undefined) ??
        types.get(field.name)
      if (type !== undefined && type !== null) return Values.forDataType(type, parsedJson)
      // the driver-neutral rule: the database's type when the driver tells it, else the value's
      if (field.pgType === Values.PG_NUMERIC) return Values.untypedNumeric
      const pgType = field.pgType === undefined ? undefined : Values.PG_TYPES.get(field.pgType)
      return pgType === undefined ? Values.untyped : Values.forDataType(pgType, parsedJson)
    })
    const rows: Array<Row> = new Array(raw.rows.length)
    for (let i = 0; i < raw.rows.length; i++) {
      const source = raw.rows[i]!
      const row: Record<string, Value> = {}
      for (let c = 0; c < fields.length; c++) {
        const name = fields[c]!.name
        const value = decoders[c]!(source[name])
        if (value instanceof Values.Mismatch) {
          const declared = named?.[name] ?? types.get(name)
          return Effect.fail(
            new RowDecodeError({
              dataset: datasetName,
              row: i,
              column: name,
              reason: `${value.reason}${declared ? ` (the column's type is ${declared}; alias an expression to another name, or name its type with \`types\`)` : ""}`
            })
          )
        }
        row[name] = value
      }
      rows[i] = row
    }
    const schema = queryOptions?.schema
    if (schema === undefined) return Effect.succeed(rows as unknown as ReadonlyArray<A>)
    const decode = ParseResult.decodeUnknownEither(schema)
    const out: Array<A> = new Array(rows.length)
    for (let i = 0; i < rows.length; i++) {
      const decoded = decode(rows[i], { errors: "first" })
      if (decoded._tag === "Left") {
        return Effect.fail(
          new RowDecodeError({
            dataset: datasetName,
            row: i,
            reason: `the row does not match the query's schema: ${ParseResult.TreeFormatter.formatIssueSync(decoded.left)}`
          })
        )
      }
      out[i] = decoded.right
    }
    return Effect.succeed(out)
  }

  const run = <A, I>(
    build: () => Statement.Statement<Record<string, unknown>>,
    queryOptions: QueryOptions<A, I> | undefined
  ): Effect.Effect<ReadonlyArray<A>, QueryError> =>
    Effect.suspend(() => {
      const statement = build()
      let text: string
      try {
        text = statement.compile()[0]
      } catch (error) {
        return Effect.fail(
          new QueryFailed({
            dataset: datasetName,
            destination: options.destinationName,
            statement: "(not compiled)",
            reason: errorText(error)
          })
        )
      }
      const referenced: Array<string> = []
      for (const segment of statement.segments) {
        const table = tableOfSegment.get(segment)
        if (table !== undefined && !referenced.includes(table)) referenced.push(table)
      }
      const types = referenced.length === 0 ? allTypes : typesOf(referenced)
      return execute(statement).pipe(
        Effect.mapError(fail(text)),
        Effect.flatMap((raw) => decodeRows(raw, types, queryOptions)),
        Effect.tap((rows) => Effect.annotateCurrentSpan("pipestate.rows", rows.length)),
        Effect.withSpan("pipestate.dataset.query", {
          attributes: {
            "pipestate.dataset": datasetName,
            "pipestate.destination": options.destinationName,
            "pipestate.tables": referenced.join(","),
            "db.query.text": text
          }
        })
      )
    })

  const bind = (args: ReadonlyArray<Argument>): Array<unknown> =>
    args.map((arg) => (Statement.isFragment(arg) || isHelper(arg) ? arg : Values.encodeParam(dialect, arg)))

  const template =
    <A, I>(queryOptions: QueryOptions<A, I> | undefined): Template<A> =>
    (strings, ...args) =>
      run(() => sql<Record<string, unknown>>(strings, ...bind(args)), queryOptions)

  const query = ((first: TemplateStringsArray | QueryOptions<unknown, unknown>, ...args: ReadonlyArray<Argument>) =>
    Array.isArray(first) && "raw" in first
      ? template(undefined)(first as TemplateStringsArray, ...args)
      : template(first as QueryOptions<unknown, unknown>)) as Query

  const table = (name: string): Table => {
    const fragment = sql.literal(access.table(name))
    for (const segment of fragment.segments) tableOfSegment.set(segment, name)
    const exists = Effect.mapError(
      access.tableExists(name),
      (error) =>
        new QueryFailed({
          dataset: datasetName,
          destination: options.destinationName,
          statement: `(does table ${name} exist)`,
          reason: error.reason,
          cause: error
        })
    )
    const rows = <A = Row, I = Row>(rowsOptions?: RowsOptions<A, I>): Effect.Effect<ReadonlyArray<A>, QueryError> =>
      Effect.gen(function* () {
        const limit = rowsOptions?.limit
        if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) {
          return yield* new InvalidRowsOptions({
            dataset: datasetName,
            table: name,
            reason: `limit must be a whole number of at least 0 (all rows: leave it out), not ${String(limit)}`
          })
        }
        if (!(yield* exists)) return yield* new TableNotFound({ dataset: datasetName, table: name, known: tables })
        const where = rowsOptions?.where
        const whereClause =
          where === undefined
            ? sql.literal("")
            : Statement.isFragment(where)
              ? sql` WHERE ${where}`
              : Object.keys(where).length === 0
                ? sql.literal("")
                : sql` WHERE ${sql.and(
                    Object.entries(where).map(([column, value]) =>
                      value === null || value === undefined
                        ? sql`${sql(column)} IS NULL`
                        : sql`${sql(column)} = ${Values.encodeParam(dialect, value)}`
                    )
                  )}`
        const order = rowsOptions?.orderBy === undefined ? [] : [rowsOptions.orderBy].flat()
        const orderClause =
          order.length === 0 ? sql.literal("") : sql` ORDER BY ${sql.csv(order.map((c) => sql`${sql(c)}`))}`
        const limitClause = limit === undefined ? sql.literal("") : sql` LIMIT ${limit}`
        return yield* run(
          () => sql<Record<string, unknown>>`SELECT * FROM ${self}${whereClause}${orderClause}${limitClause}`,
          rowsOptions
        )
      })
    const self: Table = {
      [Statement.FragmentId]: fragment[Statement.FragmentId],
      segments: fragment.segments,
      name,
      columns: tableColumns.get(name) ?? [],
      exists,
      rows
    }
    return self
  }

  return {
    name: datasetName,
    destinationName: options.destinationName,
    dialect,
    sql,
    schemas,
    tables,
    table,
    query
  }
}

/**
 * Opens a dataset of a destination: its SQL access and the newest stored schema of every source
 * loaded into it (`_dlt_version`; none before the first load). A schema that cannot be read (a
 * dlt schema engine pipestate does not know) is skipped with a warning: its tables' columns follow
 * the driver-neutral rule.
 *
 * @since 0.2.0
 */
export const open = (destination: DestinationShape, target: DatasetTarget): Effect.Effect<Dataset, OpenError> =>
  Effect.gen(function* () {
    const access = yield* destination.dataset(target)
    if (Option.isNone(access.sql)) {
      return yield* new DatasetUnavailable({
        dataset: target.dataset,
        destination: destination.name,
        reason: "the destination is not a SQL database (its dataset access has no SqlClient)"
      })
    }
    const sql = access.sql.value
    const schemas: Array<StoredSchema.StoredSchema> = []
    if (yield* access.tableExists(StoredSchema.VERSION_TABLE)) {
      const statement = sql<{
        readonly schema_name: string
      }>`SELECT DISTINCT schema_name FROM ${sql.literal(access.table(StoredSchema.VERSION_TABLE))} ORDER BY schema_name`
      const names = yield* statement.pipe(
        Effect.mapError(
          (error) =>
            new QueryFailed({
              dataset: target.dataset,
              destination: destination.name,
              statement: statement.compile()[0],
              reason: errorText(error),
              cause: error
            })
        )
      )
      for (const { schema_name } of names) {
        // a schema pipestate cannot read (another dlt engine) leaves its tables untyped, not the dataset unreadable
        const schema = yield* Schemas.newest(destination, target, schema_name).pipe(
          Effect.catchTag("InvalidStoredSchema", (error) =>
            Effect.as(
              Effect.logWarning(
                `dataset ${target.dataset}: ${error.message}; its tables are read by the driver-neutral rule`
              ),
              Option.none()
            )
          )
        )
        if (Option.isSome(schema)) schemas.push(schema.value)
      }
    }
    return make({ access, sql, destinationName: destination.name, schemas })
  }).pipe(
    Effect.withSpan("pipestate.dataset.open", {
      attributes: { "pipestate.dataset": target.dataset, "pipestate.destination": destination.name }
    })
  )
