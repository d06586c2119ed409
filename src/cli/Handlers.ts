/**
 * What each `pipestate pipeline` command does, once its arguments are parsed. This module imports
 * the pipeline, the destinations and their drivers, so main.ts loads it only when a command runs
 * (`import()`): `pipestate --help` and argument errors never pay for better-sqlite3, pg or the
 * configuration parser.
 *
 * @since 0.1.0
 */
import * as Prompt from "@effect/cli/Prompt"
import { Console, Effect, Option, type Redacted } from "effect"
import * as PipestateConfig from "../config/PipestateConfig.js"
import * as Drop from "../pipeline/Drop.js"
import * as History from "../pipeline/History.js"
import * as Locate from "../internal/pipeline/Locate.js"
import * as Pipeline from "../pipeline/Pipeline.js"
import * as Schemas from "../internal/pipeline/Schemas.js"
import * as StateSync from "../internal/pipeline/StateSync.js"
import * as WorkingDir from "../internal/pipeline/WorkingDir.js"
import { ConfirmationRequired, MissingPipelineName } from "./Errors.js"
import * as Render from "./Render.js"
import { shellQuote } from "../internal/Shell.js"

/**
 * The flags every pipeline command takes (see main.ts for their help text).
 *
 * @since 0.1.0
 */
export interface CommonFlags {
  readonly pipelinesDir: Option.Option<string>
  readonly destination: Option.Option<PipestateConfig.DestinationName>
  readonly url: Option.Option<Redacted.Redacted<string>>
  readonly sqlitePath: Option.Option<string>
  readonly dataset: Option.Option<string>
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const printJson = (json: unknown) => Console.log(JSON.stringify(json, null, 2))

const requireName = (name: Option.Option<string>, command: string) =>
  Option.match(name, {
    onNone: () => Effect.fail(new MissingPipelineName({ command })),
    onSome: Effect.succeed
  })

/**
 * Asks on the terminal, unless `--yes`; without a terminal (scripts, CI) a change needs `--yes`.
 */
const confirmation = (yes: boolean, action: string, question: string) =>
  yes
    ? Effect.succeed(true)
    : process.stdin.isTTY !== true
      ? Effect.fail(new ConfirmationRequired({ action }))
      : Prompt.confirm({ message: question, initial: false }).pipe(
          Effect.catchTag("QuitException", () => Effect.succeed(false))
        )

/** finds the pipeline named on the command line, with the flags as overrides */
const locate = (name: string, flags: CommonFlags) =>
  Locate.locate(name, {
    pipelinesDir: Option.getOrUndefined(flags.pipelinesDir),
    destination: Option.getOrUndefined(flags.destination),
    url: Option.getOrUndefined(flags.url),
    sqlitePath: Option.getOrUndefined(flags.sqlitePath),
    dataset: Option.getOrUndefined(flags.dataset)
  })

/** fails with NoStateInDestination when the located dataset cannot hold state (a SQLite file that is not there) */
const requireDestinationState = (located: Locate.Located) =>
  Effect.flatMap(Locate.mayHoldState(located), (may) =>
    may
      ? Effect.void
      : Effect.fail(
          new Pipeline.NoStateInDestination({
            pipelineName: located.name,
            dataset: located.dataset.value,
            location: Locate.location(located)
          })
        )
  )

/** runs `body` with the pipeline and destination of `located`, then tidies a working dir it created */
const withPipeline = <A, E, R>(located: Locate.Located, body: Effect.Effect<A, E, R>) =>
  body.pipe(Effect.provide(Locate.layers(located)), Effect.ensuring(Locate.cleanUp(located)))

/** the options as `info` shows them, with command-line origins named after their flags */
const describeConfig = (config: PipestateConfig.EffectiveConfig): ReadonlyArray<PipestateConfig.Described> => {
  const flags: Record<string, string> = {
    pipelines_dir: "--pipelines-dir",
    dataset: "--dataset",
    destination: "--destination",
    "destination.postgres.url": "--url",
    "destination.sqlite.path": "--sqlite-path"
  }
  return PipestateConfig.describe(config).map((row) =>
    row.origin === "code" ? { ...row, origin: `command line (${flags[row.key] ?? row.key})` } : row
  )
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/**
 * `pipestate pipeline list`.
 *
 * @since 0.1.0
 */
export const list = (options: { readonly pipelinesDir: Option.Option<string>; readonly json: boolean }) =>
  Effect.gen(function* () {
    const config = yield* PipestateConfig.load({
      overrides: { pipelinesDir: Option.getOrUndefined(options.pipelinesDir) }
    })
    const pipelinesDir = yield* WorkingDir.resolvePipelinesDir(Option.getOrUndefined(config.pipelinesDir.value))
    const names = yield* WorkingDir.listPipelines(pipelinesDir)
    const rows = yield* Effect.forEach(names, (name) =>
      Effect.flatMap(WorkingDir.make({ pipelinesDir, pipelineName: name }), (wd) => wd.readState).pipe(
        Effect.map((state): Render.ListedPipeline => ({ name, state, problem: Option.none() })),
        // one unreadable pipeline must not hide the others
        Effect.catchAll((error) =>
          Effect.succeed<Render.ListedPipeline>({
            name,
            state: Option.none(),
            problem: Option.some(error._tag === "CorruptStateFile" ? "(corrupt state.json)" : error.message)
          })
        )
      )
    )
    yield* options.json
      ? printJson(Render.listJson(pipelinesDir, rows))
      : Console.log(Render.listText(pipelinesDir, rows))
  })

/**
 * `pipestate pipeline <name> info`.
 *
 * @since 0.1.0
 */
export const info = (
  pipelineName: Option.Option<string>,
  options: CommonFlags & { readonly verbose: boolean; readonly full: boolean; readonly json: boolean }
) =>
  Effect.gen(function* () {
    const name = yield* requireName(pipelineName, "info")
    const located = yield* locate(name, options)
    const state = yield* Locate.requireLocal(located)
    // the flags may name another target than the one the local state was committed to: say so, and
    // show the state with its own target, never with the flags' location
    const kind = StateSync.destinationKind(state)
    const stateDataset = state.dataset_name ?? undefined
    const elsewhere =
      (stateDataset !== undefined && stateDataset !== located.dataset.value) ||
      (kind !== undefined && kind !== located.destination.value)
    const recorded = state._local.location
    if (elsewhere) {
      yield* Console.error(
        `warning: the local state of ${name} belongs to ${kind ?? "?"} dataset ${stateDataset ?? "?"}${
          typeof recorded === "string" ? ` (${recorded})` : ""
        }, not to ${located.destination.value} dataset ${located.dataset.value}; shown below is that local state (\`pipestate pipeline ${shellQuote(name)} history\` with the same flags lists the versions the other target holds)`
      )
    }
    const data: Render.Info = {
      name,
      workingDir: located.workingDir,
      state,
      location: elsewhere && typeof recorded === "string" ? recorded : Locate.location(located),
      options: [
        ...describeConfig(located.settings),
        { key: "target.destination", value: located.destination.value, origin: located.destination.from },
        { key: "target.dataset", value: located.dataset.value, origin: located.dataset.from },
        ...Option.match(located.sqliteFile, {
          onNone: () => [],
          onSome: (file) => [{ key: "target.sqlite_file", value: file.value, origin: file.from }]
        })
      ]
    }
    yield* options.json
      ? printJson(Render.infoJson(data))
      : Console.log(Render.infoText(data, { verbose: options.verbose, maxChars: options.full ? undefined : 1_000 }))
  })

/**
 * `pipestate pipeline <name> sync`.
 *
 * @since 0.1.0
 */
export const sync = (pipelineName: Option.Option<string>, options: CommonFlags & { readonly yes: boolean }) =>
  Effect.gen(function* () {
    const name = yield* requireName(pipelineName, "sync")
    const located = yield* locate(name, options)
    yield* Locate.requireKnown(located)
    yield* requireDestinationState(located)
    const where = `dataset ${located.dataset.value} (${Locate.location(located)})`
    const local = Option.match(located.local, {
      onNone: () => (Option.isSome(located.corrupt) ? "the damaged local state file" : "no local state"),
      onSome: (state) => `local state version ${state._state_version} (hash ${state._version_hash ?? "none"})`
    })
    yield* Console.log(`sync pipeline ${name}: replace ${local} with the newest state in ${where}`)
    if (!(yield* confirmation(options.yes, "sync", "Replace the local state with the destination's?"))) {
      return yield* Console.log("cancelled: nothing was changed")
    }
    const result = yield* withPipeline(located, Pipeline.sync)
    yield* Console.log(
      `restored state version ${result.version} (hash ${result.versionHash ?? "none"}, load ${result.loadId}) of pipeline ${name} from ${where} into ${located.workingDir}`
    )
  })

/**
 * `pipestate pipeline <name> drop`.
 *
 * @since 0.1.0
 */
export const drop = (
  pipelineName: Option.Option<string>,
  options: CommonFlags & {
    readonly resources: ReadonlyArray<string>
    readonly dropAll: boolean
    readonly statePaths: ReadonlyArray<string>
    readonly sources: ReadonlyArray<string>
    readonly stateOnly: boolean
    readonly dryRun: boolean
    readonly yes: boolean
  }
) =>
  Effect.gen(function* () {
    const name = yield* requireName(pipelineName, "drop")
    const located = yield* locate(name, options)
    yield* Locate.requireKnown(located)
    yield* requireDestinationState(located)
    const outcome = yield* withPipeline(
      located,
      Drop.apply({
        resources: options.resources,
        dropAll: options.dropAll,
        statePaths: options.statePaths,
        sources: options.sources,
        stateOnly: options.stateOnly,
        dryRun: options.dryRun,
        confirm: (preview) =>
          Console.log(Render.dropPreviewText(preview)).pipe(
            Effect.zipRight(
              confirmation(options.yes, "drop", `Drop this and commit state version ${preview.toVersion}?`)
            )
          )
      })
    )
    switch (outcome._tag) {
      case "Dropped":
        yield* Console.log(
          `dropped${outcome.preview.plan.tables.length === 0 ? "" : ` tables ${outcome.preview.plan.tables.join(", ")} and`} state: state version ${outcome.version} (hash ${outcome.versionHash}) committed in load ${outcome.loadId}`
        )
        break
      case "DryRun":
        yield* Console.log(Render.dropPreviewText(outcome.preview))
        yield* Console.log("dry run: nothing was changed")
        break
      case "NothingToDrop":
        yield* Console.log(Render.dropPreviewText(outcome.preview))
        break
      case "Cancelled":
        yield* Console.log("cancelled: nothing was changed")
        break
    }
  })

/**
 * `pipestate pipeline <name> history`.
 *
 * @since 0.1.0
 */
export const history = (
  pipelineName: Option.Option<string>,
  options: CommonFlags & { readonly limit: number; readonly json: boolean }
) =>
  Effect.gen(function* () {
    const name = yield* requireName(pipelineName, "history")
    const located = yield* locate(name, options)
    yield* Locate.requireKnown(located)
    const versions = (yield* Locate.mayHoldState(located))
      ? yield* withPipeline(located, History.list({ limit: options.limit }))
      : []
    const localHash = Option.flatMap(located.local, (s) => Option.fromNullable(s._version_hash))
    yield* options.json
      ? printJson(Render.historyJson(versions))
      : Console.log(
          Render.historyText(
            `state versions of pipeline ${name} in dataset ${located.dataset.value} (${Locate.location(located)}), newest first`,
            versions,
            localHash
          )
        )
  })

/**
 * `pipestate pipeline <name> schema`.
 *
 * @since 0.1.0
 */
export const schema = (pipelineName: Option.Option<string>, options: CommonFlags & { readonly json: boolean }) =>
  Effect.gen(function* () {
    const name = yield* requireName(pipelineName, "schema")
    const located = yield* locate(name, options)
    yield* Locate.requireLocal(located)
    const schemas = (yield* Locate.mayHoldState(located)) ? yield* withPipeline(located, Schemas.ofPipeline) : []
    yield* options.json
      ? printJson(Render.schemaJson(schemas))
      : Console.log(
          Render.schemaText(
            `stored schemas of pipeline ${name} in dataset ${located.dataset.value} (${Locate.location(located)})`,
            schemas
          )
        )
  })

/**
 * `pipestate pipeline <name> restore`.
 *
 * @since 0.1.0
 */
export const restore = (
  pipelineName: Option.Option<string>,
  options: CommonFlags & { readonly version: number; readonly dryRun: boolean; readonly yes: boolean }
) =>
  Effect.gen(function* () {
    const name = yield* requireName(pipelineName, "restore")
    const located = yield* locate(name, options)
    yield* Locate.requireKnown(located)
    yield* requireDestinationState(located)
    // `history` with the flags this command was given, so it finds the same pipeline and dataset
    const historyCommand = [
      ...["pipestate", "pipeline", name, "history"].map(shellQuote),
      ...Option.match(options.pipelinesDir, { onNone: () => [], onSome: (d) => ["--pipelines-dir", shellQuote(d)] }),
      ...Option.match(options.destination, { onNone: () => [], onSome: (d) => ["--destination", d] }),
      ...Option.match(options.url, {
        onNone: () => [],
        onSome: (url) => ["--url", shellQuote(Locate.describePostgresUrl(url))]
      }),
      ...Option.match(options.sqlitePath, { onNone: () => [], onSome: (p) => ["--sqlite-path", shellQuote(p)] }),
      ...Option.match(options.dataset, { onNone: () => [], onSome: (d) => ["--dataset", shellQuote(d)] })
    ].join(" ")
    const outcome = yield* withPipeline(
      located,
      History.restore({
        version: options.version,
        dryRun: options.dryRun,
        confirm: (preview) =>
          Console.log(Render.restorePreviewText(preview)).pipe(
            Effect.zipRight(
              confirmation(
                options.yes,
                "restore",
                `Commit the content of version ${preview.from.version} as version ${preview.nextVersion}?`
              )
            )
          )
      })
    ).pipe(
      Effect.catchTag("VersionNotFound", (error) =>
        Effect.fail(
          new History.VersionNotFound({
            pipelineName: error.pipelineName,
            dataset: error.dataset,
            version: error.version,
            available: error.available,
            command: historyCommand
          })
        )
      )
    )
    switch (outcome._tag) {
      case "Restored":
        yield* Console.log(
          `restored: state version ${outcome.version} (hash ${outcome.versionHash}) has the content of version ${outcome.preview.from.version}; committed in load ${outcome.loadId}`
        )
        break
      case "AlreadyNewest":
        yield* Console.log(
          outcome.preview.resetResources.length === 0
            ? `nothing to do: the newest state version ${outcome.preview.newest.version} already has the content of version ${outcome.preview.from.version}`
            : `nothing to do: version ${outcome.preview.from.version} without the state of ${outcome.preview.resetResources.join(", ")} (their tables are no longer in the dataset) is the content of the newest state version ${outcome.preview.newest.version}`
        )
        break
      case "DryRun":
        yield* Console.log(Render.restorePreviewText(outcome.preview))
        yield* Console.log("dry run: nothing was changed")
        break
      case "Cancelled":
        yield* Console.log("cancelled: nothing was changed")
        break
    }
  })
