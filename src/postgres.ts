/**
 * `pipestate/postgres`: the PostgreSQL driver (@effect/sql-pg; rows through COPY inside the commit
 * transaction).
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import * as Postgres from "effect-pipestate/postgres"
 *
 * Pipeline.run(source).pipe(Effect.provide(Postgres.layer({ url: Redacted.make("postgres://loader@db/warehouse") })))
 * ```
 *
 * @since 0.1.0
 */
export { dialect, layer, make, type PostgresOptions, URL_ENV } from "./destination/postgres.js"
