/**
 * The configured pipeline: its name, dataset, working directory and options, resolved the one way
 * the library and the CLI share (`PipestateConfig.load`): **code** (the options given here) →
 * **env** (`PIPESTATE_*`, through the current `ConfigProvider`) → **`.pipestate/config.toml`**
 * (the pipeline's `[pipelines.<name>]` section, then the top level) → **defaults**
 * ({@link defaults}).
 *
 * @example
 * ```ts
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import { Pipeline } from "effect-pipestate"
 *
 * const pipeline = Pipeline.layer({ name: "chess_pipeline", dataset: "chess_data" }).pipe(Layer.provide(NodeContext.layer))
 * ```
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import * as PipestateConfig from "../config/PipestateConfig.js"
import type { CheckpointOptions } from "../internal/pipeline/Checkpoint.js"
import * as WorkingDir from "../internal/pipeline/WorkingDir.js"

/**
 * How a pipeline runs. Only `name` is required; every other option left out is taken from env, the
 * config file or {@link defaults}.
 *
 * @since 0.1.0
 */
export interface PipelineConfig {
  readonly name: string
  /** the dataset (PostgreSQL schema, SQLite file) the data goes to; default `<name>_dataset` */
  readonly dataset?: string | undefined
  /** default: env `PIPESTATE_PIPELINES_DIR`, the config file's `pipelines_dir`, else `~/.pipestate/pipelines` */
  readonly pipelinesDir?: string | undefined
  /** on a clean working dir, start from the destination's newest state (default true) */
  readonly restoreFromDestination?: boolean | undefined
  /**
   * load into a fresh dataset `<dataset>_<yyyymmddhhmmss>` (UTC, when the layer is built) that this
   * pipeline instance owns for all its runs, starting from an empty state (dlt's dev mode)
   */
  readonly devMode?: boolean | undefined
  /** how many resources extract at once (default 4) */
  readonly concurrency?: number | undefined
  /** records normalized and staged per batch (default 5,000) */
  readonly batchSize?: number | undefined
  /** commit as the run goes: after at least `rows` records of a resource or `every` (see `Checkpoint`; default off) */
  readonly checkpoint?: CheckpointOptions | undefined
  /** state rows kept per pipeline in the destination (default 100) */
  readonly keepStateVersions?: number | undefined
  /** warn when the encoded state passes this many bytes (default 1 MiB) */
  readonly stateSizeWarningBytes?: number | undefined
  /** the directory whose `.pipestate/config.toml` is read (default: the process's working directory) */
  readonly cwd?: string | undefined
  /** another config file (absolute, or relative to `cwd`); it must exist */
  readonly configFile?: string | undefined
}

/**
 * The defaults of every pipeline option.
 *
 * @since 0.1.0
 */
export const defaults = {
  restoreFromDestination: true,
  devMode: false,
  concurrency: 4,
  batchSize: 5_000,
  keepStateVersions: 100,
  stateSizeWarningBytes: 1024 * 1024
} as const

/**
 * A pipeline configuration with every option resolved.
 *
 * @since 0.1.0
 */
export interface ResolvedConfig {
  readonly name: string
  /** the dataset loaded into: the configured one, or in dev mode this instance's dev dataset */
  readonly dataset: string
  /** the configured dataset, before the dev-mode suffix */
  readonly baseDataset: string
  readonly pipelinesDir: string
  readonly restoreFromDestination: boolean
  readonly devMode: boolean
  readonly concurrency: number
  readonly batchSize: number
  /** the pipeline-wide checkpoint option (resources may set their own) */
  readonly checkpoint?: CheckpointOptions | undefined
  readonly keepStateVersions: number
  readonly stateSizeWarningBytes: number
  /** every option with its origin (what `pipestate pipeline <name> info` shows) */
  readonly settings: PipestateConfig.EffectiveConfig
}

/**
 * @since 0.1.0
 */
export interface PipelineShape {
  readonly config: ResolvedConfig
  readonly workingDir: WorkingDir.WorkingDir
}

/**
 * The configured pipeline (name, dataset, working dir).
 *
 * @since 0.1.0
 */
export class Pipeline extends Context.Tag("pipestate/Pipeline")<Pipeline, PipelineShape>() {}

/**
 * A dataset name that cannot be used.
 *
 * @since 0.1.0
 */
export class InvalidDatasetName extends Schema.TaggedError<InvalidDatasetName>()("InvalidDatasetName", {
  dataset: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `dataset name ${JSON.stringify(this.dataset)}: ${this.reason}`
  }
}

const pad = (n: number) => String(n).padStart(2, "0")

/** dlt's dev-mode suffix: `_yyyymmddhhmmss` (UTC) */
const devSuffix = (date: Date): string =>
  `_${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`

/**
 * Errors of {@link make} and {@link layer}.
 *
 * @since 0.1.0
 */
export type ConfigError =
  | WorkingDir.WorkingDirError
  | WorkingDir.InvalidPipelineName
  | InvalidDatasetName
  | PipestateConfig.InvalidConfigFile
  | PipestateConfig.InvalidConfigValue

/**
 * Resolves a configuration (code → env → file → defaults) and opens the working dir.
 *
 * @since 0.1.0
 */
export const make = (
  config: PipelineConfig
): Effect.Effect<PipelineShape, ConfigError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    yield* WorkingDir.validatePipelineName(config.name)
    const settings = yield* PipestateConfig.load({
      pipelineName: config.name,
      cwd: config.cwd,
      file: config.configFile,
      overrides: {
        pipelinesDir: config.pipelinesDir,
        dataset: config.dataset,
        restoreFromDestination: config.restoreFromDestination,
        devMode: config.devMode,
        concurrency: config.concurrency,
        keepStateVersions: config.keepStateVersions,
        stateSizeWarningBytes: config.stateSizeWarningBytes
      }
    })
    const pipelinesDir = yield* WorkingDir.resolvePipelinesDir(Option.getOrUndefined(settings.pipelinesDir.value))
    const baseDataset = Option.getOrElse(settings.dataset.value, () => `${config.name}_dataset`)
    if (baseDataset.trim() === "" || baseDataset.includes("\u0000") || /[/\\.]/.test(baseDataset)) {
      return yield* new InvalidDatasetName({
        dataset: baseDataset,
        reason: "must be non-empty, without path separators, dots or NUL"
      })
    }
    if (/^(pg_|information_schema$)/i.test(baseDataset)) {
      return yield* new InvalidDatasetName({
        dataset: baseDataset,
        reason: "names starting with pg_ and information_schema belong to PostgreSQL's system schemas"
      })
    }
    // PostgreSQL cuts longer identifiers (two datasets would share one schema); with dev mode's
    // 15-character suffix
    const datasetBytes = Buffer.byteLength(baseDataset, "utf8") + (settings.devMode.value ? 15 : 0)
    if (datasetBytes > 63) {
      return yield* new InvalidDatasetName({
        dataset: baseDataset,
        reason: `is ${datasetBytes} bytes in UTF-8${settings.devMode.value ? " with dev mode's suffix" : ""}, past the 63 a PostgreSQL schema name holds`
      })
    }
    const devMode = settings.devMode.value
    const dataset = devMode ? `${baseDataset}${devSuffix(new Date(yield* Clock.currentTimeMillis))}` : baseDataset
    const batchSize = config.batchSize
    const workingDir = yield* WorkingDir.make({ pipelinesDir, pipelineName: config.name })
    return {
      config: {
        name: config.name,
        dataset,
        baseDataset,
        pipelinesDir,
        restoreFromDestination: settings.restoreFromDestination.value,
        devMode,
        concurrency: settings.concurrency.value,
        batchSize:
          batchSize !== undefined && Number.isSafeInteger(batchSize) && batchSize >= 1 ? batchSize : defaults.batchSize,
        ...(config.checkpoint === undefined ? {} : { checkpoint: config.checkpoint }),
        keepStateVersions: settings.keepStateVersions.value,
        stateSizeWarningBytes: settings.stateSizeWarningBytes.value,
        settings
      },
      workingDir
    }
  })

/**
 * The pipeline as a layer. Needs `FileSystem` and `Path` (`NodeContext.layer` on Node, or use
 * {@link layerNode}).
 *
 * @since 0.1.0
 */
export const layer = (config: PipelineConfig): Layer.Layer<Pipeline, ConfigError, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(Pipeline, make(config))

/**
 * {@link layer} with Node's file system (`@effect/platform-node`, loaded when the layer is built).
 *
 * @example
 * ```ts
 * Pipeline.run(chess).pipe(Effect.provide(Pipeline.layerNode({ name: "chess_pipeline" })), Effect.provide(Destination.sqlite()))
 * ```
 *
 * @since 0.1.0
 */
export const layerNode = (config: PipelineConfig): Layer.Layer<Pipeline, ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(
      // the two services it needs, not NodeContext (which also loads a command executor, a terminal
      // and workers)
      Effect.promise(() =>
        Promise.all([import("@effect/platform-node/NodeFileSystem"), import("@effect/platform-node/NodePath")])
      ),
      ([fs, path]) => layer(config).pipe(Layer.provide(Layer.merge(fs.layer, path.layer)))
    )
  )
