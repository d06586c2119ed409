/**
 * The real PostgreSQL the tests use: PIPESTATE_TEST_POSTGRES_URL, or the local server. Under
 * CI=true an unreachable server fails the suite; elsewhere the PostgreSQL tests are skipped with one
 * line saying how to enable them.
 */
import pg from "pg"
import { Effect, Redacted } from "effect"
import * as Postgres from "../src/destination/postgres.js"
import * as Ids from "../src/internal/pipeline/Ids.js"

const ids = Ids.make()

export const TEST_POSTGRES_URL = process.env.PIPESTATE_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const probe = async (): Promise<string | undefined> => {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query("SELECT 1")
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  } finally {
    await client.end().catch(() => undefined)
  }
}

const failure = await probe()
if (failure !== undefined) {
  if (process.env.CI === "true") {
    throw new Error(`PostgreSQL is required under CI=true and cannot be reached (${failure})`)
  }
  console.log(
    `PostgreSQL tests skipped: cannot reach the test server (${failure}). Start PostgreSQL on 127.0.0.1:5432 or set PIPESTATE_TEST_POSTGRES_URL to enable them.`
  )
}

/** true when the PostgreSQL tests can run */
export const postgresAvailable = failure === undefined

/** the destination layer for the test server */
export const testDestination = () => Postgres.layer({ url: Redacted.make(TEST_POSTGRES_URL) })

/** a fresh dataset name, dropped (with everything in it) when the scope closes */
export const freshDataset = (prefix = "t") =>
  Effect.acquireRelease(
    Effect.sync(
      () =>
        `${prefix}_${ids
          .rowId()
          .toLowerCase()
          .replace(/[^a-z0-9]/g, "")}`
    ),
    // quoted as an identifier: a test's hostile prefix (a quote in it) is dropped too
    (dataset) =>
      Effect.promise(() => query(`DROP SCHEMA IF EXISTS "${dataset.replaceAll('"', '""')}" CASCADE`)).pipe(Effect.ignore)
  )

/** runs one query on a fresh connection of its own */
export const query = async <Row extends Record<string, unknown> = Record<string, unknown>>(
  text: string,
  params: ReadonlyArray<unknown> = []
): Promise<Array<Row>> => {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL })
  await client.connect()
  try {
    const result = await client.query(text, [...params])
    return result.rows as Array<Row>
  } finally {
    await client.end()
  }
}
