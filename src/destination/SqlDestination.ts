/**
 * The SQL driver of the destination port, over a generic @effect/sql `SqlClient`: the system tables,
 * table creation and widening, the one commit transaction, state rows. Statements are built with
 * @effect/sql's tagged template, so parameters are bound and identifiers escaped by the client's own
 * dialect; what differs between databases beyond that (type names, how a dataset is a schema or a
 * file, locks, how staged rows move in) comes in through a {@link SqlDialect} and a {@link Stager}.
 * It is the extension point for SQL databases pipestate does not ship (`pipestate/sql`).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Destination } from "effect-pipestate"
 * import * as SqlDestination from "effect-pipestate/sql"
 *
 * const layer = Layer.effect(
 *   Destination.Destination,
 *   Effect.map(makeMyClient, (client) =>
 *     SqlDestination.make({ name: "mydb", type: "pipestate.destinations.mydb", dialect, client: () => Effect.succeed(client),
 *       identity: () => "mydb://host:1234/db", stager: SqlDestination.insertStager })
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import { Cause, Duration, Effect, Either, identity, Option, Schedule, type Scope } from "effect"
import {
  type DatasetAccess,
  type DatasetTarget,
  DestinationError,
  type DestinationShape,
  type ExistingColumn,
  GROUP_RUNS_TABLE,
  type GroupRunRow,
  type HoldKey,
  type HoldRow,
  HOLDS_TABLE,
  type HoldTransaction,
  LOADS_TABLE,
  RUN_LOADS_TABLE,
  type RunLoadRow,
  type SchemaRow,
  type SchemaSelector,
  type Stage,
  STATE_TABLE,
  type StateRowInfo,
  type StoredState,
  type Transaction,
  VERSION_TABLE
} from "./Destination.js"
import type { Column, ColumnType, RowBatch, TableSchema } from "../internal/destination/TableSchema.js"

/**
 * What differs between SQL databases beyond what @effect/sql's compiler already handles.
 *
 * @since 0.1.0
 */
export interface SqlDialect {
  /** the SQL type a column type is created with */
  readonly columnType: (type: ColumnType) => string
  /** the column type of a declared SQL type, `null` when none of ours */
  readonly fromSqlType: (sqlType: string) => ColumnType | null
  /** the qualified name of a table of `dataset` */
  readonly table: (sql: SqlClient.SqlClient, dataset: string, table: string) => Statement.Fragment
  /** creates the dataset (a schema) inside the first commit's transaction; fails when the place holds another dataset */
  readonly ensureDataset: (
    sql: SqlClient.SqlClient,
    dataset: string
  ) => Effect.Effect<void, SqlError.SqlError | DestinationError>
  readonly datasetExists: (sql: SqlClient.SqlClient, dataset: string) => Effect.Effect<boolean, SqlError.SqlError>
  /** the columns of a table with their declared SQL types, or none when the table does not exist */
  readonly describeTable: (
    sql: SqlClient.SqlClient,
    dataset: string,
    table: string
  ) => Effect.Effect<
    Option.Option<ReadonlyArray<{ readonly name: string; readonly sqlType: string }>>,
    SqlError.SqlError
  >
  readonly dropDataset: (sql: SqlClient.SqlClient, dataset: string) => Effect.Effect<void, SqlError.SqlError>
  /** serializes creation of the dataset's system tables inside a transaction */
  readonly lockDataset: (sql: SqlClient.SqlClient, dataset: string) => Effect.Effect<void, SqlError.SqlError>
  /** serializes commits of one pipeline inside the transaction (e.g. an advisory lock); a no-op where transactions serialize anyway */
  readonly lockPipeline: (
    sql: SqlClient.SqlClient,
    dataset: string,
    pipelineName: string
  ) => Effect.Effect<void, SqlError.SqlError>
  /** how a timestamp is bound as a parameter of the system tables */
  readonly timestampParam: (date: Date) => string | number | Date
  readonly parseTimestamp: (value: unknown) => Date
  /** whether `ALTER TABLE ... ADD COLUMN IF NOT EXISTS` is understood */
  readonly addColumnIfNotExists: boolean
  /**
   * How a hold table keeps the order its rows were held in (see `Destination.HoldTransaction`):
   * the column the rows are ordered by, and the SQL type of the column added for it (none: an
   * implicit column, as SQLite's `rowid`). Without it the destination keeps no hold tables: rows
   * that wait for a run's final commit wait in a local spool.
   */
  readonly holdOrder?: { readonly column: string; readonly addType?: string }
  /** the longest identifier in bytes; hold table names are kept within it (default 63, PostgreSQL's) */
  readonly maxIdentifierBytes?: number
}

/**
 * Where a load's rows wait until its commit, and how they move into their tables inside the
 * commit's transaction.
 *
 * @since 0.1.0
 */
export interface Stager {
  readonly write: (table: TableSchema, batch: RowBatch) => Effect.Effect<void, DestinationError>
  /** runs on the destination's connection before the transaction starts (e.g. ATTACH) */
  readonly beforeCommit: Effect.Effect<void, DestinationError>
  /** runs after the transaction ended, committed or not */
  readonly afterCommit: Effect.Effect<void>
  /** inside the transaction: inserts the staged rows of `table` (append/replace) or upserts them (merge) */
  readonly apply: (
    sql: SqlClient.SqlClient,
    table: TableSchema,
    qualified: Statement.Fragment
  ) => Effect.Effect<void, DestinationError | SqlError.SqlError>
  /**
   * The connection a stage that writes its rows straight into their tables holds its transaction
   * open on, once it has: the commit runs on it and joins that transaction (its BEGIN opens none),
   * so rows and state commit together. None: the commit runs on the destination's client.
   */
  readonly connection?: () => Option.Option<SqlClient.SqlClient>
  /** whether the stage already emptied the `replace` table `table` (before writing its rows into it) */
  readonly emptied?: (table: string) => boolean
}

/**
 * What a stager gets from the destination it stages for.
 *
 * @since 0.3.0
 */
export interface StagerContext {
  /** whether the stage may write straight into the tables (see `Destination.StageOptions`) */
  readonly direct: boolean
  /** creates or widens a table of the dataset to `table`'s columns */
  readonly ensureTable: (sql: SqlClient.SqlClient, table: TableSchema) => Effect.Effect<void, SqlError.SqlError>
}

/**
 * @since 0.1.0
 */
export interface SqlDestinationOptions {
  readonly name: string
  readonly type: string
  /** where the data lives without the dataset, never with a secret (see `DestinationShape.identity`) */
  readonly identity: (target: DatasetTarget) => string
  /** where a dataset lives, for messages; default `<identity>#<dataset>` */
  readonly location?: (target: DatasetTarget) => string
  readonly dialect: SqlDialect
  /** the client holding `target`'s dataset */
  readonly client: (target: DatasetTarget) => Effect.Effect<SqlClient.SqlClient, DestinationError>
  readonly stager: (
    target: DatasetTarget,
    client: SqlClient.SqlClient,
    spoolDir: string,
    context: StagerContext
  ) => Effect.Effect<Stager, DestinationError, Scope.Scope>
  /** turns a driver failure into a message a user can act on (e.g. host and port of an unreachable server) */
  readonly describeError?: (error: unknown) => string
  /**
   * Runs a commit that does not join a stage's open transaction (and a dataset drop) once the
   * stages of this process holding one on the same place committed: they hold its write lock
   * (SQLite). Default: as it is.
   */
  readonly serialize?: (target: DatasetTarget) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /**
   * Waiting for a write lock another process holds (SQLite: a load of another process writes its
   * rows inside one transaction until its commit). `isBusy` tells the driver's "locked" failure of
   * the dialect's `lockPipeline` (the transaction's first statement, so nothing was done yet); the
   * commit then tries again every `interval` (a few ms, without blocking the event loop) until
   * `timeout` has passed, and fails with a `DestinationError` saying what held it. Default: no wait.
   */
  readonly lockWait?: {
    readonly isBusy: (error: unknown) => boolean
    readonly timeout: Duration.DurationInput
    readonly interval?: Duration.DurationInput
  }
}

const CONNECTION_LOST = /57P0[1-3]|^08|Connection terminated|ECONNRESET|EPIPE|terminating connection/

const isConnectionLost = (error: unknown): boolean => {
  let current: unknown = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    const message = (current as { message?: unknown }).message
    if (typeof code === "string" && CONNECTION_LOST.test(code)) return true
    if (typeof message === "string" && CONNECTION_LOST.test(message)) return true
    current = (current as { cause?: unknown }).cause
  }
  return false
}

// PostgreSQL's `CREATE ... IF NOT EXISTS` is not safe against a concurrent creator even under the
// dataset's advisory lock: a connection that looked the name up before (and found nothing) keeps
// that answer in its catalog cache until its next transaction, so after waiting for the lock it
// creates again what the lock holder just committed ("duplicate key value violates unique
// constraint pg_namespace_nspname_index", "relation ... already exists"). Such a transaction did
// nothing else yet, or only what it rolled back: it is tried again, in a new transaction that sees
// the committed objects.
const CONCURRENT_DDL = /pg_namespace_nspname_index|pg_class_relname_nsp_index|pg_type_typname_nsp_index/
const DUPLICATE_OBJECT = new Set(["42P06", "42P07", "42710"])

const isConcurrentDdl = (error: unknown): boolean => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    const message = (current as { message?: unknown }).message
    if (typeof code === "string" && DUPLICATE_OBJECT.has(code)) return true
    if (typeof message === "string" && CONCURRENT_DDL.test(message)) return true
    if (typeof code === "string" && code === "23505") {
      const constraint = (current as { constraint?: unknown }).constraint
      if (typeof constraint === "string" && CONCURRENT_DDL.test(constraint)) return true
    }
    current = (current as { cause?: unknown }).cause
  }
  return false
}

/** how often a transaction that met a concurrent creator's DDL is tried again */
const DDL_RETRIES = 3

const causeText = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const cause = (error as { cause?: unknown }).cause
    const own = (error as { message?: unknown }).message
    const inner = cause instanceof Error ? cause.message : typeof cause === "string" ? cause : undefined
    if (inner !== undefined && typeof own === "string" && own !== "" && !own.includes(inner)) return `${own}: ${inner}`
    if (inner !== undefined) return inner
    if (typeof own === "string") return own
  }
  return String(error)
}

const isSqlError = (u: unknown): boolean =>
  typeof u === "object" && u !== null && (u as { readonly _tag?: unknown })._tag === "SqlError"

/**
 * Runs `self`, turning every failure into a `DestinationError` for `operation` — also the SQL
 * errors @effect/sql raises as defects (a COMMIT or ROLLBACK on a connection the server killed).
 * Other defects stay defects.
 *
 * @since 0.1.0
 */
export const typed =
  (destination: string, describe: (error: unknown) => string = causeText) =>
  (operation: string) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, DestinationError, R> =>
    Effect.catchAllCause(self, (cause) => {
      const toError = (error: unknown) =>
        error instanceof DestinationError
          ? error
          : new DestinationError({ destination, operation, reason: describe(error), cause: error })
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) return Effect.fail(toError(failure.value))
      const sqlDefect = Option.filter(Cause.dieOption(cause), isSqlError)
      if (Option.isSome(sqlDefect)) return Effect.fail(toError(sqlDefect.value))
      return Effect.failCause(cause as Cause.Cause<never>)
    })

const STAGER: unique symbol = Symbol.for("pipestate/SqlDestination/Stager")

interface Staged extends Stage {
  readonly [STAGER]: { readonly owner: symbol; readonly stager: Stager }
}

/**
 * Builds the destination port over SQL.
 *
 * @since 0.1.0
 */
export const make = (options: SqlDestinationOptions): DestinationShape => {
  const { dialect } = options
  /** identifies the stages this destination made */
  const owner = Symbol(options.name)
  const as = typed(options.name, options.describeError ?? causeText)

  /** a pool may hand out a connection the server just terminated: an idempotent read gets one more try */
  const read = <A, E, R>(operation: string, self: Effect.Effect<A, E, R>) =>
    as(operation)(Effect.retry(self, { times: 1, while: isConnectionLost }))

  const withClient = <A, E, R>(
    target: DatasetTarget,
    operation: string,
    f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, DestinationError, R> => read(operation, Effect.flatMap(options.client(target), f))

  /** datasets whose system tables this destination has seen or created, per client */
  // per client: one dataset name can live in several places (SQLite files in different directories)
  const knownByClient = new WeakMap<SqlClient.SqlClient, Set<string>>()
  const lockWait = options.lockWait
  const isBusy = (error: unknown): boolean => lockWait?.isBusy(error) === true
  // the wait's limit, read once: Duration reads a negative or NaN amount as zero, refused here as a
  // typo would be (every commit then fails naming it)
  const lockTimeout: Either.Either<Duration.Duration, DestinationError> | undefined =
    lockWait === undefined
      ? undefined
      : Either.fromOption(
          Option.filter(
            Duration.decodeUnknown(lockWait.timeout),
            () =>
              !(typeof lockWait.timeout === "number" && !(lockWait.timeout >= 0)) &&
              !(typeof lockWait.timeout === "string" && lockWait.timeout.trim().startsWith("-"))
          ),
          () =>
            new DestinationError({
              destination: options.name,
              operation: "take the write lock",
              reason: `lockTimeout ${JSON.stringify(String(lockWait.timeout))} is not a duration of at least 0 (give one like "10 minutes", or milliseconds as a number)`
            })
        )
  /** tries `self` again while `retryable` says its failure was a write lock held elsewhere */
  const waitForLock =
    (retryable: (error: unknown) => boolean) =>
    <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | DestinationError, R> => {
      if (lockWait === undefined || lockTimeout === undefined) return self
      if (Either.isLeft(lockTimeout)) return Effect.fail(lockTimeout.left)
      const timeout = lockTimeout.right
      return self.pipe(
        Effect.retry({
          while: retryable,
          schedule: Schedule.spaced(lockWait.interval ?? "20 millis").pipe(Schedule.upTo(timeout))
        }),
        Effect.mapError((error) =>
          retryable(error)
            ? new DestinationError({
                destination: options.name,
                operation: "take the write lock",
                reason: `another writer held the database's write lock for ${Duration.format(timeout)} (on SQLite, a load of another process holds it from its first row to its commit); try again when it committed`,
                cause: error
              })
            : error
        )
      )
    }

  const knownSystemTables = (sql: SqlClient.SqlClient): Set<string> => {
    let known = knownByClient.get(sql)
    if (known === undefined) {
      known = new Set()
      knownByClient.set(sql, known)
    }
    return known
  }

  const ensureSystemTables = (sql: SqlClient.SqlClient, dataset: string) =>
    Effect.gen(function* () {
      yield* dialect.ensureDataset(sql, dataset)
      const text = sql.literal(dialect.columnType("text"))
      const bigint = sql.literal(dialect.columnType("bigint"))
      const timestamp = sql.literal(dialect.columnType("timestamp"))
      yield* sql`CREATE TABLE IF NOT EXISTS ${dialect.table(sql, dataset, LOADS_TABLE)} (load_id ${text} NOT NULL, schema_name ${text}, status ${bigint} NOT NULL, inserted_at ${timestamp} NOT NULL, schema_version_hash ${text})`
      yield* sql`CREATE TABLE IF NOT EXISTS ${dialect.table(sql, dataset, STATE_TABLE)} (version ${bigint} NOT NULL, engine_version ${bigint} NOT NULL, pipeline_name ${text} NOT NULL, state ${text} NOT NULL, created_at ${timestamp} NOT NULL, version_hash ${text}, _dlt_load_id ${text} NOT NULL, _dlt_id ${text} NOT NULL)`
      yield* sql`CREATE TABLE IF NOT EXISTS ${dialect.table(sql, dataset, VERSION_TABLE)} (version ${bigint} NOT NULL, engine_version ${bigint} NOT NULL, inserted_at ${timestamp} NOT NULL, schema_name ${text} NOT NULL, version_hash ${text} NOT NULL, schema ${text} NOT NULL)`
    })

  // CREATE ... IF NOT EXISTS is not safe against a concurrent creator: first commits serialize on
  // the dataset lock; once seen, the tables are not re-created on every commit
  const systemTables = (sql: SqlClient.SqlClient, dataset: string) =>
    knownSystemTables(sql).has(dataset)
      ? Effect.void
      : sql.withTransaction(Effect.zipRight(dialect.lockDataset(sql, dataset), ensureSystemTables(sql, dataset))).pipe(
          Effect.retry({ times: 1, while: isConnectionLost }),
          Effect.retry({ times: DDL_RETRIES, while: isConcurrentDdl }),
          // its own transaction, nothing kept of a failed try
          waitForLock(isBusy),
          as("create the system tables"),
          Effect.tap(() => Effect.sync(() => knownSystemTables(sql).add(dataset)))
        )

  interface StateRowColumns {
    readonly version: unknown
    readonly engine_version: unknown
    readonly pipeline_name: string
    readonly created_at: unknown
    readonly version_hash: string | null
    readonly load_id: string
    readonly schema_version_hash: string | null
  }

  const toInfo = (row: StateRowColumns): StateRowInfo => ({
    version: Number(row.version),
    engineVersion: Number(row.engine_version),
    pipelineName: row.pipeline_name,
    createdAt: dialect.parseTimestamp(row.created_at),
    versionHash: row.version_hash,
    loadId: row.load_id,
    schemaVersionHash: row.schema_version_hash ?? null
  })

  const hasStateTable = (sql: SqlClient.SqlClient, dataset: string) =>
    Effect.map(dialect.describeTable(sql, dataset, STATE_TABLE), (columns) => {
      if (Option.isNone(columns)) knownSystemTables(sql).delete(dataset)
      return Option.isSome(columns)
    })

  // `ensured`: inside a commit's transaction, which created the system tables first (a table dropped
  // meanwhile fails the statement, and so the transaction, as the writes after it would)
  const stateRowsWith = (
    sql: SqlClient.SqlClient,
    dataset: string,
    pipelineName: string,
    limit: number,
    ensured = false
  ) =>
    Effect.gen(function* () {
      if (!ensured && !(yield* hasStateTable(sql, dataset))) return []
      const state = dialect.table(sql, dataset, STATE_TABLE)
      const loads = dialect.table(sql, dataset, LOADS_TABLE)
      const rows =
        yield* sql<StateRowColumns>`SELECT s.version, s.engine_version, s.pipeline_name, s.created_at, s.version_hash, l.load_id, l.schema_version_hash FROM ${state} s JOIN ${loads} l ON l.load_id = s._dlt_load_id WHERE s.pipeline_name = ${pipelineName} AND l.status = 0 ORDER BY l.load_id DESC LIMIT ${Math.max(0, Math.floor(limit))}`
      return rows.map(toInfo)
    })

  const readStateWith = (sql: SqlClient.SqlClient, dataset: string, pipelineName: string, loadId: string) =>
    Effect.gen(function* () {
      if (!(yield* hasStateTable(sql, dataset))) return Option.none<StoredState>()
      const state = dialect.table(sql, dataset, STATE_TABLE)
      const loads = dialect.table(sql, dataset, LOADS_TABLE)
      const rows = yield* sql<
        StateRowColumns & { readonly state: string }
      >`SELECT s.version, s.engine_version, s.pipeline_name, s.state, s.created_at, s.version_hash, l.load_id, l.schema_version_hash FROM ${state} s JOIN ${loads} l ON l.load_id = s._dlt_load_id WHERE s.pipeline_name = ${pipelineName} AND l.status = 0 AND l.load_id = ${loadId} LIMIT 1`
      return Option.map(Option.fromNullable(rows[0]), (row): StoredState => ({ ...toInfo(row), state: row.state }))
    })

  interface SchemaRowColumns {
    readonly version: unknown
    readonly engine_version: unknown
    readonly inserted_at: unknown
    readonly schema_name: string
    readonly version_hash: string
    readonly schema: string
  }

  const readSchemaWith = (
    sql: SqlClient.SqlClient,
    dataset: string,
    schemaName: string,
    selector: SchemaSelector,
    ensured = false
  ) =>
    Effect.gen(function* () {
      if (!ensured && Option.isNone(yield* dialect.describeTable(sql, dataset, VERSION_TABLE))) {
        knownSystemTables(sql).delete(dataset)
        return Option.none<SchemaRow>()
      }
      const table = dialect.table(sql, dataset, VERSION_TABLE)
      // dlt's rule for the newest: the newest inserted_at
      const rows =
        selector._tag === "Newest"
          ? yield* sql<SchemaRowColumns>`SELECT version, engine_version, inserted_at, schema_name, version_hash, schema FROM ${table} WHERE schema_name = ${schemaName} ORDER BY inserted_at DESC, version DESC LIMIT 1`
          : yield* sql<SchemaRowColumns>`SELECT version, engine_version, inserted_at, schema_name, version_hash, schema FROM ${table} WHERE schema_name = ${schemaName} AND version_hash = ${selector.hash} ORDER BY inserted_at DESC LIMIT 1`
      return Option.map(
        Option.fromNullable(rows[0]),
        (row): SchemaRow => ({
          version: Number(row.version),
          engineVersion: Number(row.engine_version),
          insertedAt: dialect.parseTimestamp(row.inserted_at),
          schemaName: row.schema_name,
          versionHash: row.version_hash,
          schema: row.schema
        })
      )
    })

  interface GroupRunColumns {
    readonly pipeline_name: string
    readonly run_id: string
    readonly group_name: string
    readonly load_id: string
    readonly summary: string
    readonly inserted_at: unknown
  }

  const readGroupRunWith = (
    sql: SqlClient.SqlClient,
    dataset: string,
    pipelineName: string,
    runId: string,
    group: string
  ) =>
    Effect.gen(function* () {
      if (Option.isNone(yield* dialect.describeTable(sql, dataset, GROUP_RUNS_TABLE))) return Option.none<GroupRunRow>()
      const rows =
        yield* sql<GroupRunColumns>`SELECT pipeline_name, run_id, group_name, load_id, summary, inserted_at FROM ${dialect.table(sql, dataset, GROUP_RUNS_TABLE)} WHERE pipeline_name = ${pipelineName} AND run_id = ${runId} AND group_name = ${group}`
      return Option.map(
        Option.fromNullable(rows[0]),
        (row): GroupRunRow => ({
          pipelineName: row.pipeline_name,
          runId: row.run_id,
          group: row.group_name,
          loadId: row.load_id,
          summary: row.summary,
          insertedAt: dialect.parseTimestamp(row.inserted_at)
        })
      )
    })

  // created on first use, under the dataset lock (a concurrent CREATE ... IF NOT EXISTS can fail)
  const insertGroupRunWith = (sql: SqlClient.SqlClient, dataset: string, row: GroupRunRow) =>
    Effect.gen(function* () {
      const table = dialect.table(sql, dataset, GROUP_RUNS_TABLE)
      const text = sql.literal(dialect.columnType("text"))
      const timestamp = sql.literal(dialect.columnType("timestamp"))
      if (Option.isNone(yield* dialect.describeTable(sql, dataset, GROUP_RUNS_TABLE))) {
        yield* dialect.lockDataset(sql, dataset)
        yield* sql`CREATE TABLE IF NOT EXISTS ${table} (pipeline_name ${text} NOT NULL, run_id ${text} NOT NULL, group_name ${text} NOT NULL, load_id ${text} NOT NULL, summary ${text} NOT NULL, inserted_at ${timestamp} NOT NULL, PRIMARY KEY (pipeline_name, run_id, group_name))`
      }
      yield* sql`INSERT INTO ${table} (pipeline_name, run_id, group_name, load_id, summary, inserted_at) VALUES (${row.pipelineName}, ${row.runId}, ${row.group}, ${row.loadId}, ${row.summary}, ${dialect.timestampParam(row.insertedAt)})`
    })

  const columnDef = (sql: SqlClient.SqlClient, column: Column) =>
    sql`${sql(column.name)} ${sql.literal(dialect.columnType(column.type))}${sql.literal(column.primaryKey ? " NOT NULL" : "")}`

  const ensureTable = (sql: SqlClient.SqlClient, dataset: string, table: TableSchema) =>
    Effect.gen(function* () {
      const qualified = dialect.table(sql, dataset, table.name)
      const existing = yield* dialect.describeTable(sql, dataset, table.name)
      if (Option.isNone(existing)) {
        yield* sql`CREATE TABLE ${qualified} (${sql.csv(table.columns.map((c) => columnDef(sql, c)))})`
        return
      }
      const have = new Set(existing.value.map((c) => c.name))
      const add = sql.literal(dialect.addColumnIfNotExists ? "ADD COLUMN IF NOT EXISTS" : "ADD COLUMN")
      for (const column of table.columns) {
        if (have.has(column.name)) continue
        // a column added to a table with rows cannot be NOT NULL: earlier rows hold no value
        yield* sql`ALTER TABLE ${qualified} ${add} ${sql(column.name)} ${sql.literal(dialect.columnType(column.type))}`
      }
    })

  /** hold tables (see `Destination.HoldTransaction`), inside a commit's transaction on `sql` */
  const holdsWith = (sql: SqlClient.SqlClient, dataset: string): HoldTransaction | undefined => {
    const order = dialect.holdOrder
    if (order === undefined) return undefined
    const registry = dialect.table(sql, dataset, HOLDS_TABLE)
    const ids = (names: ReadonlyArray<string>) => sql.csv(names.map((name) => sql`${sql(name)}`))
    const hasRegistry = Effect.map(dialect.describeTable(sql, dataset, HOLDS_TABLE), Option.isSome)
    const recorded = (row: HoldRow) =>
      Effect.gen(function* () {
        if (!(yield* hasRegistry)) return false
        const rows =
          yield* sql`SELECT 1 AS one FROM ${registry} WHERE pipeline_name = ${row.pipelineName} AND run_id = ${row.runId} AND hold_table = ${row.holdTable}`
        return rows.length > 0
      })
    const discarded = (row: HoldRow, operation: string) =>
      new DestinationError({
        destination: options.name,
        operation,
        reason: `the rows run ${row.runId} of pipeline ${row.pipelineName} held for table ${row.table} (in ${row.holdTable}) are gone: another run of the pipeline discarded them as the leftovers of a run that did not finish. Nothing of this commit was written; run the pipeline again (one run at a time)`
      })
    return {
      prepare: (row, table, existing) =>
        as(`hold rows of ${row.table}`)(
          Effect.gen(function* () {
            if (yield* recorded(row)) {
              // recorded: the table exists, widened by `writeTables` to the rows staged for it
            } else {
              if (existing) return yield* discarded(row, `hold rows of ${row.table}`)
              if (!(yield* hasRegistry)) {
                // created by the first run that holds rows, under the dataset lock (concurrent creators)
                yield* dialect.lockDataset(sql, dataset)
                const text = sql.literal(dialect.columnType("text"))
                const timestamp = sql.literal(dialect.columnType("timestamp"))
                yield* sql`CREATE TABLE IF NOT EXISTS ${registry} (pipeline_name ${text} NOT NULL, run_id ${text} NOT NULL, table_name ${text} NOT NULL, hold_table ${text} NOT NULL, owner ${text} NOT NULL, inserted_at ${timestamp} NOT NULL)`
              }
              yield* sql`INSERT INTO ${registry} (pipeline_name, run_id, table_name, hold_table, owner, inserted_at) VALUES (${row.pipelineName}, ${row.runId}, ${row.table}, ${row.holdTable}, ${row.owner}, ${dialect.timestampParam(row.insertedAt)})`
            }
            yield* ensureTable(sql, dataset, table)
            if (order.addType !== undefined) {
              const columns = yield* dialect.describeTable(sql, dataset, row.holdTable)
              const have = Option.match(columns, {
                onNone: () => false,
                onSome: (cs) => cs.some((c) => c.name === order.column)
              })
              if (!have) {
                yield* sql`ALTER TABLE ${dialect.table(sql, dataset, row.holdTable)} ADD COLUMN ${sql(order.column)} ${sql.literal(order.addType)}`
              }
            }
          })
        ),
      discardOthers: (pipelineName, runId, owner) =>
        as("discard the held rows of unfinished runs")(
          Effect.gen(function* () {
            if (!(yield* hasRegistry)) return []
            const rows = yield* sql<{
              readonly hold_table: string
            }>`SELECT hold_table FROM ${registry} WHERE pipeline_name = ${pipelineName} AND owner = ${owner} AND run_id <> ${runId}`
            const tables = [...new Set(rows.map((r) => r.hold_table))]
            for (const table of tables) yield* sql`DROP TABLE IF EXISTS ${dialect.table(sql, dataset, table)}`
            if (tables.length > 0) {
              yield* sql`DELETE FROM ${registry} WHERE pipeline_name = ${pipelineName} AND owner = ${owner} AND run_id <> ${runId}`
            }
            return tables
          })
        ),
      release: (row, table) =>
        as(`move the held rows into ${row.table}`)(
          Effect.gen(function* () {
            if (!(yield* recorded(row))) return yield* discarded(row, `move the held rows into ${row.table}`)
            const hold = dialect.table(sql, dataset, row.holdTable)
            const target = dialect.table(sql, dataset, table.name)
            const held = yield* dialect.describeTable(sql, dataset, row.holdTable)
            const columns = Option.getOrElse(held, () => [])
              .map((c) => c.name)
              .filter((c) => c !== order.column)
            if (columns.length > 0) {
              const list = ids(columns)
              const seq = sql(order.column)
              if (table.writeDisposition === "merge" && table.primaryKey.length > 0) {
                const key = ids(table.primaryKey)
                yield* sql`DELETE FROM ${target} WHERE (${key}) IN (SELECT ${key} FROM ${hold})`
                // the last held row of a key wins, as when the rows were upserted one by one
                yield* sql`INSERT INTO ${target} (${list}) SELECT ${list} FROM ${hold} WHERE ${seq} IN (SELECT max(${seq}) FROM ${hold} GROUP BY ${key}) ORDER BY ${seq}`
              } else {
                yield* sql`INSERT INTO ${target} (${list}) SELECT ${list} FROM ${hold} ORDER BY ${seq}`
              }
            }
            yield* sql`DROP TABLE IF EXISTS ${hold}`
            yield* sql`DELETE FROM ${registry} WHERE pipeline_name = ${row.pipelineName} AND run_id = ${row.runId} AND hold_table = ${row.holdTable}`
          })
        )
    }
  }

  const stage: DestinationShape["stage"] = (target, spoolDir, stageOptions) =>
    Effect.gen(function* () {
      const sql = yield* options.client(target)
      const stager = yield* options.stager(target, sql, spoolDir, {
        direct: stageOptions?.direct ?? true,
        ensureTable: (client, table) => ensureTable(client, target.dataset, table)
      })
      return { write: stager.write, [STAGER]: { owner, stager } } satisfies Staged
    })

  const transaction: DestinationShape["transaction"] = (target, txOptions, body) =>
    Effect.gen(function* () {
      const stager = Option.flatMap(txOptions.stage, (s) => {
        // the stager travels with the stage (a wrapper that spreads the stage keeps it)
        const own = (s as Partial<Staged>)[STAGER]
        return own !== undefined && own.owner === owner ? Option.some(own.stager) : Option.none()
      })
      if (Option.isSome(txOptions.stage) && Option.isNone(stager)) {
        return yield* new DestinationError({
          destination: options.name,
          operation: "commit the load",
          reason: "the stage was not made by this destination"
        })
      }
      // a stage that wrote straight into the tables holds their transaction open on its own
      // connection: the commit joins it there, and creates the system tables inside it (a
      // transaction of their own would commit the rows early)
      const joined = Option.flatMap(stager, (s) => (s.connection === undefined ? Option.none() : s.connection()))
      if (Option.isNone(joined) && options.serialize !== undefined) {
        return yield* options.serialize(target)(commit(target, txOptions, body, stager, Option.none()))
      }
      return yield* commit(target, txOptions, body, stager, joined)
    })

  const commit = <A, E, R>(
    target: DatasetTarget,
    txOptions: { readonly pipelineName: string },
    body: (tx: Transaction) => Effect.Effect<A, E, R>,
    stager: Option.Option<Stager>,
    joined: Option.Option<SqlClient.SqlClient>
  ): Effect.Effect<A, E | DestinationError, R> =>
    Effect.gen(function* () {
      const dataset = target.dataset
      const sql = Option.isSome(joined) ? joined.value : yield* options.client(target)
      if (Option.isNone(joined)) yield* systemTables(sql, dataset)
      const holds = holdsWith(sql, dataset)
      const tx: Transaction = {
        ...(holds === undefined ? {} : { holds }),
        stateRows: (pipelineName, limit) =>
          as("read the state rows")(stateRowsWith(sql, dataset, pipelineName, limit, true)),
        readState: (pipelineName, loadId) => as("read a state row")(readStateWith(sql, dataset, pipelineName, loadId)),
        dropTables: (tables) =>
          as("drop tables")(
            Effect.forEach(tables, (table) => sql`DROP TABLE IF EXISTS ${dialect.table(sql, dataset, table)}`, {
              discard: true
            })
          ),
        writeTables: (tables) =>
          as("write the tables")(
            Effect.forEach(
              tables,
              (table) =>
                Effect.gen(function* () {
                  yield* ensureTable(sql, dataset, table)
                  const qualified = dialect.table(sql, dataset, table.name)
                  const emptied = Option.isSome(stager) && stager.value.emptied?.(table.name) === true
                  if (table.writeDisposition === "replace" && !emptied) yield* sql`DELETE FROM ${qualified}`
                  if (Option.isSome(stager)) yield* stager.value.apply(sql, table, qualified)
                }),
              { discard: true }
            )
          ),
        insertLoad: (row) =>
          as("insert the load row")(
            sql`INSERT INTO ${dialect.table(sql, dataset, LOADS_TABLE)} (load_id, schema_name, status, inserted_at, schema_version_hash) VALUES (${row.loadId}, ${row.schemaName}, ${row.status}, ${dialect.timestampParam(row.insertedAt)}, ${row.schemaVersionHash})`
          ),
        insertState: (row) =>
          as("insert the state row")(
            sql`INSERT INTO ${dialect.table(sql, dataset, STATE_TABLE)} (version, engine_version, pipeline_name, state, created_at, version_hash, _dlt_load_id, _dlt_id) VALUES (${row.version}, ${row.engineVersion}, ${row.pipelineName}, ${row.state}, ${dialect.timestampParam(row.createdAt)}, ${row.versionHash}, ${row.loadId}, ${row.dltId})`
          ),
        readSchema: (schemaName, selector) =>
          as("read the stored schema")(readSchemaWith(sql, dataset, schemaName, selector, true)),
        insertSchema: (row) =>
          as("insert the schema version")(
            sql`INSERT INTO ${dialect.table(sql, dataset, VERSION_TABLE)} (version, engine_version, inserted_at, schema_name, version_hash, schema) VALUES (${row.version}, ${row.engineVersion}, ${dialect.timestampParam(row.insertedAt)}, ${row.schemaName}, ${row.versionHash}, ${row.schema})`
          ),
        insertGroupRun: (row) => as("record the group run")(insertGroupRunWith(sql, dataset, row)),
        insertRunLoad: (row) =>
          as("record the load's run")(
            Effect.gen(function* () {
              const table = dialect.table(sql, dataset, RUN_LOADS_TABLE)
              if (Option.isNone(yield* dialect.describeTable(sql, dataset, RUN_LOADS_TABLE))) {
                // created by the first run with checkpoints, under the dataset lock (concurrent creators)
                yield* dialect.lockDataset(sql, dataset)
                const text = sql.literal(dialect.columnType("text"))
                const bigint = sql.literal(dialect.columnType("bigint"))
                const timestamp = sql.literal(dialect.columnType("timestamp"))
                yield* sql`CREATE TABLE IF NOT EXISTS ${table} (load_id ${text} NOT NULL, run_id ${text} NOT NULL, checkpoint ${bigint} NOT NULL, final ${bigint} NOT NULL, inserted_at ${timestamp} NOT NULL)`
              }
              yield* sql`INSERT INTO ${table} (load_id, run_id, checkpoint, final, inserted_at) VALUES (${row.loadId}, ${row.runId}, ${row.checkpoint}, ${row.final ? 1 : 0}, ${dialect.timestampParam(row.insertedAt)})`
            })
          ),
        deleteStatesBefore: (pipelineName, loadId) =>
          as("prune old state rows")(
            sql`DELETE FROM ${dialect.table(sql, dataset, STATE_TABLE)} WHERE pipeline_name = ${pipelineName} AND _dlt_load_id < ${loadId}`
          ),
        trimStates: (pipelineName, keep) => {
          const state = dialect.table(sql, dataset, STATE_TABLE)
          const loads = dialect.table(sql, dataset, LOADS_TABLE)
          // the keep-th newest state row of a completed load; none (fewer rows): NULL, nothing deleted
          return as("prune old state rows")(
            sql`DELETE FROM ${state} WHERE pipeline_name = ${pipelineName} AND _dlt_load_id < (SELECT l.load_id FROM ${state} s JOIN ${loads} l ON l.load_id = s._dlt_load_id WHERE s.pipeline_name = ${pipelineName} AND l.status = 0 ORDER BY l.load_id DESC LIMIT 1 OFFSET ${Math.max(0, Math.floor(keep) - 1)})`
          )
        }
      }
      // a pool can hand out a connection the server terminated a moment ago: BEGIN then fails with
      // nothing done, and the transaction gets one more try on a fresh connection
      let begun = false
      // set once the dialect's lock is held: a "locked" failure before that did nothing yet
      let locked = false
      const run = Effect.sync(() => {
        begun = true
        locked = false
      }).pipe(
        Effect.zipRight(Option.isSome(joined) ? systemTables(sql, dataset) : Effect.void),
        Effect.zipRight(
          as("lock the pipeline's commits")(dialect.lockPipeline(sql, dataset, txOptions.pipelineName)).pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                locked = true
              })
            )
          )
        ),
        Effect.zipRight(body(tx))
      )
      if (Option.isSome(stager)) yield* stager.value.beforeCommit
      const fail = (error: unknown) =>
        new DestinationError({
          destination: options.name,
          operation: "commit the load",
          reason: (options.describeError ?? causeText)(error),
          cause: error
        })
      return yield* sql.withTransaction(run).pipe(
        Effect.retry({ times: 1, while: (error) => !begun && isSqlError(error) && isConnectionLost(error) }),
        // a table the commit creates (a data table, _pipestate_group_runs) that a concurrent commit
        // created meanwhile: the rolled-back transaction is tried again
        // (never a transaction joined from a stage: rolling it back dropped the stage's rows)
        Effect.retry({ times: DDL_RETRIES, while: (error) => Option.isNone(joined) && isConcurrentDdl(error) }),
        waitForLock((error) => !locked && error instanceof DestinationError && isBusy(error.cause)),
        // a SqlError here is BEGIN itself; COMMIT and ROLLBACK on a connection the server killed are
        // raised as defects
        Effect.catchIf(
          (error): error is SqlError.SqlError => isSqlError(error),
          (error) => Effect.fail(fail(error))
        ),
        Effect.catchSomeDefect((defect) =>
          isSqlError(defect) ? Option.some(Effect.fail(fail(defect))) : Option.none()
        ),
        // the dataset may have been dropped behind our back: check the tables again next time
        Effect.tapError(() => Effect.sync(() => knownSystemTables(sql).delete(dataset))),
        Effect.ensuring(Option.isSome(stager) ? stager.value.afterCommit : Effect.void)
      )
    })

  const dataset = (target: DatasetTarget): Effect.Effect<DatasetAccess, DestinationError> =>
    Effect.map(options.client(target), (sql) => {
      const table = (name: string) => dialect.table(sql, target.dataset, name)
      return {
        name: target.dataset,
        sql: Option.some(sql),
        table: (name) => sql`${table(name)}`.compile()[0],
        tableExists: (name) =>
          read("read a table", Effect.map(dialect.describeTable(sql, target.dataset, name), Option.isSome)),
        rows: (name) => read(`read ${name}`, sql<Record<string, unknown>>`SELECT * FROM ${table(name)}`),
        execute: (statement, params) =>
          as("run a query")(sql.unsafe<Record<string, unknown>>(statement, params === undefined ? [] : [...params]))
      }
    })

  return {
    name: options.name,
    type: options.type,
    identity: options.identity,
    location: options.location ?? ((target) => `${options.identity(target)}#${target.dataset}`),
    datasetExists: (target) =>
      withClient(target, "check the dataset", (sql) => dialect.datasetExists(sql, target.dataset)),
    stateRows: (target, pipelineName, limit) =>
      withClient(target, "read the state rows", (sql) => stateRowsWith(sql, target.dataset, pipelineName, limit)),
    readState: (target, pipelineName, loadId) =>
      withClient(target, "read a state row", (sql) => readStateWith(sql, target.dataset, pipelineName, loadId)),
    readSchema: (target, schemaName, selector) =>
      withClient(target, "read the stored schema", (sql) => readSchemaWith(sql, target.dataset, schemaName, selector)),
    describeTables: (target, tables) =>
      withClient(target, "describe tables", (sql) =>
        Effect.gen(function* () {
          const result = new Map<string, ReadonlyArray<ExistingColumn>>()
          for (const table of tables) {
            const columns = yield* dialect.describeTable(sql, target.dataset, table)
            if (Option.isSome(columns)) {
              result.set(
                table,
                columns.value.map((c) => ({ name: c.name, type: dialect.fromSqlType(c.sqlType) }))
              )
            }
          }
          return result as ReadonlyMap<string, ReadonlyArray<ExistingColumn>>
        })
      ),
    stage,
    transaction,
    dataset,
    readGroupRun: (target, pipelineName, runId, group) =>
      withClient(target, "read the group run", (sql) =>
        readGroupRunWith(sql, target.dataset, pipelineName, runId, group)
      ),
    ...(dialect.holdOrder === undefined
      ? {}
      : { holdTable: (key: HoldKey) => holdTableName(key, dialect.maxIdentifierBytes ?? 63) }),
    runLoads: (target, loadIds) =>
      withClient(target, "read the loads' runs", (sql) =>
        Effect.gen(function* () {
          if (loadIds.length === 0) return []
          if (Option.isNone(yield* dialect.describeTable(sql, target.dataset, RUN_LOADS_TABLE))) return []
          const rows = yield* sql<{
            readonly load_id: string
            readonly run_id: string
            readonly checkpoint: unknown
            readonly final: unknown
            readonly inserted_at: unknown
          }>`SELECT load_id, run_id, checkpoint, final, inserted_at FROM ${dialect.table(sql, target.dataset, RUN_LOADS_TABLE)} WHERE load_id IN ${sql.in(loadIds)}`
          return rows.map(
            (row): RunLoadRow => ({
              loadId: row.load_id,
              runId: row.run_id,
              checkpoint: Number(row.checkpoint),
              final: Number(row.final) === 1,
              insertedAt: dialect.parseTimestamp(row.inserted_at)
            })
          )
        })
      ),
    dropDataset: (target) =>
      (options.serialize?.(target) ?? identity)(
        withClient(target, "drop the dataset", (sql) =>
          Effect.ensuring(
            // each table's drop is idempotent: a try that met a lock held elsewhere is tried again
            waitForLock(isBusy)(dialect.dropDataset(sql, target.dataset)),
            Effect.sync(() => knownSystemTables(sql).delete(target.dataset))
          )
        )
      )
  }
}

/**
 * The columns of a batch as SQL identifiers, in order (for hand-written bulk statements).
 *
 * @since 0.1.0
 */
export const columnList = (columns: ReadonlyArray<Column>): string =>
  columns.map((c) => quoteIdentifier(c.name)).join(", ")

/**
 * A double-quoted SQL identifier (PostgreSQL and SQLite), for statements built outside @effect/sql.
 *
 * @since 0.1.0
 */
export const quoteIdentifier = (name: string): string => `"${name.replaceAll('"', '""')}"`

/**
 * The name of a hold table (see `Destination.HoldTransaction`): `_pipestate_hold_`, 12 hex digits
 * of a SHA-256 of the pipeline, the run id and the table (distinct for every run of every pipeline
 * sharing the dataset), `_`, then the table's name cut to fit `maxBytes` (PostgreSQL: 63 bytes), e.g.
 * `_pipestate_hold_3fa9c02b11de_players_games`.
 *
 * @since 0.3.0
 */
export const holdTableName = (key: HoldKey, maxBytes = 63): string => {
  const hash = createHash("sha256")
    .update(`${key.pipelineName}\u0000${key.runId}\u0000${key.table}`)
    .digest("hex")
    .slice(0, 12)
  const prefix = `_pipestate_hold_${hash}_`
  let room = Math.max(0, maxBytes - Buffer.byteLength(prefix))
  let name = prefix
  for (const char of key.table) {
    const bytes = Buffer.byteLength(char)
    if (bytes > room) break
    room -= bytes
    name += char
  }
  return name
}
