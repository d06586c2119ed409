/**
 * `pipestate/sqlite`: the SQLite driver (@effect/sql-sqlite-node, better-sqlite3), the embedded
 * default destination.
 *
 * @example
 * ```ts
 * import * as Sqlite from "effect-pipestate/sqlite"
 *
 * Pipeline.run(source).pipe(Effect.provide(Sqlite.layer({ directory: "./data" })))
 * ```
 *
 * @since 0.1.0
 */
export { dialect, layer, memoryLayer, type SqliteOptions } from "./destination/sqlite.js"
