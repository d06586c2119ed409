/**
 * An @effect/sql client over a better-sqlite3 connection whose `BEGIN` joins a transaction already
 * open on it: SQLite's direct write opens the load's transaction at its first row (`BEGIN
 * IMMEDIATE`), and the commit, run through this client, joins it, so rows and state commit
 * together.
 *
 * @since 0.2.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import * as SqlError from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import type Sqlite from "better-sqlite3"
import { Chunk, Context, Effect, Option, Scope, Stream } from "effect"

const STREAM_CHUNK = 256

/** how a stage opens its transaction (it takes the write lock at once) */
export const BEGIN = "BEGIN IMMEDIATE"

const sqlError = (cause: unknown) => new SqlError.SqlError({ cause, message: "Failed to execute statement" })

/**
 * An @effect/sql client over a better-sqlite3 connection of the stage's own (as
 * @effect/sql-sqlite-node makes one), whose BEGIN joins the transaction the stage opened.
 */
export const joiningClient = (db: Sqlite.Database): Effect.Effect<SqlClient.SqlClient> => {
  const statements = new Map<string, Sqlite.Statement>()
  const prepare = (text: string): Sqlite.Statement => {
    let statement = statements.get(text)
    if (statement === undefined) {
      statement = db.prepare(text)
      statements.set(text, statement)
    }
    return statement
  }
  const run = (
    text: string,
    params: ReadonlyArray<unknown>,
    raw: boolean,
    prepared: boolean
  ): Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError> =>
    Effect.withFiberRuntime((fiber) => {
      try {
        const statement = prepared ? prepare(text) : db.prepare(text)
        if (Context.get(fiber.currentContext, SqlClient.SafeIntegers)) statement.safeIntegers(true)
        if (statement.reader) return Effect.succeed(statement.all(...params))
        const result = statement.run(...params)
        return Effect.succeed(raw ? [result] : [])
      } catch (cause) {
        return Effect.fail(sqlError(cause))
      }
    })
  type Rows = <A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>
  const transform = (effect: Effect.Effect<ReadonlyArray<unknown>, SqlError.SqlError>, rows: Rows | undefined) =>
    rows === undefined ? effect : Effect.map(effect, (r) => rows(r as ReadonlyArray<object>))
  const connection: SqlConnection.Connection = {
    execute: (text, params, rows) => transform(run(text, params, false, true), rows),
    executeRaw: (text, params) => Effect.map(run(text, params, true, true), (r) => r[0]),
    executeValues: (text, params) =>
      Effect.try({
        try: () => {
          const statement = prepare(text)
          if (!statement.reader) {
            statement.run(...params)
            return []
          }
          statement.raw(true)
          try {
            return statement.all(...params) as ReadonlyArray<ReadonlyArray<unknown>>
          } finally {
            statement.raw(false)
          }
        },
        catch: sqlError
      }),
    executeUnprepared: (text, params, rows) =>
      // the transaction is open since the first row: the commit's BEGIN joins it
      text === BEGIN && db.inTransaction ? Effect.succeed([]) : transform(run(text, params, false, false), rows),
    // rows as the statement steps through them, STREAM_CHUNK at a time; an interrupted stream
    // closes the statement's iterator
    executeStream: (text, params, rows) =>
      Stream.unwrapScoped(
        Effect.map(
          Effect.acquireRelease(
            Effect.try({
              try: () => db.prepare(text).iterate(...params) as IterableIterator<object>,
              catch: sqlError
            }),
            (iterator) => Effect.sync(() => iterator.return?.())
          ),
          (iterator) =>
            Stream.repeatEffectChunkOption(
              Effect.suspend(() => {
                const chunk: Array<object> = []
                try {
                  while (chunk.length < STREAM_CHUNK) {
                    const next = iterator.next()
                    if (next.done === true) break
                    chunk.push(next.value)
                  }
                } catch (cause) {
                  return Effect.fail(Option.some(sqlError(cause)))
                }
                if (chunk.length === 0) return Effect.fail(Option.none())
                return Effect.succeed(Chunk.unsafeFromArray(rows === undefined ? chunk : rows(chunk)))
              })
            )
        )
      )
  }
  const semaphore = Effect.unsafeMakeSemaphore(1)
  return SqlClient.make({
    acquirer: semaphore.withPermits(1)(Effect.succeed(connection)),
    transactionAcquirer: Effect.uninterruptibleMask((restore) =>
      Effect.as(
        Effect.zipRight(
          restore(semaphore.take(1)),
          Effect.tap(Effect.scope, (scope) => Scope.addFinalizer(scope, semaphore.release(1)))
        ),
        connection
      )
    ),
    compiler: Statement.makeCompilerSqlite(),
    spanAttributes: [["db.system.name", "sqlite"]],
    beginTransaction: BEGIN
  }).pipe(Effect.provide(Reactivity.layer))
}
