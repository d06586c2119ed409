/**
 * The destination over a generic @effect/sql `SqlClient`: system tables, table creation and
 * widening, the one-transaction commit of rows + `_dlt_loads` + `_dlt_pipeline_state`, optimistic
 * concurrency on the state, state history and pruning. What differs between databases (types,
 * qualification, bulk row staging) comes in through a `SqlDialect` and a `Stager`.
 *
 * @since 0.1.0
 */
import type { SqlClient, SqlError } from "@effect/sql"
import { Cause, Effect, Option, type Scope } from "effect"
import {
  type DatasetAccess,
  type DatasetTarget,
  DestinationError,
  type DestinationShape,
  type ExistingColumn,
  type LoadCommit,
  type LoadJob,
  StateConflict,
  type StoredState
} from "./Destination.js"
import type { Column, ColumnType, RowBatch, TableSchema } from "./TableSchema.js"

/**
 * What differs between SQL databases.
 *
 * @since 0.1.0
 */
export interface SqlDialect {
  readonly columnType: (type: ColumnType) => string
  readonly fromSqlType: (sqlType: string) => ColumnType | null
  /** the quoted, qualified name of a table */
  readonly qualify: (dataset: string, table: string) => string
  readonly ensureDataset: (sql: SqlClient.SqlClient, dataset: string) => Effect.Effect<void, SqlError.SqlError>
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
  /** serializes commits of one pipeline inside the transaction (e.g. an advisory lock); may be a no-op where transactions are serialized anyway */
  readonly lockPipeline: (
    sql: SqlClient.SqlClient,
    dataset: string,
    pipelineName: string
  ) => Effect.Effect<void, SqlError.SqlError>
  /** how a timestamp is bound as a parameter */
  readonly timestampParam: (date: Date) => unknown
  readonly parseTimestamp: (value: unknown) => Date
  /** `ADD COLUMN` clause prefix: PostgreSQL can say `IF NOT EXISTS` */
  readonly addColumn: string
  /** the positional parameter marker for the 1-based `index` (`?` or `$1`) */
  readonly placeholder: (index: number) => string
}

/**
 * Stages the rows of a load until its commit, then moves them into their tables inside the commit's
 * transaction.
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
    qualified: string
  ) => Effect.Effect<void, DestinationError | SqlError.SqlError>
}

/**
 * @since 0.1.0
 */
export interface SqlDestinationOptions {
  readonly name: string
  readonly type: string
  readonly location: (target: DatasetTarget) => string
  readonly dialect: SqlDialect
  /** the client holding `target`'s dataset */
  readonly client: (target: DatasetTarget) => Effect.Effect<SqlClient.SqlClient, DestinationError>
  readonly stager: (
    target: DatasetTarget,
    client: SqlClient.SqlClient,
    spoolDir: string
  ) => Effect.Effect<Stager, DestinationError, Scope.Scope>
  /** turns a driver failure into a message a user can act on (e.g. host and port of an unreachable server) */
  readonly describeError?: (error: unknown) => string
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

/**
 * A pool may hand out a connection the server has just terminated; an idempotent operation gets
 * one more attempt on a fresh connection. Never used for the commit transaction.
 */
const retryReconnect = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(self, { times: 1, while: isConnectionLost })

/** @since 0.1.0 */
export const quoteIdentifier = (name: string): string => `"${name.replaceAll('"', '""')}"`

/** @since 0.1.0 */
export const LOADS_TABLE = "_dlt_loads"
/** @since 0.1.0 */
export const STATE_TABLE = "_dlt_pipeline_state"

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

/**
 * Builds a `Destination` over SQL.
 *
 * @since 0.1.0
 */
export const make = (options: SqlDestinationOptions): DestinationShape => {
  const { dialect } = options
  const describe = options.describeError ?? causeText
  const fail =
    (operation: string) =>
    (error: unknown): DestinationError =>
      error instanceof DestinationError
        ? error
        : new DestinationError({ destination: options.name, operation, reason: describe(error) })

  const withClient = <A, E, R>(
    target: DatasetTarget,
    operation: string,
    f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, DestinationError, R> =>
    Effect.flatMap(options.client(target), f).pipe(retryReconnect, Effect.mapError(fail(operation)))

  const q = (target: DatasetTarget, table: string) => dialect.qualify(target.dataset, table)

  /** datasets whose system tables this destination has seen or created */
  const knownSystemTables = new Set<string>()

  const ensureSystemTables = (sql: SqlClient.SqlClient, target: DatasetTarget) =>
    Effect.gen(function* () {
      yield* dialect.ensureDataset(sql, target.dataset)
      const text = dialect.columnType("text")
      const bigint = dialect.columnType("bigint")
      const timestamp = dialect.columnType("timestamp")
      yield* sql.unsafe(
        `CREATE TABLE IF NOT EXISTS ${q(target, LOADS_TABLE)} (load_id ${text} NOT NULL, schema_name ${text}, status ${bigint} NOT NULL, inserted_at ${timestamp} NOT NULL, schema_version_hash ${text})`
      )
      yield* sql.unsafe(
        `CREATE TABLE IF NOT EXISTS ${q(target, STATE_TABLE)} (version ${bigint} NOT NULL, engine_version ${bigint} NOT NULL, pipeline_name ${text} NOT NULL, state ${text} NOT NULL, created_at ${timestamp} NOT NULL, version_hash ${text}, _dlt_load_id ${text} NOT NULL, _dlt_id ${text} NOT NULL)`
      )
    })

  const stateRows = (sql: SqlClient.SqlClient, target: DatasetTarget, pipelineName: string, limit: number) =>
    Effect.gen(function* () {
      const exists = yield* dialect.describeTable(sql, target.dataset, STATE_TABLE)
      if (Option.isNone(exists)) {
        knownSystemTables.delete(target.dataset)
        return []
      }
      const rows = yield* sql.unsafe<{
        version: unknown
        engine_version: unknown
        pipeline_name: string
        state: string
        created_at: unknown
        version_hash: string | null
        load_id: string
      }>(
        `SELECT s.version, s.engine_version, s.pipeline_name, s.state, s.created_at, s.version_hash, l.load_id FROM ${q(target, STATE_TABLE)} s JOIN ${q(target, LOADS_TABLE)} l ON l.load_id = s._dlt_load_id WHERE s.pipeline_name = ${placeholder(dialect, 1)} AND l.status = 0 ORDER BY l.load_id DESC LIMIT ${Math.max(0, Math.floor(limit))}`,
        [pipelineName]
      )
      return rows.map(
        (row): StoredState => ({
          version: Number(row.version),
          engineVersion: Number(row.engine_version),
          pipelineName: row.pipeline_name,
          state: row.state,
          createdAt: dialect.parseTimestamp(row.created_at),
          versionHash: row.version_hash,
          loadId: row.load_id
        })
      )
    })

  const ensureTable = (sql: SqlClient.SqlClient, target: DatasetTarget, table: TableSchema) =>
    Effect.gen(function* () {
      const qualified = q(target, table.name)
      const existing = yield* dialect.describeTable(sql, target.dataset, table.name)
      if (Option.isNone(existing)) {
        const columns = table.columns.map((c) => `${quoteIdentifier(c.name)} ${dialect.columnType(c.type)}`).join(", ")
        yield* sql.unsafe(`CREATE TABLE ${qualified} (${columns})`)
        return
      }
      const have = new Set(existing.value.map((c) => c.name))
      for (const column of table.columns) {
        if (have.has(column.name)) continue
        yield* sql.unsafe(
          `ALTER TABLE ${qualified} ${dialect.addColumn} ${quoteIdentifier(column.name)} ${dialect.columnType(column.type)}`
        )
      }
    })

  const checkExpectation = (sql: SqlClient.SqlClient, target: DatasetTarget, commit: LoadCommit) =>
    Effect.gen(function* () {
      if (commit.expected._tag === "Unchecked") return
      const found = (yield* stateRows(sql, target, commit.pipelineName, 1))[0]
      const expected = Option.getOrNull(commit.expected.newest)
      const same =
        found === undefined
          ? expected === null
          : expected !== null && expected.version === found.version && expected.hash === found.versionHash
      if (!same) {
        return yield* new StateConflict({
          pipelineName: commit.pipelineName,
          dataset: target.dataset,
          expectedVersion: expected?.version ?? null,
          expectedHash: expected?.hash ?? null,
          foundVersion: found?.version ?? null,
          foundHash: found?.versionHash ?? null
        })
      }
    })

  const pruneState = (sql: SqlClient.SqlClient, target: DatasetTarget, commit: LoadCommit) =>
    Effect.gen(function* () {
      const keep = Math.max(1, Math.floor(commit.keepStateVersions))
      const kept = yield* stateRows(sql, target, commit.pipelineName, keep)
      const oldest = kept[kept.length - 1]
      if (kept.length < keep || oldest === undefined) return
      yield* sql.unsafe(
        `DELETE FROM ${q(target, STATE_TABLE)} WHERE pipeline_name = ${placeholder(dialect, 1)} AND _dlt_load_id < ${placeholder(dialect, 2)}`,
        [commit.pipelineName, oldest.loadId]
      )
    })

  const commitLoad = (sql: SqlClient.SqlClient, target: DatasetTarget, stager: Stager, commit: LoadCommit) =>
    Effect.gen(function* () {
      yield* dialect.lockPipeline(sql, target.dataset, commit.pipelineName)
      yield* checkExpectation(sql, target, commit)
      for (const table of commit.dropTables) {
        yield* sql.unsafe(`DROP TABLE IF EXISTS ${q(target, table)}`)
      }
      for (const table of commit.tables) {
        yield* ensureTable(sql, target, table)
        if (table.writeDisposition === "replace") yield* sql.unsafe(`DELETE FROM ${q(target, table.name)}`)
        yield* stager.apply(sql, table, q(target, table.name))
      }
      const now = new Date()
      yield* sql.unsafe(
        `INSERT INTO ${q(target, LOADS_TABLE)} (load_id, schema_name, status, inserted_at, schema_version_hash) VALUES (${placeholders(dialect, 5)})`,
        [commit.loadId, commit.schemaName, 0, dialect.timestampParam(now), null]
      )
      if (Option.isSome(commit.state)) {
        const state = commit.state.value
        yield* sql.unsafe(
          `INSERT INTO ${q(target, STATE_TABLE)} (version, engine_version, pipeline_name, state, created_at, version_hash, _dlt_load_id, _dlt_id) VALUES (${placeholders(dialect, 8)})`,
          [
            state.version,
            state.engineVersion,
            state.pipelineName,
            state.state,
            dialect.timestampParam(state.createdAt),
            state.versionHash,
            commit.loadId,
            uniqueId()
          ]
        )
        yield* pruneState(sql, target, commit)
      }
    })

  const openLoad = (target: DatasetTarget, spoolDir: string): Effect.Effect<LoadJob, DestinationError, Scope.Scope> =>
    Effect.gen(function* () {
      const sql = yield* options.client(target)
      const stager = yield* options.stager(target, sql, spoolDir)
      return {
        write: stager.write,
        commit: (commit) =>
          Effect.gen(function* () {
            // CREATE ... IF NOT EXISTS is not safe against a concurrent creator: first runs serialize
            // here; once seen, the tables are not re-created on every commit
            if (!knownSystemTables.has(target.dataset)) {
              yield* sql
                .withTransaction(
                  Effect.zipRight(dialect.lockDataset(sql, target.dataset), ensureSystemTables(sql, target))
                )
                .pipe(retryReconnect, Effect.mapError(fail("create the system tables")))
              knownSystemTables.add(target.dataset)
            }
            yield* stager.beforeCommit
            yield* sql.withTransaction(commitLoad(sql, target, stager, commit)).pipe(
              Effect.mapError((error) => (error instanceof StateConflict ? error : fail("commit the load")(error))),
              // a connection that dies mid-transaction also fails the ROLLBACK, which @effect/sql
              // raises as a defect; the load still did not commit, so it is a destination failure
              Effect.catchAllCause((cause) =>
                Option.match(Cause.failureOption(cause), {
                  onSome: Effect.fail,
                  onNone: () =>
                    Option.match(
                      Option.filter(
                        Cause.dieOption(cause),
                        (defect) => (defect as { _tag?: unknown } | null)?._tag === "SqlError"
                      ),
                      {
                        onSome: (defect) => Effect.fail(fail("commit the load")(defect)),
                        onNone: () => Effect.failCause(cause)
                      }
                    )
                })
              ),
              // the dataset may have been dropped behind our back: check the tables again next time
              Effect.tapError(() => Effect.sync(() => knownSystemTables.delete(target.dataset))),
              Effect.ensuring(stager.afterCommit)
            )
          })
      }
    })

  const dataset = (target: DatasetTarget): Effect.Effect<DatasetAccess, DestinationError> =>
    Effect.map(options.client(target), (sql) => ({
      name: target.dataset,
      sql: Option.some(sql),
      table: (name) => q(target, name),
      tableExists: (name) =>
        dialect
          .describeTable(sql, target.dataset, name)
          .pipe(Effect.map(Option.isSome), Effect.mapError(fail("read a table"))),
      rows: (table) =>
        sql
          .unsafe<Record<string, unknown>>(`SELECT * FROM ${q(target, table)}`)
          .pipe(Effect.mapError(fail(`read ${table}`))),
      execute: (statement, params) =>
        sql.unsafe<Record<string, unknown>>(statement, params ?? []).pipe(Effect.mapError(fail("run a query")))
    }))

  return {
    name: options.name,
    type: options.type,
    location: options.location,
    datasetExists: (target) =>
      withClient(target, "check the dataset", (sql) => dialect.datasetExists(sql, target.dataset)),
    newestState: (target, pipelineName) =>
      withClient(target, "read the newest state", (sql) =>
        Effect.map(stateRows(sql, target, pipelineName, 1), (rows) => Option.fromNullable(rows[0]))
      ),
    stateHistory: (target, pipelineName, limit) =>
      withClient(target, "read the state history", (sql) => stateRows(sql, target, pipelineName, limit)),
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
    openLoad,
    dataset,
    dropDataset: (target) =>
      withClient(target, "drop the dataset", (sql) =>
        Effect.ensuring(
          dialect.dropDataset(sql, target.dataset),
          Effect.sync(() => knownSystemTables.delete(target.dataset))
        )
      )
  }
}

const placeholder = (dialect: SqlDialect, n: number): string => dialect.placeholder(n)

const placeholders = (dialect: SqlDialect, count: number): string =>
  Array.from({ length: count }, (_, i) => placeholder(dialect, i + 1)).join(", ")

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// ids are cut from a pooled block of random bytes: one getRandomValues call per 4,096 ids instead
// of one per row (it was the single largest cost of a bulk load)
const ID_LENGTH = 14
const POOL_IDS = 4096
const idPool = new Uint8Array(ID_LENGTH * POOL_IDS)
let idOffset = idPool.length

/**
 * A 14-character random id, the shape of dlt's `_dlt_id`.
 *
 * @since 0.1.0
 */
export const uniqueId = (): string => {
  if (idOffset + ID_LENGTH > idPool.length) {
    globalThis.crypto.getRandomValues(idPool)
    idOffset = 0
  }
  let out = ""
  for (let i = idOffset; i < idOffset + ID_LENGTH; i++) out += ID_ALPHABET[idPool[i]! & 63]
  idOffset += ID_LENGTH
  return out
}

let lastLoadId = ""

/**
 * dlt's load id: unix seconds with microseconds, as text, sorting after `after` and after every id
 * made in this process.
 *
 * @since 0.1.0
 */
export const nextLoadId = (after: Option.Option<string>): string => {
  let id = (Date.now() / 1000).toFixed(6)
  for (const previous of [lastLoadId, Option.getOrElse(after, () => "")]) {
    if (previous !== "" && id <= previous) id = (Number(previous) + 0.000001).toFixed(6)
  }
  lastLoadId = id
  return id
}

/**
 * The columns of a batch as SQL identifiers, in order.
 *
 * @since 0.1.0
 */
export const columnList = (columns: ReadonlyArray<Column>): string =>
  columns.map((c) => quoteIdentifier(c.name)).join(", ")
