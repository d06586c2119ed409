/**
 * The `pipestate` command line (@effect/cli):
 *
 * ```text
 * pipestate pipeline list
 * pipestate pipeline <name> info [-v] [--json] [--full]
 * pipestate pipeline <name> sync [--destination sqlite|postgres] [--url URL] [--dataset NAME]
 * pipestate pipeline <name> drop [RESOURCE...] [--drop-all] [--state-paths PATH]... [--dry-run] [--yes]
 * pipestate pipeline <name> history [--limit N] [--json]
 * pipestate pipeline <name> restore --version N [--dry-run] [--yes]     (--version = --state-version here)
 * pipestate pipeline <name> schema [--json]
 * ```
 *
 * Every pipeline command also takes `--pipelines-dir`, `--destination`, `--url` and `--dataset`;
 * without them the configuration (env, `.pipestate/config.toml`) and then the local state decide.
 *
 * @example
 * ```ts
 * // what dist/cli/bin.js (the `pipestate` executable) does
 * import { NodeContext, NodeRuntime } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { run } from "./main.js"
 *
 * run(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain({ disableErrorReporting: true }))
 * ```
 *
 * @since 0.1.0
 */
import { Args, Command, Options, Prompt } from "@effect/cli"
import { Console, Effect, Option, type Redacted } from "effect"
import * as PipestateConfig from "../config/PipestateConfig.js"
import * as Drop from "../pipeline/Drop.js"
import * as History from "../pipeline/History.js"
import * as Locate from "../pipeline/Locate.js"
import * as Pipeline from "../pipeline/Pipeline.js"
import * as Schemas from "../pipeline/Schemas.js"
import * as WorkingDir from "../pipeline/WorkingDir.js"
import { ConfirmationRequired, describeFailure, MissingPipelineName, UnknownCommand } from "./Errors.js"
import * as Render from "./Render.js"

/** @since 0.1.0 */
export const VERSION = "0.1.0"

// ---------------------------------------------------------------------------------------------
// Shared options
// ---------------------------------------------------------------------------------------------

const pipelinesDirOption = Options.text("pipelines-dir").pipe(
  Options.withDescription(
    "the directory of the pipelines' working dirs (default: PIPESTATE_PIPELINES_DIR, else ~/.pipestate/pipelines)"
  ),
  Options.optional
)

const commonOptions = {
  pipelinesDir: pipelinesDirOption,
  destination: Options.choice("destination", ["sqlite", "postgres"]).pipe(
    Options.withDescription(
      "the destination (default: the local state's destination_name, else the config, else sqlite)"
    ),
    Options.optional
  ),
  url: Options.redacted("url").pipe(
    Options.withDescription("the PostgreSQL URL (default: PIPESTATE_POSTGRES_URL or the config file); never printed"),
    Options.optional
  ),
  sqlitePath: Options.text("sqlite-path").pipe(
    Options.withDescription(
      "the SQLite database file of the dataset (default: the local state's location, else <working dir>/<dataset>.sqlite)"
    ),
    Options.optional
  ),
  dataset: Options.text("dataset").pipe(
    Options.withDescription(
      "the dataset (default: the local state's dataset_name, else the config, else <name>_dataset)"
    ),
    Options.optional
  )
}

const yesOption = Options.boolean("yes").pipe(
  Options.withAlias("y"),
  Options.withDescription("do not ask for confirmation")
)
const dryRunOption = Options.boolean("dry-run").pipe(Options.withDescription("show what would change, change nothing"))
const jsonOption = Options.boolean("json").pipe(Options.withDescription("print one JSON document (for scripts)"))

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

interface CommonFlags {
  readonly pipelinesDir: Option.Option<string>
  readonly destination: Option.Option<PipestateConfig.DestinationName>
  readonly url: Option.Option<Redacted.Redacted<string>>
  readonly sqlitePath: Option.Option<string>
  readonly dataset: Option.Option<string>
}

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

const pipelineName = Args.text({ name: "pipeline_name" }).pipe(
  Args.withDescription("the pipeline's name (its working dir is <pipelines-dir>/<name>)"),
  Args.optional
)

/** the parent of every pipeline command: `pipestate pipeline [<name>] <command>` */
const pipeline = Command.make("pipeline", { name: pipelineName })

const list = Command.make("list", { pipelinesDir: pipelinesDirOption, json: jsonOption }, (options) =>
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
).pipe(
  Command.withDescription(
    "list the pipelines in the pipelines dir with destination, dataset, state version and last run"
  )
)

const info = Command.make(
  "info",
  {
    ...commonOptions,
    verbose: Options.boolean("verbose").pipe(
      Options.withAlias("v"),
      Options.withDescription("show the values of the state slots, not only their keys")
    ),
    full: Options.boolean("full").pipe(Options.withDescription("with -v, never cut long values")),
    json: jsonOption
  },
  (options) =>
    Effect.gen(function* () {
      const name = yield* requireName((yield* pipeline).name, "info")
      const located = yield* locate(name, options)
      const state = yield* Locate.requireLocal(located)
      const data: Render.Info = {
        name,
        workingDir: located.workingDir,
        state,
        location: Locate.location(located),
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
).pipe(Command.withDescription("show the pipeline's working dir, destination, dataset, state version and state slots"))

const sync = Command.make("sync", { ...commonOptions, yes: yesOption }, (options) =>
  Effect.gen(function* () {
    const name = yield* requireName((yield* pipeline).name, "sync")
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
).pipe(
  Command.withDescription(
    "replace the local state with the destination's newest (refuses when the destination holds none)"
  )
)

const drop = Command.make(
  "drop",
  {
    ...commonOptions,
    resources: Args.text({ name: "resource" }).pipe(
      Args.withDescription("resources to drop: exact names, or re:<regex> (e.g. re:^players)"),
      Args.repeated
    ),
    dropAll: Options.boolean("drop-all").pipe(
      Options.withDescription("drop every resource's table and the whole source state")
    ),
    statePaths: Options.text("state-paths").pipe(
      Options.withDescription(
        "reset the state at this JSONPath, relative to the source state (repeat for more); no table is touched"
      ),
      Options.repeated
    ),
    sources: Options.text("source").pipe(
      Options.withDescription("only this source (exact or re:<regex>; repeat for more); default: every source"),
      Options.repeated
    ),
    stateOnly: Options.boolean("state-only").pipe(Options.withDescription("drop resource state only, keep the tables")),
    dryRun: dryRunOption,
    yes: yesOption
  },
  (options) =>
    Effect.gen(function* () {
      const name = yield* requireName((yield* pipeline).name, "drop")
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
).pipe(
  Command.withDescription(
    "drop resources (their tables and state), reset state paths, or drop everything; committed as a new state version"
  )
)

const history = Command.make(
  "history",
  {
    ...commonOptions,
    limit: Options.integer("limit").pipe(
      Options.withDescription("how many versions to show, newest first"),
      Options.withDefault(20)
    ),
    json: jsonOption
  },
  (options) =>
    Effect.gen(function* () {
      const name = yield* requireName((yield* pipeline).name, "history")
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
).pipe(Command.withDescription("list the state versions kept in the destination (version, hash, load id, created at)"))

const schema = Command.make("schema", { ...commonOptions, json: jsonOption }, (options) =>
  Effect.gen(function* () {
    const name = yield* requireName((yield* pipeline).name, "schema")
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
).pipe(
  Command.withDescription(
    "print the stored schemas (dlt's _dlt_version): tables, columns, types, keys and the resource of each table"
  )
)

const restore = Command.make(
  "restore",
  {
    ...commonOptions,
    version: Options.integer("state-version").pipe(
      Options.withDescription("the state version to make the newest (also accepted as --version)")
    ),
    dryRun: dryRunOption,
    yes: yesOption
  },
  (options) =>
    Effect.gen(function* () {
      const name = yield* requireName((yield* pipeline).name, "restore")
      const located = yield* locate(name, options)
      yield* Locate.requireKnown(located)
      yield* requireDestinationState(located)
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
).pipe(Command.withDescription("make an old state version the newest (commits a new version with its content)"))

/**
 * The command tree.
 *
 * @since 0.1.0
 */
export const command = Command.make("pipestate").pipe(
  Command.withDescription("inspect and change the state of pipestate pipelines"),
  Command.withSubcommands([
    pipeline.pipe(
      Command.withDescription(
        "pipestate pipeline list | pipestate pipeline <name> info|sync|drop|history|restore|schema"
      ),
      Command.withSubcommands([list, info, sync, drop, history, restore, schema])
    )
  ])
)

const cli = Command.run(command, { name: "pipestate", version: VERSION })

const SUBCOMMANDS = new Set(["list", "info", "sync", "drop", "history", "restore", "schema"])

/**
 * `restore --version N` as the brief of the command says it, although @effect/cli reserves
 * `--version` for the program's version and parses it before any command's own options: after the
 * `restore` subcommand, `--version` is renamed to the option's real name, `--state-version`.
 * `pipestate --version` still prints the program's version.
 *
 * @example
 * ```ts
 * normalizeArgv(["node", "pipestate", "pipeline", "p", "restore", "--version", "3"])
 * // ["node", "pipestate", "pipeline", "p", "restore", "--state-version", "3"]
 * ```
 *
 * @since 0.1.0
 */
export const normalizeArgv = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const pipelineAt = argv.indexOf("pipeline", 2)
  if (pipelineAt < 0) return argv
  // @effect/cli picks the subcommand at the first argument that names one, so do the same here
  const subcommandAt = argv.findIndex((arg, i) => i > pipelineAt && SUBCOMMANDS.has(arg))
  if (subcommandAt < 0 || argv[subcommandAt] !== "restore") return argv
  return argv.map((arg, i) =>
    i <= subcommandAt ? arg : arg === "--version" ? "--state-version" : arg.replace(/^--version=/, "--state-version=")
  )
}

const BUILT_IN = /^(-h|--help|--version|--wizard|--completions|--log-level)(=|$)/

/**
 * @effect/cli reports a `pipeline` with no known command as "Invalid subcommand for pipestate - use
 * 'pipeline'", which points nowhere useful; this names the problem and the commands instead.
 */
const checkCommand = (argv: ReadonlyArray<string>): Option.Option<UnknownCommand> => {
  const pipelineAt = argv.indexOf("pipeline", 2)
  if (pipelineAt < 0) return Option.none()
  const rest = argv.slice(pipelineAt + 1)
  if (rest.length === 0 || rest.some((arg) => SUBCOMMANDS.has(arg) || BUILT_IN.test(arg))) return Option.none()
  const words = rest.filter((arg) => !arg.startsWith("-"))
  return Option.some(
    new UnknownCommand(
      words.length < 2 ? { pipeline: words[0] ?? "<name>" } : { pipeline: words[0] ?? "", given: words[1] ?? "" }
    )
  )
}

/**
 * Runs the CLI on `argv` (`process.argv`: node, script, arguments). A failure is printed on stderr
 * as a message a user can act on (no stack trace) and fails the effect, so the process exits 1.
 *
 * @example
 * ```ts
 * run(["node", "pipestate", "pipeline", "list"]).pipe(Effect.provide(NodeContext.layer))
 * ```
 *
 * @since 0.1.0
 */
export const run = (argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const missing = checkCommand(argv)
    if (Option.isSome(missing)) return yield* missing.value
    return yield* cli(normalizeArgv(argv))
  }).pipe(
    Effect.tapErrorCause((cause) =>
      Option.match(describeFailure(cause), {
        onNone: () => Effect.void,
        onSome: (text) => Console.error(text)
      })
    )
  )
