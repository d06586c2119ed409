/**
 * The PostgreSQL destination (@effect/sql-pg). A dataset is a schema, created when missing. Rows
 * are spooled as CSV while they are extracted and go in with COPY on the commit transaction's own
 * connection, so rows, `_dlt_loads` and `_dlt_pipeline_state` commit together.
 *
 * @since 0.1.0
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Reactivity from "@effect/experimental/Reactivity"
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Statement from "@effect/sql/Statement"
import * as PgClient from "@effect/sql-pg/PgClient"
import pg from "pg"
import { Config, Duration, Effect, Either, Layer, Option, Redacted, type Scope } from "effect"
import { type DatasetTarget, Destination, DestinationError } from "./Destination.js"
import {
  copyCsvStatement,
  copyFromFile,
  formatCsvInto,
  makeCsvScratch,
  transactionPgClient
} from "../internal/destination/PgCopy.js"
import * as SqlDestination from "./SqlDestination.js"
import type { Column, ColumnType, TableSchema } from "../internal/destination/TableSchema.js"

const TYPES: Record<ColumnType, string> = {
  text: "text",
  bigint: "bigint",
  double: "double precision",
  boolean: "boolean",
  timestamp: "timestamp with time zone",
  decimal: "numeric",
  bytes: "bytea",
  json: "jsonb"
}

/**
 * Timestamps, dates and times come back as PostgreSQL's text: node-postgres' `Date` drops the
 * microseconds and reads a `date` at local midnight. `Dataset` decodes the text; the destination's
 * own reads (`parseTimestamp`) take text too.
 */
const TEXT_KEPT = new Set([1082, 1083, 1114, 1184, 1266])
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    TEXT_KEPT.has(oid) && format !== "binary"
      ? (value: string) => value
      : pg.types.getTypeParser(oid, format as "text")) as pg.CustomTypesConfig["getTypeParser"]
}

const FROM_SQL = new Map(Object.entries(TYPES).map(([type, sql]) => [sql, type as ColumnType]))

const q = SqlDestination.quoteIdentifier

/** PostgreSQL truncates identifiers past 63 bytes; a truncated dataset name would silently alias another. */
const MAX_IDENTIFIER_BYTES = 63

/**
 * PostgreSQL's dialect: a dataset is a schema.
 *
 * @since 0.1.0
 */
export const dialect: SqlDestination.SqlDialect = {
  columnType: (type) => (type === "timestamp" ? "timestamptz" : TYPES[type]),
  fromSqlType: (sqlType) => FROM_SQL.get(sqlType.toLowerCase()) ?? null,
  table: (sql, dataset, table) => sql`${sql(dataset)}.${sql(table)}`,
  ensureDataset: (sql, dataset) => Effect.asVoid(sql`CREATE SCHEMA IF NOT EXISTS ${sql(dataset)}`),
  datasetExists: (sql, dataset) =>
    Effect.map(
      sql<{ one: number }>`SELECT 1 AS one FROM pg_namespace WHERE nspname = ${dataset}`,
      (rows) => rows.length > 0
    ),
  describeTable: (sql, dataset, table) =>
    Effect.map(
      // pg_catalog answers in a fraction of information_schema's time, which matters on every commit
      sql<{
        column_name: string
        data_type: string
      }>`SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS data_type FROM pg_attribute a WHERE a.attrelid = to_regclass(${`${q(dataset)}.${q(table)}`}) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      (rows) =>
        rows.length === 0
          ? Option.none()
          : Option.some(rows.map((r) => ({ name: r.column_name, sqlType: r.data_type })))
    ),
  dropDataset: (sql, dataset) => Effect.asVoid(sql`DROP SCHEMA IF EXISTS ${sql(dataset)} CASCADE`),
  lockDataset: (sql, dataset) =>
    Effect.asVoid(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`pipestate\u0001${dataset}`}, 0))`),
  lockPipeline: (sql, dataset, pipelineName) =>
    Effect.asVoid(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`${dataset}\u0001${pipelineName}`}, 0))`),
  timestampParam: (date) => date,
  parseTimestamp: (value) => (value instanceof Date ? value : new Date(String(value))),
  addColumnIfNotExists: true,
  // COPY into a hold table numbers its rows in the order they were held
  holdOrder: { column: "_pipestate_seq", addType: "bigserial" },
  maxIdentifierBytes: MAX_IDENTIFIER_BYTES
}

interface Segment {
  readonly columns: ReadonlyArray<Column>
  readonly path: string
  readonly fd: number
}

const sameColumns = (a: ReadonlyArray<Column>, b: ReadonlyArray<Column>): boolean =>
  a.length === b.length && a.every((c, i) => c.name === b[i]?.name)

/**
 * Spools each table's rows as CSV files (a new file whenever the table gains a column); at commit
 * the files are COPYed on the transaction's connection.
 *
 * @since 0.1.0
 */
export const makeStager = (
  destination: string,
  target: DatasetTarget,
  spoolDir: string
): Effect.Effect<SqlDestination.Stager, never, Scope.Scope> =>
  Effect.gen(function* () {
    const segments = new Map<string, Array<Segment>>()
    const fail = (operation: string) => (cause: unknown) =>
      cause instanceof DestinationError
        ? cause
        : new DestinationError({
            destination,
            operation,
            reason: cause instanceof Error ? cause.message : String((cause as { message?: unknown })?.message ?? cause)
          })
    const closeAll = Effect.sync(() => {
      for (const list of segments.values()) {
        for (const segment of list) {
          try {
            NodeFs.closeSync(segment.fd)
          } catch {
            // already closed at commit
          }
        }
      }
    })
    yield* Effect.addFinalizer(() => closeAll)
    const lock = yield* Effect.makeSemaphore(1)
    const scratch = makeCsvScratch()

    const write: SqlDestination.Stager["write"] = (table, batch) =>
      Effect.gen(function* () {
        if (batch.rows.length === 0) return
        // formatted and written under the lock: one scratch buffer serves every batch of every table
        yield* lock.withPermits(1)(
          Effect.flatMap(
            Either.mapLeft(
              formatCsvInto(batch.columns, batch.rows, scratch, { table: table.name }),
              fail(`format rows of ${table.name}`)
            ),
            (used) =>
              Effect.try({
                try: () => {
                  let list = segments.get(table.name)
                  if (list === undefined) {
                    list = []
                    segments.set(table.name, list)
                  }
                  let segment = list[list.length - 1]
                  if (segment === undefined || !sameColumns(segment.columns, batch.columns)) {
                    const path = NodePath.join(spoolDir, `${table.name}.${list.length}.csv`)
                    segment = { columns: batch.columns, path, fd: NodeFs.openSync(path, "a") }
                    list.push(segment)
                  }
                  // a synchronous append keeps the order of batches in the file without a queue
                  let written = 0
                  while (written < used)
                    written += NodeFs.writeSync(segment.fd, scratch.buffer, written, used - written)
                },
                catch: fail(`spool rows of ${table.name}`)
              })
          )
        )
      })

    const apply = (sql: SqlClient.SqlClient, table: TableSchema, qualified: Statement.Fragment) =>
      Effect.gen(function* () {
        const list = segments.get(table.name)
        if (list === undefined || list.length === 0) return
        const client = yield* Effect.mapError(transactionPgClient, fail("reach the transaction's connection"))
        const key = table.primaryKey.map(q).join(", ")
        if (table.writeDisposition !== "merge" || key === "") {
          for (const segment of list) {
            yield* copyFromFile(client, copyCsvStatement(table.name, segment.columns, target.dataset), segment.path, {
              table: table.name
            }).pipe(Effect.mapError(fail(`copy rows into ${table.name}`)))
          }
          return
        }
        const stageName = `_pipestate_stage_${table.name}`.slice(0, MAX_IDENTIFIER_BYTES)
        const stage = q(stageName)
        yield* sql`CREATE TEMP TABLE ${sql(stageName)} (LIKE ${qualified}) ON COMMIT DROP`
        yield* sql`ALTER TABLE ${sql(stageName)} ADD COLUMN "_pipestate_seq" bigserial`
        for (const segment of list) {
          const columns = segment.columns.map((c) => q(c.name)).join(", ")
          yield* copyFromFile(
            client,
            `COPY ${stage} (${columns}) FROM STDIN WITH (FORMAT csv, ENCODING 'UTF8')`,
            segment.path,
            { table: table.name }
          ).pipe(Effect.mapError(fail(`copy rows into ${table.name}`)))
        }
        const ids = (names: ReadonlyArray<string>) => sql.csv(names.map((name) => sql`${sql(name)}`))
        const all = ids(table.columns.map((c) => c.name))
        const keys = ids(table.primaryKey)
        const match = sql.and(table.primaryKey.map((k) => sql`t.${sql(k)} = s.${sql(k)}`))
        const staged = sql`${sql(stageName)}`
        yield* sql`DELETE FROM ${qualified} t USING (SELECT DISTINCT ${keys} FROM ${staged}) s WHERE ${match}`
        // the last record of a key wins, as when the rows were upserted one by one
        yield* sql`INSERT INTO ${qualified} (${all}) SELECT ${all} FROM (SELECT DISTINCT ON (${keys}) * FROM ${staged} ORDER BY ${keys}, "_pipestate_seq" DESC) latest`
      })

    return {
      write,
      beforeCommit: closeAll.pipe(
        Effect.zipRight(
          Effect.sync(() => {
            for (const [name, list] of segments) {
              segments.set(
                name,
                list.map((s) => ({ ...s, fd: -1 }))
              )
            }
          })
        )
      ),
      afterCommit: Effect.void,
      apply
    }
  })

/**
 * How to reach the server. A URL or the parts; the password is kept `Redacted`.
 *
 * @since 0.1.0
 */
export interface PostgresOptions {
  readonly url?: string | Redacted.Redacted<string>
  readonly host?: string
  readonly port?: number
  readonly user?: string
  readonly password?: string | Redacted.Redacted<string>
  readonly database?: string
  readonly maxConnections?: number
  readonly connectTimeout?: Duration.DurationInput
}

const redacted = (value: string | Redacted.Redacted<string> | undefined): Redacted.Redacted<string> | undefined =>
  value === undefined ? undefined : Redacted.isRedacted(value) ? value : Redacted.make(value)

interface Endpoint {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly secrets: ReadonlyArray<string>
}

const endpointOf = (options: PostgresOptions): Endpoint => {
  const url = redacted(options.url)
  const secrets: Array<string> = []
  const password = redacted(options.password)
  if (password !== undefined) secrets.push(Redacted.value(password))
  if (url !== undefined) {
    const text = Redacted.value(url)
    secrets.push(text)
    try {
      const parsed = new URL(text)
      if (parsed.password !== "") secrets.push(decodeURIComponent(parsed.password), parsed.password)
      return {
        host: parsed.hostname || "localhost",
        port: parsed.port === "" ? 5432 : Number(parsed.port),
        database: decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "postgres",
        user: decodeURIComponent(parsed.username) || "postgres",
        secrets
      }
    } catch {
      return { host: "(unparsable url)", port: 0, database: "", user: "", secrets }
    }
  }
  return {
    host: options.host ?? "localhost",
    port: options.port ?? 5432,
    database: options.database ?? "postgres",
    user: options.user ?? "postgres",
    secrets
  }
}

const scrub = (text: string, secrets: ReadonlyArray<string>): string =>
  secrets.reduce((out, secret) => (secret === "" ? out : out.replaceAll(secret, "<redacted>")), text)

const describeError =
  (endpoint: Endpoint) =>
  (error: unknown): string => {
    const parts: Array<string> = []
    let current: unknown = error
    for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
      const message = (current as { message?: unknown }).message
      const code = (current as { code?: unknown }).code
      if (typeof message === "string" && message !== "" && !parts.some((p) => p.includes(message))) {
        parts.push(typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message)
      }
      current = (current as { cause?: unknown }).cause
    }
    const text = parts.join(": ") || String(error)
    const unreachable = /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|Connection terminated|timeout|connect/i.test(
      text
    )
    const where = unreachable ? ` (PostgreSQL at ${endpoint.host}:${endpoint.port}, database ${endpoint.database})` : ""
    return scrub(`${text}${where}`, endpoint.secrets)
  }

/**
 * Builds the destination; fails when the server cannot be reached.
 *
 * @since 0.1.0
 */
export const make = (options: PostgresOptions) =>
  Effect.gen(function* () {
    const endpoint = endpointOf(options)
    const url = redacted(options.url)
    const password = redacted(options.password)
    const client = yield* PgClient.make({
      ...(url !== undefined
        ? { url }
        : {
            host: endpoint.host,
            port: endpoint.port,
            database: endpoint.database,
            username: endpoint.user,
            ...(password !== undefined ? { password } : {})
          }),
      maxConnections: options.maxConnections ?? 10,
      connectTimeout: options.connectTimeout ?? Duration.seconds(10),
      applicationName: "pipestate",
      types
    }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.mapError(
        (error) =>
          new DestinationError({
            destination: "postgres",
            operation: "connect",
            reason: describeError(endpoint)(error)
          })
      )
    )
    const sql: SqlClient.SqlClient = client
    return SqlDestination.make({
      name: "postgres",
      type: "dlt.destinations.postgres",
      identity: () => `postgres://${endpoint.user}@${endpoint.host}:${endpoint.port}/${endpoint.database}`,
      dialect,
      client: (target) =>
        Buffer.byteLength(target.dataset) > MAX_IDENTIFIER_BYTES
          ? Effect.fail(
              new DestinationError({
                destination: "postgres",
                operation: "use the dataset",
                reason: `the dataset name ${JSON.stringify(target.dataset)} is longer than ${MAX_IDENTIFIER_BYTES} bytes, PostgreSQL's identifier limit`
              })
            )
          : Effect.succeed(sql),
      stager: (target, _sql, spoolDir) => makeStager("postgres", target, spoolDir),
      describeError: describeError(endpoint)
    })
  })

/** The env variable the PostgreSQL URL is read from when no options are given. */
export const URL_ENV = "PIPESTATE_POSTGRES_URL"

/**
 * The PostgreSQL destination. Without options it reads the URL from `PIPESTATE_POSTGRES_URL`.
 *
 * @example
 * ```ts
 * Pipeline.run(source).pipe(
 *   Effect.provide(Destination.postgres({ url: Redacted.make("postgres://loader@db:5432/warehouse") }))
 * )
 * ```
 *
 * @since 0.1.0
 */
export const layer = (options?: PostgresOptions): Layer.Layer<Destination, DestinationError> =>
  Layer.scoped(
    Destination,
    Effect.gen(function* () {
      if (options !== undefined) return yield* make(options)
      const url = yield* Config.option(Config.redacted(URL_ENV)).pipe(Effect.orElseSucceed(() => Option.none()))
      if (Option.isNone(url)) {
        return yield* new DestinationError({
          destination: "postgres",
          operation: "configure",
          reason: `no server given: pass { url } to Destination.postgres or set ${URL_ENV}`
        })
      }
      return yield* make({ url: url.value })
    })
  )
