/**
 * The embedded destinations: a SQLite file per dataset (the default) and an in-memory SQLite
 * (for tests), both through @effect/sql-sqlite-node.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Statement from "@effect/sql/Statement"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import Sqlite from "better-sqlite3"
import { BigDecimal, Deferred, Duration, Effect, Either, Exit, FiberId, identity, Layer, Option, Scope } from "effect"
import { formatSqliteTimestamp, parseSqliteTimestamp, Timestamp } from "../state/StateValue.js"
import { type DatasetTarget, Destination, DestinationError, LOADS_TABLE } from "./Destination.js"
import * as SqlDestination from "./SqlDestination.js"
import { BEGIN, joiningClient } from "../internal/destination/JoiningSqliteClient.js"
import {
  type Cell,
  type Column,
  type ColumnType,
  decimalText,
  type RowBatch,
  type TableSchema
} from "../internal/destination/TableSchema.js"

const TYPES: Record<ColumnType, string> = {
  text: "TEXT",
  bigint: "INTEGER",
  double: "REAL",
  boolean: "BOOLEAN",
  timestamp: "TIMESTAMP",
  // a declared type containing TEXT gives TEXT affinity, so "1.50" is never turned into a REAL
  decimal: "DECIMAL_TEXT",
  bytes: "BLOB",
  json: "JSON"
}

const FROM_SQL = new Map(Object.entries(TYPES).map(([type, sql]) => [sql, type as ColumnType]))

const q = SqlDestination.quoteIdentifier

/**
 * SQLite's dialect. A dataset is a database file (or an in-memory database), so tables are
 * qualified by `main`, which keeps them apart from an attached staging database.
 *
 * @since 0.1.0
 */
export const dialect: SqlDestination.SqlDialect = {
  columnType: (type) => TYPES[type],
  fromSqlType: (sqlType) => FROM_SQL.get(sqlType.toUpperCase()) ?? null,
  table: (sql, _dataset, table) => sql`main.${sql(table)}`,
  ensureDataset: () => Effect.void,
  datasetExists: (sql) =>
    Effect.map(
      sql<{ name: string }>`SELECT name FROM main.sqlite_master WHERE type = 'table' AND name = ${LOADS_TABLE}`,
      (rows) => rows.length > 0
    ),
  describeTable: (sql, _dataset, table) =>
    Effect.map(
      sql<{ name: string; type: string }>`SELECT name, type FROM pragma_table_info(${table}, 'main')`,
      (rows) => (rows.length === 0 ? Option.none() : Option.some(rows.map((r) => ({ name: r.name, sqlType: r.type }))))
    ),
  dropDataset: (sql) =>
    Effect.gen(function* () {
      const tables = yield* sql<{
        name: string
      }>`SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
      for (const { name } of tables) yield* sql`DROP TABLE IF EXISTS main.${sql(name)}`
    }),
  lockDataset: () => Effect.void,
  // one connection per database file serializes this process's commits; another process's commit,
  // or its load writing rows straight into the file, holds SQLite's write lock: a write that
  // changes nothing takes it as the transaction's first statement (SQLITE_BUSY there: nothing done
  // yet, and the commit waits for it, see `lockWait`)
  lockPipeline: (sql) => sql`UPDATE main.${sql(LOADS_TABLE)} SET status = status WHERE 0`,
  // dlt's text: naive UTC with six fraction digits; older pipestate datasets hold ISO text
  timestampParam: (date) => formatSqliteTimestamp(date),
  parseTimestamp: (value) =>
    Either.match(parseSqliteTimestamp(String(value)), {
      onLeft: () => new Date(Number.NaN),
      onRight: (timestamp) => timestamp.toDate()
    }),
  addColumnIfNotExists: false,
  // a hold table is insert-only: its rowid grows in the order the rows were held
  holdOrder: { column: "rowid" }
}

/**
 * The table a file given by `path` records its one dataset in (`name`), created by the first commit.
 *
 * @since 0.1.0
 */
export const DATASET_TABLE = "_pipestate_dataset"

const otherDataset = (file: string, holds: string, dataset: string) =>
  new DestinationError({
    destination: "sqlite",
    operation: `use dataset ${dataset}`,
    reason: `the file ${file} holds dataset ${holds}, and a file given by \`path\` holds one dataset: give \`directory\` instead (one file per dataset) or use dataset ${holds} with this file`
  })

/** the dataset the file records, none when no commit recorded one (a new file, or one older than the record) */
const recordedDataset = (sql: SqlClient.SqlClient) =>
  Effect.gen(function* () {
    const tables = yield* sql`SELECT name FROM main.sqlite_master WHERE type = 'table' AND name = ${DATASET_TABLE}`
    if (tables.length === 0) return Option.none<string>()
    const rows = yield* sql<{ name: string }>`SELECT name FROM main.${sql(DATASET_TABLE)} LIMIT 1`
    return Option.fromNullable(rows[0]?.name)
  })

/** fails unless the file holds `dataset` or none yet: reads of another dataset see nothing of this one */
const checkDataset = (file: string, sql: SqlClient.SqlClient, dataset: string) =>
  Effect.flatMap(recordedDataset(sql), (holds) =>
    Option.isSome(holds) && holds.value !== dataset
      ? Effect.fail(otherDataset(file, holds.value, dataset))
      : Effect.void
  )

/**
 * The dialect of a file given by `path`: the first commit records its dataset in the file, inside
 * the commit's transaction (SQLite's write lock makes the first of two writers win).
 */
const singleFileDialect = (file: string): SqlDestination.SqlDialect => ({
  ...dialect,
  ensureDataset: (sql, dataset) =>
    Effect.gen(function* () {
      yield* sql`CREATE TABLE IF NOT EXISTS main.${sql(DATASET_TABLE)} (name TEXT NOT NULL)`
      yield* sql`INSERT INTO main.${sql(DATASET_TABLE)} (name) SELECT ${dataset} WHERE NOT EXISTS (SELECT 1 FROM main.${sql(DATASET_TABLE)})`
      yield* checkDataset(file, sql, dataset)
    })
})

/**
 * How each column type is bound by better-sqlite3, which takes no Date, boolean or object; `null`
 * where the cell is bound as it is (text, bigint, double), so the hot loop calls nothing for them.
 */
const converters: Record<ColumnType, ((cell: NonNullable<Cell>) => unknown) | null> = {
  text: null,
  bigint: null,
  double: null,
  boolean: (cell) => (cell ? 1 : 0),
  // dlt's text: naive UTC, six fraction digits (2026-11-29 16:28:54.191953)
  timestamp: (cell) =>
    cell instanceof Date || cell instanceof Timestamp ? formatSqliteTimestamp(cell) : String(cell),
  decimal: (cell) => (BigDecimal.isBigDecimal(cell) ? decimalText(cell) : String(cell)),
  bytes: (cell) => (cell instanceof Uint8Array ? Buffer.from(cell.buffer, cell.byteOffset, cell.byteLength) : cell),
  // JSON.stringify throws on a bigint or a cycle inside the cell: the stager names where
  json: (cell) => JSON.stringify(cell)
}

/** rows per multi-row INSERT: one statement run per row costs a call and a VDBE start each */
const ROWS_PER_INSERT = 16
/** bound parameters per statement, well under SQLite's limit (32,766) */
const PARAMS_PER_INSERT = 8_000

/** the INSERTs of one column list into one table: one row, and `rows` rows per statement */
interface Inserts {
  readonly one: Sqlite.Statement
  readonly many: Sqlite.Statement | undefined
  readonly rows: number
}

const prepareInserts = (db: Sqlite.Database, into: string, columns: ReadonlyArray<Column>): Inserts => {
  const list = SqlDestination.columnList(columns)
  const values = `(${columns.map(() => "?").join(", ")})`
  const rows = Math.max(1, Math.min(ROWS_PER_INSERT, Math.floor(PARAMS_PER_INSERT / Math.max(1, columns.length))))
  return {
    one: db.prepare(`INSERT INTO ${into} (${list}) VALUES ${values}`),
    many:
      rows > 1 ? db.prepare(`INSERT INTO ${into} (${list}) VALUES ${Array(rows).fill(values).join(", ")}`) : undefined,
    rows
  }
}

/**
 * Inserts the rows of `batch` in order, `inserts.rows` rows per statement, each cell converted
 * for better-sqlite3. Throws (inside `Effect.try`) what better-sqlite3 throws, and for a json cell
 * JSON cannot write, where it is.
 */
const bindRows = (inserts: Inserts, table: TableSchema, batch: RowBatch): void => {
  const width = batch.columns.length
  const convert = batch.columns.map((c) => converters[c.type])
  const rows = batch.rows
  const group = inserts.many === undefined ? 1 : inserts.rows
  const many: Array<unknown> = new Array(width * group)
  const one: Array<unknown> = new Array(width)
  // where a conversion threw (JSON.stringify on a bigint or a cycle), for the message
  let r = 0
  let c = 0
  const fill = (params: Array<unknown>, at: number): void => {
    const row = rows[r]!
    for (c = 0; c < width; c++) {
      const cell = row[c]
      const f = convert[c]!
      params[at + c] = cell === null || cell === undefined ? null : f === null ? cell : f(cell)
    }
    c = -1
  }
  try {
    const whole = group > 1 ? rows.length - (rows.length % group) : 0
    for (r = 0; r < whole; ) {
      for (let at = 0; at < many.length; at += width) {
        fill(many, at)
        r++
      }
      inserts.many!.run(many)
    }
    for (; r < rows.length; r++) {
      fill(one, 0)
      inserts.one.run(one)
    }
  } catch (error) {
    const column = batch.columns[c]
    if (c < 0 || column === undefined || column.type !== "json") throw error
    throw new Error(
      `column ${column.name} of table ${table.name}, row ${r} of this batch: the value cannot be written as JSON (${error instanceof Error ? error.message : String(error)}); convert bigints to strings and remove cycles in the resource`
    )
  }
}

/**
 * Stages rows in a throwaway SQLite file in the load's spool directory; at commit the file is
 * attached to the destination's connection and copied with `INSERT ... SELECT` inside the
 * transaction. The staging file is written through better-sqlite3 directly: it is private to the
 * load, and one prepared single-row INSERT per batch inside a transaction is the fastest way in.
 * It is created on the first row, so a run without rows pays nothing for it.
 *
 * @since 0.1.0
 */
export const makeStager = (
  destination: string,
  spoolDir: string
): Effect.Effect<{ readonly attachTo: (sql: SqlClient.SqlClient) => SqlDestination.Stager }, never, Scope.Scope> =>
  Effect.gen(function* () {
    const fail = (operation: string) => (cause: unknown) =>
      new DestinationError({
        destination,
        operation,
        reason: cause instanceof Error ? cause.message : String((cause as { message?: unknown })?.message ?? cause)
      })
    const file = NodePath.join(spoolDir, "stage.sqlite")
    let db: Sqlite.Database | undefined
    yield* Effect.addFinalizer(() => Effect.sync(() => db?.close()))
    const open = (): Sqlite.Database => {
      if (db === undefined) {
        db = new Sqlite(file)
        db.pragma("journal_mode = OFF")
        db.pragma("synchronous = OFF")
      }
      return db
    }
    const staged = new Map<string, Map<string, ColumnType>>()
    const inserts = new Map<string, Inserts>()
    const lock = yield* Effect.makeSemaphore(1)
    const alias = `stage_${randomBytes(6).toString("hex")}`

    const stageBatch = (table: TableSchema, batch: RowBatch): void => {
      const stage = open()
      let columns = staged.get(table.name)
      if (columns === undefined) {
        const defs = batch.columns.map((c) => `${q(c.name)} ${TYPES[c.type]}`).join(", ")
        stage.exec(`CREATE TABLE ${q(table.name)} (${defs})`)
        columns = new Map(batch.columns.map((c) => [c.name, c.type]))
        staged.set(table.name, columns)
      } else {
        for (const c of batch.columns) {
          if (columns.has(c.name)) continue
          stage.exec(`ALTER TABLE ${q(table.name)} ADD COLUMN ${q(c.name)} ${TYPES[c.type]}`)
          columns.set(c.name, c.type)
        }
      }
      const list = SqlDestination.columnList(batch.columns)
      const key = `${table.name}\u0000${list}`
      let insert = inserts.get(key)
      if (insert === undefined) {
        insert = prepareInserts(stage, q(table.name), batch.columns)
        inserts.set(key, insert)
      }
      const statements = insert
      stage.transaction(() => bindRows(statements, table, batch))()
    }

    const write: SqlDestination.Stager["write"] = (table, batch) =>
      batch.rows.length === 0
        ? Effect.void
        : lock.withPermits(1)(
            // JSON.stringify throws on bigint and cycles inside json cells; better-sqlite3 throws on I/O
            Effect.try({ try: () => stageBatch(table, batch), catch: fail(`stage rows of ${table.name}`) })
          )

    const apply = (sql: SqlClient.SqlClient, table: TableSchema, qualified: Statement.Fragment) =>
      Effect.gen(function* () {
        const columns = staged.get(table.name)
        if (columns === undefined) return
        const ids = (names: ReadonlyArray<string>) => sql.csv(names.map((name) => sql`${sql(name)}`))
        const list = ids([...columns.keys()])
        const source = sql`${sql(alias)}.${sql(table.name)}`
        if (table.writeDisposition === "merge" && table.primaryKey.length > 0) {
          const key = ids(table.primaryKey)
          yield* sql`DELETE FROM ${qualified} WHERE (${key}) IN (SELECT ${key} FROM ${source})`
          // the last record of a key wins, as when the rows were upserted one by one
          yield* sql`INSERT INTO ${qualified} (${list}) SELECT ${list} FROM ${source} WHERE rowid IN (SELECT max(rowid) FROM ${source} GROUP BY ${key}) ORDER BY rowid`
        } else {
          yield* sql`INSERT INTO ${qualified} (${list}) SELECT ${list} FROM ${source} ORDER BY rowid`
        }
      })

    const attachTo = (sql: SqlClient.SqlClient): SqlDestination.Stager => ({
      write,
      beforeCommit: Effect.suspend(() =>
        staged.size === 0
          ? Effect.void
          : sql
              .unsafe(`ATTACH DATABASE ? AS ${q(alias)}`, [file])
              .pipe(Effect.asVoid, Effect.mapError(fail("attach the staged rows")))
      ),
      afterCommit: Effect.suspend(() =>
        staged.size === 0 ? Effect.void : sql.unsafe(`DETACH DATABASE ${q(alias)}`).pipe(Effect.ignore)
      ),
      apply
    })
    return { attachTo }
  })

// ---------------------------------------------------------------------------------------------
// Direct writes: the rows go straight into their tables, inside a transaction opened at the first
// row on a connection of the stage's own and committed by the load's commit, which joins it there
// ---------------------------------------------------------------------------------------------

/**
 * Who in this process holds a database file's write transaction for a stage, and who waits to
 * commit after it. A stage only ever claims the lock without waiting (else it stages to a file); a
 * commit that does not join a stage's transaction waits here rather than in SQLite's busy handler,
 * which would block the event loop and with it the stage that holds the lock.
 */
interface FileLock {
  holder: symbol | undefined
  readonly waiters: Array<{ readonly owner: symbol; readonly wake: Deferred.Deferred<void> }>
}

const fileLocks = new Map<string, FileLock>()

const fileLock = (filename: string): FileLock => {
  let lock = fileLocks.get(filename)
  if (lock === undefined) {
    lock = { holder: undefined, waiters: [] }
    fileLocks.set(filename, lock)
  }
  return lock
}

const tryClaim = (lock: FileLock, owner: symbol): boolean => {
  if (lock.holder === undefined) lock.holder = owner
  return lock.holder === owner
}

const release = (lock: FileLock, owner: symbol): void => {
  if (lock.holder !== owner) return
  const next = lock.waiters.shift()
  lock.holder = next?.owner
  if (next !== undefined) Deferred.unsafeDone(next.wake, Exit.void)
}

const acquire = (lock: FileLock, owner: symbol): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (tryClaim(lock, owner)) return Effect.void
    const waiter = { owner, wake: Deferred.unsafeMake<void>(FiberId.none) }
    lock.waiters.push(waiter)
    return Effect.onInterrupt(Deferred.await(waiter.wake), () =>
      Effect.sync(() => {
        const at = lock.waiters.indexOf(waiter)
        if (at >= 0) lock.waiters.splice(at, 1)
        else release(lock, owner)
      })
    )
  })

const withFileLock =
  (lock: FileLock) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      const owner = Symbol("commit")
      return Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(
          restore(acquire(lock, owner)),
          Effect.ensuring(
            restore(self),
            Effect.sync(() => release(lock, owner))
          )
        )
      )
    })

interface DirectTable {
  /** the quoted table the rows go into: the dataset's own, or a temporary one for `merge` */
  readonly into: string
  /** `merge` rows wait in a temporary table (private to the connection) for the upsert */
  readonly merge: boolean
  readonly columns: Set<string>
}

/**
 * A stage that writes rows straight into their tables: at the first row it claims the file's
 * write lock in this process (without waiting), opens a connection of its own and `BEGIN
 * IMMEDIATE` (without waiting for another process either); then every batch is inserted into its
 * table (created or widened first, and emptied first for `replace`) inside that transaction, which
 * readers (other connections) do not see. The load's commit joins the transaction on this
 * connection, so rows and state commit together; a failure rolls it back, and a killed process
 * leaves only uncommitted WAL frames, which SQLite ignores. `merge` rows wait in a temporary
 * table and are upserted at the commit. When the lock or the file is taken, or `direct` is off,
 * the rows go to the file stage (`fallback`) as before.
 */
const makeDirectStager = (options: {
  readonly destination: string
  readonly filename: string
  readonly fallback: SqlDestination.Stager
  readonly context: SqlDestination.StagerContext
}): Effect.Effect<SqlDestination.Stager, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { fallback, context } = options
    const fail = (operation: string) => (cause: unknown) =>
      new DestinationError({
        destination: options.destination,
        operation,
        reason: cause instanceof Error ? cause.message : String((cause as { message?: unknown })?.message ?? cause),
        cause
      })
    const owner = Symbol("stage")
    const lock = fileLock(options.filename)
    let mode: "undecided" | "direct" | "file" = "undecided"
    let db: Sqlite.Database | undefined
    let client: SqlClient.SqlClient | undefined
    const tables = new Map<string, DirectTable>()
    const inserts = new Map<string, Inserts>()
    const emptied = new Set<string>()
    const writeLock = yield* Effect.makeSemaphore(1)
    const prefix = `pipestate_stage_${randomBytes(6).toString("hex")}_`

    const reset = () => {
      tables.clear()
      inserts.clear()
      emptied.clear()
      mode = "undecided"
      release(lock, owner)
    }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (db !== undefined) {
          // a load that never committed leaves nothing
          if (db.inTransaction) db.exec("ROLLBACK")
          db.close()
        }
        reset()
      })
    )

    /** direct when the lock and the file's write lock are free now, else the file stage */
    const decide = Effect.suspend(() => {
      if (mode !== "undecided") return Effect.void
      if (!tryClaim(lock, owner)) {
        mode = "file"
        return Effect.void
      }
      return Effect.gen(function* () {
        if (db === undefined) {
          db = yield* Effect.try({ try: () => new Sqlite(options.filename), catch: fail("open the load's connection") })
          client = yield* joiningClient(db)
        }
        const opened = db
        const begun = yield* Effect.try({
          try: () => {
            // another process writing now: stage to a file and wait at the commit only, as before
            opened.pragma("busy_timeout = 0")
            try {
              opened.exec(BEGIN)
              return true
            } catch (error) {
              if ((error as { code?: unknown }).code === "SQLITE_BUSY") return false
              throw error
            } finally {
              opened.pragma("busy_timeout = 5000")
            }
          },
          catch: fail("begin the load's transaction")
        })
        if (begun) {
          mode = "direct"
        } else {
          release(lock, owner)
          mode = "file"
        }
      })
    })

    const ensure = (table: TableSchema, batch: RowBatch): Effect.Effect<DirectTable, DestinationError> =>
      Effect.gen(function* () {
        const sql = client!
        const raw = db!
        const exec = (statement: string) => Effect.try({ try: () => void raw.exec(statement), catch: (e) => e })
        let t = tables.get(table.name)
        const fresh = batch.columns.filter((c) => t === undefined || !t.columns.has(c.name))
        if (t !== undefined && fresh.length === 0) return t
        if (table.writeDisposition === "merge" && table.primaryKey.length > 0) {
          if (t === undefined) {
            const into = `temp.${q(`${prefix}${tables.size}`)}`
            const defs = batch.columns.map((c) => `${q(c.name)} ${TYPES[c.type]}`).join(", ")
            yield* exec(`CREATE TEMP TABLE ${into.slice(5)} (${defs})`)
            t = { into, merge: true, columns: new Set(batch.columns.map((c) => c.name)) }
            tables.set(table.name, t)
          } else {
            for (const c of fresh) {
              yield* exec(`ALTER TABLE ${t.into} ADD COLUMN ${q(c.name)} ${TYPES[c.type]}`)
              t.columns.add(c.name)
            }
          }
          return t
        }
        yield* context.ensureTable(sql, table)
        if (t === undefined) {
          const into = `main.${q(table.name)}`
          if (table.writeDisposition === "replace") {
            yield* exec(`DELETE FROM ${into}`)
            emptied.add(table.name)
          }
          t = { into, merge: false, columns: new Set() }
          tables.set(table.name, t)
        }
        for (const c of table.columns) t.columns.add(c.name)
        return t
      }).pipe(Effect.mapError(fail(`write the rows of ${table.name}`)))

    const insertBatch = (table: TableSchema, into: DirectTable, batch: RowBatch): void => {
      const list = SqlDestination.columnList(batch.columns)
      const key = `${into.into}\u0000${list}`
      let insert = inserts.get(key)
      if (insert === undefined) {
        insert = prepareInserts(db!, into.into, batch.columns)
        inserts.set(key, insert)
      }
      bindRows(insert, table, batch)
    }

    const write: SqlDestination.Stager["write"] = (table, batch) =>
      batch.rows.length === 0
        ? Effect.void
        : writeLock.withPermits(1)(
            Effect.gen(function* () {
              yield* decide
              if (mode !== "direct") return yield* fallback.write(table, batch)
              const into = yield* ensure(table, batch)
              yield* Effect.try({
                try: () => insertBatch(table, into, batch),
                catch: fail(`write the rows of ${table.name}`)
              })
            })
          )

    const apply = (sql: SqlClient.SqlClient, table: TableSchema, qualified: Statement.Fragment) =>
      Effect.gen(function* () {
        if (mode !== "direct") return yield* fallback.apply(sql, table, qualified)
        const t = tables.get(table.name)
        if (t === undefined || !t.merge) return
        const ids = (names: Iterable<string>) => sql.csv([...names].map((name) => sql`${sql(name)}`))
        const list = ids(t.columns)
        const key = ids(table.primaryKey)
        const source = sql.literal(t.into)
        yield* sql`DELETE FROM ${qualified} WHERE (${key}) IN (SELECT ${key} FROM ${source})`
        // the last record of a key wins, as when the rows were upserted one by one
        yield* sql`INSERT INTO ${qualified} (${list}) SELECT ${list} FROM ${source} WHERE rowid IN (SELECT max(rowid) FROM ${source} GROUP BY ${key}) ORDER BY rowid`
        yield* sql`DROP TABLE ${source}`
      })

    return {
      write,
      connection: () =>
        mode === "direct" && db !== undefined && db.inTransaction && client !== undefined
          ? Option.some(client)
          : Option.none(),
      emptied: (table) => mode === "direct" && emptied.has(table),
      beforeCommit: Effect.suspend(() => (mode === "direct" ? Effect.void : fallback.beforeCommit)),
      afterCommit: Effect.suspend(() =>
        mode === "direct"
          ? Effect.sync(() => {
              // committed or rolled back by the commit's transaction; what is left of it goes
              if (db?.inTransaction === true) db.exec("ROLLBACK")
              reset()
            })
          : fallback.afterCommit
      ),
      apply
    } satisfies SqlDestination.Stager
  })

/**
 * Opens (once) and caches a SQLite client per key, closed with the layer.
 */
const clientCache = (
  destination: string,
  filenameFor: (target: DatasetTarget) => string
): Effect.Effect<(target: DatasetTarget) => Effect.Effect<SqlClient.SqlClient, DestinationError>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const clients = new Map<string, SqlClient.SqlClient>()
    const lock = yield* Effect.makeSemaphore(1)
    return (target) => {
      const filename = filenameFor(target)
      // every ":memory:" connection is a private database: one per dataset
      const key = filename === ":memory:" ? `:memory:${target.dataset}` : filename
      return lock.withPermits(1)(
        Effect.suspend(() => {
          const cached = clients.get(key)
          if (cached !== undefined) return Effect.succeed(cached)
          // a configured directory that does not exist yet is created, as a server creates a schema
          const directory =
            filename === ":memory:"
              ? Effect.void
              : Effect.try({
                  try: () => void NodeFs.mkdirSync(NodePath.dirname(filename), { recursive: true }),
                  catch: (error) =>
                    new DestinationError({
                      destination,
                      operation: `create the directory of ${filename}`,
                      reason: error instanceof Error ? error.message : String(error),
                      cause: error
                    })
                })
          return Effect.zipRight(directory, SqliteClient.make({ filename })).pipe(
            // a write lock held by another process fails a statement after 50 ms rather than
            // blocking the event loop for better-sqlite3's 5 s: commits wait for it asynchronously
            Effect.tap((client) => Effect.ignore(client`PRAGMA busy_timeout = 50`)),
            Effect.provide(Reactivity.layer),
            Scope.extend(scope),
            Effect.catchAllDefect((defect) =>
              Effect.fail(
                new DestinationError({
                  destination,
                  operation: `open ${filename}`,
                  reason: defect instanceof Error ? defect.message : String(defect)
                })
              )
            ),
            Effect.tap((client) =>
              Effect.sync(() => {
                clients.set(key, client)
              })
            )
          )
        })
      )
    }
  })

/** how long a commit waits for SQLite's write lock held by another process, by default */
const DEFAULT_LOCK_TIMEOUT = Duration.minutes(10)

/** SQLite's "database is locked" (`SQLITE_BUSY` and its extended codes), anywhere in a cause chain */
const isSqliteBusy = (error: unknown): boolean => {
  let current: unknown = error
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string" && code.startsWith("SQLITE_BUSY")) return true
    current = (current as { cause?: unknown }).cause
  }
  return false
}

const makeSqlite = (options: {
  readonly name: string
  readonly type: string
  readonly filenameFor: (target: DatasetTarget) => string
  readonly identity: (target: DatasetTarget) => string
  readonly location: (target: DatasetTarget) => string
  /** the one file every dataset is addressed to (`path`), which then holds one dataset */
  readonly singleFile?: string
  readonly lockTimeout?: Duration.DurationInput | undefined
}) =>
  Effect.gen(function* () {
    const cached = yield* clientCache(options.name, options.filenameFor)
    const file = options.singleFile
    const client =
      file === undefined
        ? cached
        : (target: DatasetTarget) =>
            Effect.tap(cached(target), (sql) =>
              SqlDestination.typed(options.name)(`check the dataset of ${file}`)(
                checkDataset(file, sql, target.dataset)
              )
            )
    return SqlDestination.make({
      lockWait: { isBusy: isSqliteBusy, timeout: options.lockTimeout ?? DEFAULT_LOCK_TIMEOUT },
      name: options.name,
      type: options.type,
      identity: options.identity,
      location: options.location,
      dialect: file === undefined ? dialect : singleFileDialect(file),
      client,
      stager: (target, sql, spoolDir, context) =>
        Effect.flatMap(makeStager(options.name, spoolDir), (stager) => {
          const filename = options.filenameFor(target)
          // an in-memory database has no second connection
          return filename === ":memory:" || !context.direct
            ? Effect.succeed(stager.attachTo(sql))
            : makeDirectStager({ destination: options.name, filename, fallback: stager.attachTo(sql), context })
        }),
      serialize: (target) => {
        const filename = options.filenameFor(target)
        return filename === ":memory:" ? identity : withFileLock(fileLock(filename))
      }
    })
  })

/**
 * @since 0.1.0
 */
export interface SqliteOptions {
  /**
   * one database file, holding one dataset: the first commit records its dataset in the file
   * (`_pipestate_dataset`), and any use with another dataset fails with a `DestinationError`; by
   * default each dataset is `<dataset>.sqlite` in `directory`
   */
  readonly path?: string
  /** where `<dataset>.sqlite` files go; by default the pipeline's working directory */
  readonly directory?: string
  /**
   * how long a commit waits for the file's write lock while another process holds it (another
   * process's commit, or its load, which writes rows straight into the file from its first row to
   * its commit); then it fails with a `DestinationError`. Default 10 minutes. Commits of one
   * process wait for each other without a limit.
   */
  readonly lockTimeout?: Duration.DurationInput
}

/**
 * The embedded default destination: a SQLite file per dataset.
 *
 * @example
 * ```ts
 * Pipeline.run(source).pipe(Effect.provide(Destination.sqlite({ directory: "./data" })))
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options: SqliteOptions = {}): Layer.Layer<Destination> => {
  const filenameFor = (target: DatasetTarget) =>
    NodePath.resolve(options.path ?? NodePath.join(options.directory ?? target.pipelineDir, `${target.dataset}.sqlite`))
  return Layer.scoped(
    Destination,
    // dlt reaches SQLite through its sqlalchemy destination: the state names that type, so dlt can
    // restore a pipestate state and find the destination it belongs to
    makeSqlite({
      name: "sqlite",
      type: "dlt.destinations.sqlalchemy",
      filenameFor,
      identity: filenameFor,
      location: filenameFor,
      lockTimeout: options.lockTimeout,
      ...(options.path === undefined ? {} : { singleFile: NodePath.resolve(options.path) })
    })
  )
}

/**
 * An in-memory destination for tests: one in-memory SQLite database per dataset, alive as long as
 * the layer. Build the layer once and share it between runs to see state restored from it.
 *
 * @example
 * ```ts
 * const destination = Destination.memory()
 * it.layer(destination)("restore", (it) => ...)
 * ```
 *
 * @since 0.1.0
 */
export const memoryLayer = (): Layer.Layer<Destination> =>
  Layer.scoped(
    Destination,
    makeSqlite({
      name: "memory",
      type: "pipestate.destinations.memory",
      filenameFor: () => ":memory:",
      identity: () => "memory",
      location: (target) => `memory:${target.dataset}`
    })
  )
