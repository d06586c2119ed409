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
 * This module holds the command tree only; what the commands do is in Handlers.ts, imported when a
 * command runs, so `--help` and argument errors load neither the pipeline nor a database driver.
 *
 * Every pipeline command also takes `--pipelines-dir`, `--destination`, `--url` and `--dataset`;
 * without them the configuration (env, `.pipestate/config.toml`) and then the local state decide.
 *
 * @example
 * ```ts
 * // what dist/cli/bin.js (the `pipestate` executable) does, in short
 * import { NodeContext, NodeRuntime } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { run } from "./main.js"
 *
 * run(process.argv).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain({ disableErrorReporting: true }))
 * ```
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as PipestateConfig from "../config/PipestateConfig.js"
import { describeFailure, UnknownArgument, UnknownCommand } from "./Errors.js"

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
  destination: Options.choice("destination", [
    "sqlite",
    "postgres"
  ] as const satisfies ReadonlyArray<PipestateConfig.DestinationName>).pipe(
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
// Commands: what they do lives in Handlers.ts, loaded when one runs (not for --help)
// ---------------------------------------------------------------------------------------------

/** the command implementations, imported on first use */
const handlers = Effect.promise(() => import("./Handlers.js"))

const pipelineName = Args.text({ name: "pipeline_name" }).pipe(
  Args.withDescription("the pipeline's name (its working dir is <pipelines-dir>/<name>)"),
  Args.optional
)

/** the parent of every pipeline command: `pipestate pipeline [<name>] <command>` */
const pipeline = Command.make("pipeline", { name: pipelineName })

/** the pipeline name given before the command, if any */
const givenName = Effect.map(pipeline, (parent) => parent.name)

const list = Command.make("list", { pipelinesDir: pipelinesDirOption, json: jsonOption }, (options) =>
  Effect.flatMap(handlers, (h) => h.list(options))
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
  (options) => Effect.flatMap(Effect.zip(handlers, givenName), ([h, name]) => h.info(name, options))
).pipe(Command.withDescription("show the pipeline's working dir, destination, dataset, state version and state slots"))

const sync = Command.make("sync", { ...commonOptions, yes: yesOption }, (options) =>
  Effect.flatMap(Effect.zip(handlers, givenName), ([h, name]) => h.sync(name, options))
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
  (options) => Effect.flatMap(Effect.zip(handlers, givenName), ([h, name]) => h.drop(name, options))
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
      Options.withDescription("how many versions to show, newest first (1 or more)"),
      Options.withDefault(20),
      Options.mapEffect((n: number) =>
        n >= 1
          ? Effect.succeed(n)
          : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--limit must be 1 or more, got ${n}`)))
      )
    ),
    json: jsonOption
  },
  (options) => Effect.flatMap(Effect.zip(handlers, givenName), ([h, name]) => h.history(name, options))
).pipe(Command.withDescription("list the state versions kept in the destination (version, hash, load id, created at)"))

const schema = Command.make("schema", { ...commonOptions, json: jsonOption }, (options) =>
  Effect.flatMap(Effect.zip(handlers, givenName), ([h, name]) => h.schema(name, options))
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
  (options) => Effect.flatMap(Effect.zip(handlers, givenName), ([h, name]) => h.restore(name, options))
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

// `pipeline list` takes only its options: @effect/cli would ignore anything else (a typo included)
const checkListArguments = (args: ReadonlyArray<string>): Option.Option<UnknownArgument> => {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--json" || BUILT_IN.test(arg) || arg.startsWith("--pipelines-dir=")) continue
    if (arg === "--pipelines-dir") {
      i++
      continue
    }
    return Option.some(
      new UnknownArgument({
        command: "pipestate pipeline list",
        argument: arg,
        takes: "--json and --pipelines-dir <dir> (and --help)"
      })
    )
  }
  return Option.none()
}

/**
 * @effect/cli reports a `pipeline` with no known command as "Invalid subcommand for pipestate - use
 * 'pipeline'", which points nowhere useful; this names the problem and the commands instead.
 */
const checkCommand = (argv: ReadonlyArray<string>): Option.Option<UnknownCommand | UnknownArgument> => {
  const pipelineAt = argv.indexOf("pipeline", 2)
  if (pipelineAt < 0) return Option.none()
  const rest = argv.slice(pipelineAt + 1)
  if (rest[0] === "list") return checkListArguments(rest.slice(1))
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
