/**
 * Where a CLI command finds its pipeline and destination: command-line flags first, then the
 * configuration (`PipestateConfig.load`: env and `.pipestate/config.toml`), then the pipeline's
 * local state (`destination_name`, `dataset_name`), then the defaults.
 *
 * Nothing here creates a file or a directory: a command on a pipeline that does not exist must not
 * leave a working dir behind.
 *
 * @since 0.1.0
 */
import * as NodePath from "node:path"
import { FileSystem, Path } from "@effect/platform"
import { Effect, Either, Layer, Option, Redacted } from "effect"
import * as PipestateConfig from "../config/PipestateConfig.js"
import type { Destination, DestinationError } from "../destination/Destination.js"
import * as Postgres from "../destination/postgres.js"
import * as Sqlite from "../destination/sqlite.js"
import * as Pipeline from "../pipeline/Pipeline.js"
import * as WorkingDir from "../pipeline/WorkingDir.js"
import type * as PipelineState from "../state/PipelineState.js"
import { MissingPostgresUrl, UnknownPipeline, UnsupportedDestination } from "./Errors.js"

/**
 * The flags every pipeline command accepts.
 *
 * @since 0.1.0
 */
export interface CommonFlags {
  readonly pipelinesDir: Option.Option<string>
  readonly destination: Option.Option<PipestateConfig.DestinationName>
  readonly url: Option.Option<Redacted.Redacted<string>>
  readonly dataset: Option.Option<string>
}

/**
 * A value and, for humans, where it came from.
 *
 * @since 0.1.0
 */
export interface Chosen<A> {
  readonly value: A
  readonly from: string
  /** true when nothing named the value and a default was taken */
  readonly isDefault: boolean
}

/** the names a damaged state file still holds, when it is still JSON */
const salvage = (text: string): { readonly dataset?: string; readonly destination?: string } => {
  const doc = Either.getOrUndefined(Either.try((): unknown => JSON.parse(text)))
  if (typeof doc !== "object" || doc === null) return {}
  const { dataset_name: dataset, destination_name: destination } = doc as Record<string, unknown>
  return {
    ...(typeof dataset === "string" && dataset !== "" ? { dataset } : {}),
    ...(typeof destination === "string" && destination !== "" ? { destination } : {})
  }
}

/**
 * Everything a command knows about its pipeline before touching the destination.
 *
 * @since 0.1.0
 */
export interface Resolved {
  readonly name: string
  readonly config: PipestateConfig.EffectiveConfig
  readonly pipelinesDir: string
  readonly workingDir: string
  /** whether the working dir existed before this command */
  readonly workingDirExisted: boolean
  readonly local: Option.Option<PipelineState.PipelineState>
  /** the local state file exists but cannot be read */
  readonly corrupt: Option.Option<WorkingDir.CorruptStateFile>
  readonly destination: Chosen<PipestateConfig.DestinationName>
  readonly dataset: Chosen<string>
  /** true when a flag names the destination or dataset, so the pipeline need not be known locally */
  readonly explicitTarget: boolean
}

const FLAG_ORIGIN = "code"

/**
 * An origin as the CLI prints it: values passed as overrides came from the command line.
 *
 * @example
 * ```ts
 * originText({ _tag: "Code" }, "--dataset") // "command line (--dataset)"
 * ```
 *
 * @since 0.1.0
 */
export const originText = (origin: PipestateConfig.Origin, flag: string): string =>
  origin._tag === "Code" ? `command line (${flag})` : PipestateConfig.formatOrigin(origin)

const FLAGS: Record<string, string> = {
  pipelines_dir: "--pipelines-dir",
  dataset: "--dataset",
  destination: "--destination",
  "destination.postgres.url": "--url"
}

/**
 * `PipestateConfig.describe` with command-line origins named after their flags.
 *
 * @since 0.1.0
 */
export const describeConfig = (config: PipestateConfig.EffectiveConfig): ReadonlyArray<PipestateConfig.Described> =>
  PipestateConfig.describe(config).map((row) =>
    row.origin === FLAG_ORIGIN ? { ...row, origin: `command line (${FLAGS[row.key] ?? row.key})` } : row
  )

const isDestinationName = (name: string): name is PipestateConfig.DestinationName =>
  name === "sqlite" || name === "postgres"

/**
 * Resolves the pipelines dir, the options, the local state (read only if it exists), the
 * destination and the dataset of `name`.
 *
 * @since 0.1.0
 */
export const resolve = (name: string, flags: CommonFlags) =>
  Effect.gen(function* () {
    yield* WorkingDir.validatePipelineName(name)
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const config = yield* PipestateConfig.load({
      pipelineName: name,
      overrides: {
        pipelinesDir: Option.getOrUndefined(flags.pipelinesDir),
        destination: Option.getOrUndefined(flags.destination),
        postgresUrl: Option.getOrUndefined(flags.url),
        dataset: Option.getOrUndefined(flags.dataset)
      }
    })
    const pipelinesDir = yield* WorkingDir.resolvePipelinesDir(Option.getOrUndefined(config.pipelinesDir.value))
    const workingDir = path.join(pipelinesDir, name)
    const workingDirExisted = yield* fs.exists(workingDir).pipe(Effect.orElseSucceed(() => false))
    const hasState = yield* fs.exists(path.join(workingDir, "state.json")).pipe(Effect.orElseSucceed(() => false))
    // WorkingDir.make creates the directory, so only open it when it is there already
    // a corrupt state file must not stop `sync`, which is how it gets repaired
    const [local, corrupt] = hasState
      ? yield* Effect.flatMap(WorkingDir.make({ pipelinesDir, pipelineName: name }), (wd) => wd.readState).pipe(
          Effect.map((state) => [state, Option.none<WorkingDir.CorruptStateFile>()] as const),
          Effect.catchTag("CorruptStateFile", (error) =>
            Effect.succeed([Option.none<PipelineState.PipelineState>(), Option.some(error)] as const)
          )
        )
      : ([Option.none<PipelineState.PipelineState>(), Option.none<WorkingDir.CorruptStateFile>()] as const)

    const salvaged = Option.isSome(corrupt)
      ? salvage(yield* fs.readFileString(path.join(workingDir, "state.json")).pipe(Effect.orElseSucceed(() => "")))
      : {}
    const localDestination = Option.orElse(
      Option.flatMap(local, (s) => Option.fromNullable(s.destination_name)),
      () => Option.fromNullable(salvaged.destination)
    )
    let destination: Chosen<PipestateConfig.DestinationName>
    if (config.destination.origin._tag !== "Default") {
      destination = {
        value: config.destination.value,
        from: originText(config.destination.origin, "--destination"),
        isDefault: false
      }
    } else if (Option.isSome(localDestination)) {
      if (!isDestinationName(localDestination.value)) {
        return yield* new UnsupportedDestination({ destination: localDestination.value })
      }
      destination = { value: localDestination.value, from: "local state (destination_name)", isDefault: false }
    } else {
      destination = { value: "sqlite", from: "default", isDefault: true }
    }

    // the local state's dataset is the one actually loaded (dev mode suffixes it), so it wins over config
    const localDataset = Option.orElse(
      Option.flatMap(local, (s) => Option.fromNullable(s.dataset_name)),
      () => Option.fromNullable(salvaged.dataset)
    )
    let dataset: Chosen<string>
    if (Option.isSome(flags.dataset)) {
      dataset = { value: flags.dataset.value, from: "command line (--dataset)", isDefault: false }
    } else if (Option.isSome(localDataset)) {
      dataset = { value: localDataset.value, from: "local state (dataset_name)", isDefault: false }
    } else if (Option.isSome(config.dataset.value)) {
      dataset = {
        value: config.dataset.value.value,
        from: originText(config.dataset.origin, "--dataset"),
        isDefault: false
      }
    } else {
      dataset = { value: `${name}_dataset`, from: "default (<name>_dataset)", isDefault: true }
    }

    return {
      name,
      config,
      pipelinesDir,
      workingDir,
      workingDirExisted,
      local,
      corrupt,
      destination,
      dataset,
      explicitTarget: Option.isSome(flags.destination) || Option.isSome(flags.dataset) || Option.isSome(flags.url)
    } satisfies Resolved
  })

/**
 * Fails with `UnknownPipeline` (listing the known ones) when the pipeline has no local state and
 * no flag says where its destination is.
 *
 * @since 0.1.0
 */
export const requireKnown = (resolved: Resolved, options: { readonly allowExplicit: boolean }) =>
  Effect.gen(function* () {
    if (Option.isSome(resolved.local)) return
    if (Option.isSome(resolved.corrupt)) return yield* resolved.corrupt.value
    if (options.allowExplicit && resolved.explicitTarget) return
    const known = yield* WorkingDir.listPipelines(resolved.pipelinesDir)
    return yield* new UnknownPipeline({ name: resolved.name, pipelinesDir: resolved.pipelinesDir, known })
  })

/**
 * The local state, or `UnknownPipeline` listing the known ones.
 *
 * @since 0.1.0
 */
export const requireLocal = (
  resolved: Resolved
): Effect.Effect<
  PipelineState.PipelineState,
  UnknownPipeline | WorkingDir.CorruptStateFile | WorkingDir.WorkingDirError,
  FileSystem.FileSystem | Path.Path
> =>
  Option.match(resolved.local, {
    onSome: Effect.succeed,
    onNone: () =>
      Option.isSome(resolved.corrupt)
        ? Effect.fail(resolved.corrupt.value)
        : Effect.flatMap(WorkingDir.listPipelines(resolved.pipelinesDir), (known) =>
            Effect.fail(new UnknownPipeline({ name: resolved.name, pipelinesDir: resolved.pipelinesDir, known }))
          )
  })

/**
 * The SQLite database file of the dataset (the `Destination.sqlite` default: `<dataset>.sqlite` in
 * the working dir, or the configured directory or path), none for PostgreSQL.
 *
 * @since 0.1.0
 */
export const sqliteFile = (resolved: Resolved): Option.Option<string> => {
  if (resolved.destination.value !== "sqlite") return Option.none()
  const { sqlitePath, sqliteDirectory } = resolved.config
  return Option.some(
    NodePath.resolve(
      Option.getOrElse(sqlitePath.value, () =>
        NodePath.join(
          Option.getOrElse(sqliteDirectory.value, () => resolved.workingDir),
          `${resolved.dataset.value}.sqlite`
        )
      )
    )
  )
}

/**
 * Where the dataset lives, for messages; never holds a password.
 *
 * @since 0.1.0
 */
export const location = (resolved: Resolved): string =>
  Option.match(sqliteFile(resolved), {
    onSome: (file) => file,
    onNone: () =>
      Option.match(resolved.config.postgresUrl.value, {
        onNone: () => `postgres (no URL given)#${resolved.dataset.value}`,
        onSome: (url) => {
          try {
            const parsed = new URL(Redacted.value(url))
            const user = parsed.username === "" ? "" : `${decodeURIComponent(parsed.username)}@`
            return `postgres://${user}${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}#${resolved.dataset.value}`
          } catch {
            return `postgres (unparsable URL)#${resolved.dataset.value}`
          }
        }
      })
  })

/**
 * Whether the destination can hold state at all without creating anything: a SQLite file that does
 * not exist holds none (opening it would create it).
 *
 * @since 0.1.0
 */
export const destinationMayHoldState = (resolved: Resolved) =>
  Effect.gen(function* () {
    const file = sqliteFile(resolved)
    if (Option.isNone(file)) return true
    const fs = yield* FileSystem.FileSystem
    return yield* fs.exists(file.value).pipe(Effect.orElseSucceed(() => false))
  })

/**
 * The destination layer the resolution points at.
 *
 * @since 0.1.0
 */
export const destinationLayer = (
  resolved: Resolved
): Effect.Effect<Layer.Layer<Destination, DestinationError>, MissingPostgresUrl> => {
  if (resolved.destination.value === "sqlite") {
    const { sqlitePath, sqliteDirectory } = resolved.config
    return Effect.succeed(
      Sqlite.layer({
        ...Option.match(sqlitePath.value, { onNone: () => ({}), onSome: (path) => ({ path }) }),
        ...Option.match(sqliteDirectory.value, { onNone: () => ({}), onSome: (directory) => ({ directory }) })
      })
    )
  }
  return Option.match(resolved.config.postgresUrl.value, {
    onNone: () => Effect.fail(new MissingPostgresUrl({ destinationFrom: resolved.destination.from })),
    onSome: (url) => Effect.succeed(Postgres.layer({ url }))
  })
}

/**
 * The pipeline layer for the resolution (dev mode off: the dataset is already the one to use).
 *
 * @since 0.1.0
 */
export const pipelineLayer = (resolved: Resolved) =>
  Pipeline.layer({
    name: resolved.name,
    dataset: resolved.dataset.value,
    pipelinesDir: resolved.pipelinesDir,
    devMode: false,
    restoreFromDestination: true,
    keepStateVersions: resolved.config.keepStateVersions.value
  })

/**
 * Both layers of a command that talks to the destination.
 *
 * @since 0.1.0
 */
export const layers = (resolved: Resolved) =>
  Effect.map(destinationLayer(resolved), (destination) => Layer.merge(pipelineLayer(resolved), destination))

/**
 * Removes the working dir when this command created it and left it empty (a clean machine stays
 * clean).
 *
 * @since 0.1.0
 */
export const cleanUp = (resolved: Resolved) =>
  Effect.gen(function* () {
    if (resolved.workingDirExisted) return
    const fs = yield* FileSystem.FileSystem
    const entries = yield* fs.readDirectory(resolved.workingDir).pipe(Effect.orElseSucceed(() => ["?"]))
    // checked empty just above, so `recursive` removes the directory itself and nothing else
    if (entries.length === 0) yield* fs.remove(resolved.workingDir, { recursive: true }).pipe(Effect.ignore)
  })
