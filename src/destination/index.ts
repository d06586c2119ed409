/**
 * The destination port and the built-in destinations. The layers here load their drivers when they
 * are built, so importing `pipestate` loads neither better-sqlite3 nor pg; `pipestate/sqlite`,
 * `pipestate/postgres` and `pipestate/sql` give the drivers themselves.
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import { Destination, Pipeline } from "effect-pipestate"
 *
 * Pipeline.run(source).pipe(Effect.provide(Destination.sqlite()))                     // the embedded default
 * Pipeline.run(source).pipe(Effect.provide(Destination.postgres({ url: Redacted.make(url) })))
 * Pipeline.run(source).pipe(Effect.provide(Destination.layerConfig({ pipelineName: "chess_pipeline" })))
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import { Effect, Layer, Option } from "effect"
import * as PipestateConfig from "../config/PipestateConfig.js"
import { type Destination, DestinationError } from "./Destination.js"
import type { PostgresOptions } from "./postgres.js"
import type { SqliteOptions } from "./sqlite.js"

export * from "./Destination.js"
export type {
  Cell,
  Column,
  ColumnType,
  JsonCell,
  RowBatch,
  TableSchema,
  WriteDisposition
} from "../internal/destination/TableSchema.js"
export type { PostgresOptions, SqliteOptions }

/** a driver module, imported when its layer is built */
const load = <A>(name: string, module: () => Promise<A>) =>
  Effect.tryPromise({
    try: module,
    catch: (error) =>
      new DestinationError({
        destination: name,
        operation: "load the driver",
        reason: error instanceof Error ? error.message : String(error),
        cause: error
      })
  })

/**
 * The embedded default destination: a SQLite file per dataset (`<dataset>.sqlite` in the pipeline's
 * working dir, or in `directory`, or one file `path` that holds one dataset). See `pipestate/sqlite`.
 *
 * @since 0.1.0
 */
export const sqlite = (options: SqliteOptions = {}): Layer.Layer<Destination> =>
  // the driver is part of this package: failing to load it is a broken install, a defect
  Layer.unwrapEffect(
    Effect.map(Effect.orDie(load("sqlite", () => import("./sqlite.js"))), (driver) => driver.layer(options))
  )

/**
 * PostgreSQL: a dataset is a schema; rows go in with COPY inside the commit transaction. Without
 * options the URL comes from `PIPESTATE_POSTGRES_URL`. See `pipestate/postgres`.
 *
 * @since 0.1.0
 */
export const postgres = (options?: PostgresOptions): Layer.Layer<Destination, DestinationError> =>
  Layer.unwrapEffect(
    Effect.map(
      load("postgres", () => import("./postgres.js")),
      (driver) => driver.layer(options)
    )
  )

/**
 * An in-memory destination for tests: one in-memory SQLite database per dataset, alive as long as
 * the layer. Build the layer once (`Layer.memoize`) and share it between runs to see state restored.
 *
 * @since 0.1.0
 */
export const memory = (): Layer.Layer<Destination> =>
  Layer.unwrapEffect(
    Effect.map(Effect.orDie(load("memory", () => import("./sqlite.js"))), (driver) => driver.memoryLayer())
  )

/**
 * The destination the configuration names, resolved as `Pipeline.layer` resolves its options
 * (code → env → `.pipestate/config.toml` → default `sqlite`): `destination` (`PIPESTATE_DESTINATION`),
 * `destination.postgres.url` (`PIPESTATE_POSTGRES_URL`), `destination.sqlite.directory` and
 * `destination.sqlite.path`.
 *
 * @example
 * ```ts
 * // PIPESTATE_DESTINATION=postgres PIPESTATE_POSTGRES_URL=postgres://loader@db/warehouse node main.js
 * Pipeline.run(source).pipe(Effect.provide(Destination.layerConfig({ pipelineName: "chess_pipeline" })))
 * ```
 *
 * @since 0.1.0
 */
export const layerConfig = (
  options: PipestateConfig.LoadOptions = {}
): Layer.Layer<
  Destination,
  DestinationError | PipestateConfig.InvalidConfigFile | PipestateConfig.InvalidConfigValue,
  FileSystem.FileSystem | Path.Path
> =>
  Layer.unwrapEffect(
    Effect.map(PipestateConfig.load(options), (config) => {
      if (config.destination.value === "postgres") {
        return Option.match(config.postgresUrl.value, {
          onNone: () =>
            Layer.fail(
              new DestinationError({
                destination: "postgres",
                operation: "configure",
                reason: `the destination is postgres (from ${PipestateConfig.formatOrigin(config.destination.origin)}) but no server is given: set PIPESTATE_POSTGRES_URL or destination.postgres.url in .pipestate/config.toml`
              })
            ),
          onSome: (url) => postgres({ url })
        })
      }
      return sqlite({
        ...Option.match(config.sqlitePath.value, { onNone: () => ({}), onSome: (path) => ({ path }) }),
        ...Option.match(config.sqliteDirectory.value, { onNone: () => ({}), onSome: (directory) => ({ directory }) })
      })
    })
  )
