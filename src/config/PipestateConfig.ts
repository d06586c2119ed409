/**
 * Where a pipeline's options come from: code, environment variables and a TOML file, as dlt's
 * `config.toml` does. Every effective option remembers its origin, so `pipestate pipeline <name> info`
 * can say why a value is what it is.
 *
 * Precedence, highest first: **code** (the `overrides` given to {@link load}) → **env**
 * (`PIPESTATE_*`, read through the current `ConfigProvider`, which by default is `process.env`) →
 * **the pipeline's file section** (`[pipelines.<name>]`) → **the file's top level** → **default**.
 *
 * The file is `.pipestate/config.toml` in the current directory (see {@link LoadOptions}):
 *
 * ```toml
 * pipelines_dir = "/var/lib/pipestate"
 * restore_from_destination = false
 * concurrency = 8
 *
 * [destination]
 * default = "postgres"          # or, without any [destination.*] table: destination = "postgres"
 *
 * [destination.postgres]
 * url = "postgres://loader:secret@db/warehouse"   # a secret: kept Redacted, never printed
 *
 * [destination.sqlite]
 * directory = "./data"
 *
 * [pipelines.chess_pipeline]
 * dataset = "chess_data"
 * dev_mode = true
 * ```
 *
 * | TOML key                      | env variable                         | type                 | default  |
 * | ----------------------------- | ------------------------------------ | -------------------- | -------- |
 * | `pipelines_dir` (top only)    | `PIPESTATE_PIPELINES_DIR`            | string               | none     |
 * | `dataset`                     | —                                    | string               | none     |
 * | `destination`                 | `PIPESTATE_DESTINATION`              | `sqlite`/`postgres`  | `sqlite` |
 * | `restore_from_destination`    | `PIPESTATE_RESTORE_FROM_DESTINATION` | boolean              | `true`   |
 * | `dev_mode`                    | `PIPESTATE_DEV_MODE`                 | boolean              | `false`  |
 * | `concurrency`                 | `PIPESTATE_CONCURRENCY`              | integer ≥ 1          | `4`      |
 * | `keep_state_versions`         | `PIPESTATE_KEEP_STATE_VERSIONS`      | integer ≥ 1          | `100`    |
 * | `state_size_warning_bytes`    | `PIPESTATE_STATE_SIZE_WARNING_BYTES` | integer ≥ 1          | 1 MiB    |
 * | `destination.postgres.url`    | `PIPESTATE_POSTGRES_URL`             | secret string        | none     |
 * | `destination.sqlite.directory`| `PIPESTATE_SQLITE_DIRECTORY`         | string               | none     |
 * | `destination.sqlite.path`     | `PIPESTATE_SQLITE_PATH`              | string               | none     |
 *
 * Every key but `pipelines_dir` may also be set in a `[pipelines.<name>]` section (destination keys
 * as `[pipelines.<name>.destination.postgres]` and so on). Values are parsed as Effect's `Config`
 * parses them: booleans accept `true/false/yes/no/on/off/1/0`, in the file as in env. An env
 * variable set to the empty string counts as unset. Paths are returned as written (relative ones
 * are relative to the process's working directory, where their consumers resolve them).
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { Config, ConfigError, ConfigProvider, Effect, Either, Option, Redacted, Schema } from "effect"
import { parse as parseToml, TomlError, type TomlTable, type TomlValue } from "smol-toml"
import { defaults } from "../pipeline/PipelineConfig.js"

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/**
 * Where an effective option came from. `key` of a `File` origin is the full dotted TOML key, such
 * as `pipelines.chess.dev_mode`.
 *
 * @example
 * ```ts
 * const origin: Origin = { _tag: "Env", variable: "PIPESTATE_DEV_MODE" }
 * formatOrigin(origin) // "env PIPESTATE_DEV_MODE"
 * ```
 *
 * @since 0.1.0
 */
export const Origin = Schema.Union(
  Schema.TaggedStruct("Code", {}),
  Schema.TaggedStruct("Env", { variable: Schema.String }),
  Schema.TaggedStruct("File", { path: Schema.String, key: Schema.String }),
  Schema.TaggedStruct("Default", {})
)

/**
 * @since 0.1.0
 */
export type Origin = typeof Origin.Type

/**
 * An origin as `info` prints it: `code`, `env VAR`, `file <path> (<key>)` or `default`.
 *
 * @example
 * ```ts
 * formatOrigin({ _tag: "File", path: "/p/.pipestate/config.toml", key: "concurrency" })
 * // "file /p/.pipestate/config.toml (concurrency)"
 * ```
 *
 * @since 0.1.0
 */
export const formatOrigin = (origin: Origin): string => {
  switch (origin._tag) {
    case "Code":
      return "code"
    case "Env":
      return `env ${origin.variable}`
    case "File":
      return `file ${origin.path} (${origin.key})`
    case "Default":
      return "default"
  }
}

/**
 * An effective value and where it came from.
 *
 * @example
 * ```ts
 * const concurrency: Setting<number> = { value: 4, origin: { _tag: "Default" } }
 * ```
 *
 * @since 0.1.0
 */
export interface Setting<A> {
  readonly value: A
  readonly origin: Origin
}

/**
 * The destinations a pipeline can name as its default.
 *
 * @since 0.1.0
 */
export type DestinationName = "sqlite" | "postgres"

/**
 * Every option with its effective value and origin. An option without a default that nobody set is
 * `Option.none()` with a `Default` origin.
 *
 * @example
 * ```ts
 * const config = yield* PipestateConfig.load({ pipelineName: "chess" })
 * if (config.devMode.value) console.log(`dev mode (from ${formatOrigin(config.devMode.origin)})`)
 * ```
 *
 * @since 0.1.0
 */
export interface EffectiveConfig {
  readonly pipelinesDir: Setting<Option.Option<string>>
  readonly dataset: Setting<Option.Option<string>>
  readonly destination: Setting<DestinationName>
  readonly restoreFromDestination: Setting<boolean>
  readonly devMode: Setting<boolean>
  readonly concurrency: Setting<number>
  readonly keepStateVersions: Setting<number>
  readonly stateSizeWarningBytes: Setting<number>
  readonly postgresUrl: Setting<Option.Option<Redacted.Redacted<string>>>
  readonly sqliteDirectory: Setting<Option.Option<string>>
  readonly sqlitePath: Setting<Option.Option<string>>
}

/**
 * Values set in code; they win over env and file. `undefined` means "not set here".
 *
 * @example
 * ```ts
 * const overrides: Overrides = { devMode: true, postgresUrl: Redacted.make(url) }
 * ```
 *
 * @since 0.1.0
 */
export interface Overrides {
  readonly pipelinesDir?: string | undefined
  readonly dataset?: string | undefined
  readonly destination?: DestinationName | undefined
  readonly restoreFromDestination?: boolean | undefined
  readonly devMode?: boolean | undefined
  readonly concurrency?: number | undefined
  readonly keepStateVersions?: number | undefined
  readonly stateSizeWarningBytes?: number | undefined
  readonly postgresUrl?: string | Redacted.Redacted<string> | undefined
  readonly sqliteDirectory?: string | undefined
  readonly sqlitePath?: string | undefined
}

/**
 * @since 0.1.0
 */
export interface LoadOptions {
  /** the directory whose `.pipestate/config.toml` is read; default: the process's working directory */
  readonly cwd?: string | undefined
  /**
   * the TOML file, absolute or relative to `cwd`; default `.pipestate/config.toml`. A missing default
   * file is no error; a file named here must exist.
   */
  readonly file?: string | undefined
  /** whose `[pipelines.<name>]` section applies */
  readonly pipelineName?: string | undefined
  /** values set in code */
  readonly overrides?: Overrides | undefined
}

/**
 * The default location of the config file, relative to the current directory.
 *
 * @since 0.1.0
 */
export const DEFAULT_FILE = ".pipestate/config.toml"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * The config file exists but cannot be used: unreadable, not valid TOML (with the line and column),
 * or a section of the wrong shape.
 *
 * @example
 * ```ts
 * load().pipe(Effect.catchTag("InvalidConfigFile", (e) => Console.error(e.message)))
 * // /p/.pipestate/config.toml:3:7: invalid TOML: unfinished string
 * ```
 *
 * @since 0.1.0
 */
export class InvalidConfigFile extends Schema.TaggedError<InvalidConfigFile>()("InvalidConfigFile", {
  path: Schema.String,
  line: Schema.optional(Schema.Number),
  column: Schema.optional(Schema.Number),
  reason: Schema.String
}) {
  override get message(): string {
    const at = this.line === undefined ? "" : `:${this.line}${this.column === undefined ? "" : `:${this.column}`}`
    return `${this.path}${at}: ${this.reason}`
  }
}

/**
 * An option's value cannot be used; names the key and where the value came from. A secret's value is
 * never part of the error.
 *
 * @example
 * ```ts
 * // restore_from_destination = "maybe" in the file:
 * // invalid restore_from_destination (from file /p/.pipestate/config.toml (restore_from_destination)):
 * //   Expected a boolean value but received "maybe"; use true or false
 * ```
 *
 * @since 0.1.0
 */
export class InvalidConfigValue extends Schema.TaggedError<InvalidConfigValue>()("InvalidConfigValue", {
  key: Schema.String,
  origin: Origin,
  reason: Schema.String
}) {
  override get message(): string {
    return `invalid ${this.key} (from ${formatOrigin(this.origin)}): ${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------
// Option specifications
// ---------------------------------------------------------------------------------------------

interface Spec<A> {
  /** the key as `describe` and errors name it */
  readonly key: string
  /** where the value sits below a scope (the file's top level or a `[pipelines.<name>]` table) */
  readonly path: (scope: TomlTable) => ReadonlyArray<string>
  readonly env: string | undefined
  readonly perPipeline: boolean
  readonly secret: boolean
  /** what a valid value looks like, for error messages */
  readonly expected: string
  /** the leaf config: parses a text value and validates it */
  readonly config: (name: string) => Config.Config<A>
  /** validates a value set in code */
  readonly check: (value: A) => Either.Either<A, string>
}

const validated = <A>(base: (name: string) => Config.Config<A>, check: (value: A) => Either.Either<A, string>) => {
  return (name: string): Config.Config<A> =>
    Config.mapOrFail(base(name), (value) =>
      Either.mapLeft(check(value), (message) => ConfigError.InvalidData([], message))
    )
}

const checkPositiveInteger = (value: number): Either.Either<number, string> =>
  Number.isSafeInteger(value) && value >= 1
    ? Either.right(value)
    : Either.left(`Expected an integer >= 1 but received ${value}`)

const checkNonEmpty = (value: string): Either.Either<string, string> =>
  value.trim() === "" ? Either.left("Expected a non-empty string") : Either.right(value)

const checkDestination = (value: string): Either.Either<DestinationName, string> =>
  value === "sqlite" || value === "postgres"
    ? Either.right(value)
    : Either.left(`Expected one of (sqlite, postgres) but received ${value}`)

const checkUrl = (url: Redacted.Redacted<string>): Either.Either<Redacted.Redacted<string>, string> =>
  Redacted.value(url).trim() === "" ? Either.left("Expected a non-empty URL") : Either.right(url)

const key = (name: string) => (): ReadonlyArray<string> => [name]

const booleanSpec = (name: string, env: string): Spec<boolean> => ({
  key: name,
  path: key(name),
  env,
  perPipeline: true,
  secret: false,
  expected: "use true or false",
  config: Config.boolean,
  check: Either.right
})

const positiveIntegerSpec = (name: string, env: string): Spec<number> => ({
  key: name,
  path: key(name),
  env,
  perPipeline: true,
  secret: false,
  expected: "use a whole number of 1 or more",
  config: validated(Config.integer, checkPositiveInteger),
  check: checkPositiveInteger
})

const stringSpec = (
  name: string,
  path: ReadonlyArray<string>,
  env: string | undefined,
  perPipeline: boolean
): Spec<string> => ({
  key: name,
  path: () => path,
  env,
  perPipeline,
  secret: false,
  expected: "use a non-empty string",
  config: validated(Config.string, checkNonEmpty),
  check: checkNonEmpty
})

const isTable = (value: TomlValue | undefined): value is TomlTable =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date)

const specs = {
  pipelinesDir: stringSpec("pipelines_dir", ["pipelines_dir"], "PIPESTATE_PIPELINES_DIR", false),
  dataset: stringSpec("dataset", ["dataset"], undefined, true),
  destination: {
    key: "destination",
    // `destination = "postgres"` and a `[destination.postgres]` table cannot live in one TOML file,
    // so with destination tables present the default is `[destination] default = "postgres"`
    path: (scope) => (isTable(scope.destination) ? ["destination", "default"] : ["destination"]),
    env: "PIPESTATE_DESTINATION",
    perPipeline: true,
    secret: false,
    expected: "use sqlite or postgres",
    config: Config.literal("sqlite", "postgres"),
    check: checkDestination
  } satisfies Spec<DestinationName>,
  restoreFromDestination: booleanSpec("restore_from_destination", "PIPESTATE_RESTORE_FROM_DESTINATION"),
  devMode: booleanSpec("dev_mode", "PIPESTATE_DEV_MODE"),
  concurrency: positiveIntegerSpec("concurrency", "PIPESTATE_CONCURRENCY"),
  keepStateVersions: positiveIntegerSpec("keep_state_versions", "PIPESTATE_KEEP_STATE_VERSIONS"),
  stateSizeWarningBytes: positiveIntegerSpec("state_size_warning_bytes", "PIPESTATE_STATE_SIZE_WARNING_BYTES"),
  postgresUrl: {
    key: "destination.postgres.url",
    path: () => ["destination", "postgres", "url"],
    env: "PIPESTATE_POSTGRES_URL",
    perPipeline: true,
    secret: true,
    expected: "use a non-empty connection URL",
    config: validated((name) => Config.redacted(Config.string(name)), checkUrl),
    check: checkUrl
  } satisfies Spec<Redacted.Redacted<string>>,
  sqliteDirectory: stringSpec(
    "destination.sqlite.directory",
    ["destination", "sqlite", "directory"],
    "PIPESTATE_SQLITE_DIRECTORY",
    true
  ),
  sqlitePath: stringSpec("destination.sqlite.path", ["destination", "sqlite", "path"], "PIPESTATE_SQLITE_PATH", true)
}

// ---------------------------------------------------------------------------------------------
// Reading one option
// ---------------------------------------------------------------------------------------------

/** a part of the file whose keys may hold options */
interface Scope {
  readonly table: TomlTable
  /** the TOML key of the table, e.g. `["pipelines", "chess"]`; empty for the top level */
  readonly prefix: ReadonlyArray<string>
  /** the table as a ConfigProvider */
  readonly provider: ConfigProvider.ConfigProvider
}

interface Sources {
  readonly env: ConfigProvider.ConfigProvider
  readonly file: string
  /** highest precedence first: the pipeline's section, then the top level */
  readonly scopes: ReadonlyArray<Scope>
  readonly topLevel: Scope | undefined
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/

/** a TOML dotted key, quoting the segments that are not bare keys */
const tomlKey = (segments: ReadonlyArray<string>): string =>
  segments.map((segment) => (BARE_KEY.test(segment) ? segment : JSON.stringify(segment))).join(".")

const describeConfigError = (error: ConfigError.ConfigError): string => {
  switch (error._op) {
    case "And":
    case "Or":
      return `${describeConfigError(error.left)}; ${describeConfigError(error.right)}`
    case "InvalidData":
    case "MissingData":
    case "SourceUnavailable":
    case "Unsupported":
      return error.message
  }
}

const invalidValue = <A>(spec: Spec<A>, origin: Origin, reason: string): InvalidConfigValue =>
  new InvalidConfigValue({
    key: spec.key,
    origin,
    // a secret's value never reaches an error, whatever the parser said
    reason: spec.secret
      ? `not a usable value (${spec.expected}; the value is not shown)`
      : `${reason}; ${spec.expected}`
  })

/** loads `spec` at `path` from `provider`: none when absent, a typed error when unusable */
const loadFrom = <A, B>(
  spec: Spec<A>,
  leafConfig: (name: string) => Config.Config<B>,
  provider: ConfigProvider.ConfigProvider,
  path: ReadonlyArray<string>,
  origin: Origin
): Effect.Effect<Option.Option<B>, InvalidConfigValue> => {
  const leaf = path[path.length - 1] ?? spec.key
  const config = path.slice(0, -1).reduceRight((inner, segment) => Config.nested(inner, segment), leafConfig(leaf))
  return provider
    .load(Config.option(config))
    .pipe(Effect.mapError((error) => invalidValue(spec, origin, describeConfigError(error))))
}

const fromEnv = <A>(spec: Spec<A>, sources: Sources): Effect.Effect<Option.Option<Setting<A>>, InvalidConfigValue> => {
  const variable = spec.env
  if (variable === undefined) return Effect.succeedNone
  const origin: Origin = { _tag: "Env", variable }
  return Effect.gen(function* () {
    const text = yield* loadFrom(spec, Config.string, sources.env, [variable], origin)
    // an empty variable counts as unset (`PIPESTATE_POSTGRES_URL=${UNSET}` in a compose file)
    if (Option.isNone(text) || text.value.trim() === "") return Option.none()
    const value = yield* loadFrom(spec, spec.config, sources.env, [variable], origin)
    return Option.map(value, (value) => ({ value, origin }))
  })
}

const tomlType = (value: TomlValue): string => {
  if (Array.isArray(value)) return "an array"
  if (value instanceof Date) return "a date"
  if (typeof value === "object") return "a table"
  return `a ${typeof value}`
}

const fromScope = <A>(
  spec: Spec<A>,
  sources: Sources,
  scope: Scope
): Effect.Effect<Option.Option<Setting<A>>, InvalidConfigValue> => {
  const path = spec.path(scope.table)
  let current: TomlValue = scope.table
  for (let i = 0; i < path.length; i++) {
    if (!isTable(current)) {
      // `destination = "postgres"` (the default destination's shorthand) holds no destination tables
      if (i === 1 && path[0] === "destination" && typeof current === "string") return Effect.succeedNone
      const at = [...scope.prefix, ...path.slice(0, i)]
      return Effect.fail(
        new InvalidConfigValue({
          key: spec.key,
          origin: { _tag: "File", path: sources.file, key: tomlKey(at) },
          reason: `${tomlKey(at)} must be a table, found ${tomlType(current)}`
        })
      )
    }
    const next: TomlValue | undefined = current[path[i] ?? ""]
    if (next === undefined) return Effect.succeedNone
    current = next
  }
  const origin: Origin = { _tag: "File", path: sources.file, key: tomlKey([...scope.prefix, ...path]) }
  if (typeof current !== "string" && typeof current !== "number" && typeof current !== "boolean") {
    return Effect.fail(invalidValue(spec, origin, `found ${tomlType(current)}`))
  }
  return Effect.map(
    loadFrom(spec, spec.config, scope.provider, path, origin),
    Option.map((value) => ({ value, origin }))
  )
}

const fromCode = <A>(
  spec: Spec<A>,
  value: A | undefined
): Either.Either<Option.Option<Setting<A>>, InvalidConfigValue> => {
  if (value === undefined) return Either.right(Option.none())
  const origin: Origin = { _tag: "Code" }
  return Either.match(spec.check(value), {
    onLeft: (reason) => Either.left(invalidValue(spec, origin, reason)),
    onRight: (value) => Either.right(Option.some({ value, origin }))
  })
}

/** the first source that sets `spec`, in precedence order; none when nothing does */
const resolve = <A>(
  spec: Spec<A>,
  code: A | undefined,
  sources: Sources
): Effect.Effect<Option.Option<Setting<A>>, InvalidConfigValue> =>
  Effect.gen(function* () {
    const fromCodeValue = yield* fromCode(spec, code)
    if (Option.isSome(fromCodeValue)) return fromCodeValue
    const fromEnvValue = yield* fromEnv(spec, sources)
    if (Option.isSome(fromEnvValue)) return fromEnvValue
    const scopes = spec.perPipeline ? sources.scopes : sources.topLevel === undefined ? [] : [sources.topLevel]
    for (const scope of scopes) {
      const found = yield* fromScope(spec, sources, scope)
      if (Option.isSome(found)) return found
    }
    return Option.none()
  })

const DEFAULT: Origin = { _tag: "Default" }

const withDefault = <A>(found: Option.Option<Setting<A>>, value: A): Setting<A> =>
  Option.getOrElse(found, () => ({ value, origin: DEFAULT }))

const optional = <A>(found: Option.Option<Setting<A>>): Setting<Option.Option<A>> =>
  Option.match(found, {
    onNone: () => ({ value: Option.none(), origin: DEFAULT }),
    onSome: ({ value, origin }) => ({ value: Option.some(value), origin })
  })

// ---------------------------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------------------------

/** reads and parses the file; none when it is absent and was not named explicitly */
const readFile = (
  file: string,
  explicit: boolean
): Effect.Effect<Option.Option<TomlTable>, InvalidConfigFile, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.map(Option.some),
      Effect.catchAll((error) =>
        error._tag === "SystemError" && error.reason === "NotFound" && !explicit
          ? Effect.succeedNone
          : Effect.fail(
              new InvalidConfigFile({
                path: file,
                reason:
                  error._tag === "SystemError" && error.reason === "NotFound"
                    ? "the config file does not exist"
                    : `cannot read the config file: ${error.message}`
              })
            )
      )
    )
    if (Option.isNone(text)) return Option.none()
    return yield* Effect.try({
      try: () => Option.some<TomlTable>(parseToml(text.value)),
      catch: (error) =>
        error instanceof TomlError
          ? new InvalidConfigFile({
              path: file,
              line: error.line,
              column: error.column,
              // the first line only: the rest is a code excerpt, which may show a secret
              reason: `invalid TOML: ${(error.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "")}`
            })
          : new InvalidConfigFile({ path: file, reason: `invalid TOML: ${String(error)}` })
    })
  })

const makeScope = (table: TomlTable, prefix: ReadonlyArray<string>): Scope => ({
  table,
  prefix,
  provider: ConfigProvider.fromJson(table)
})

const scopesOf = (
  file: string,
  document: Option.Option<TomlTable>,
  pipelineName: string | undefined
): Either.Either<{ scopes: ReadonlyArray<Scope>; topLevel: Scope | undefined }, InvalidConfigFile> => {
  if (Option.isNone(document)) return Either.right({ scopes: [], topLevel: undefined })
  const topLevel = makeScope(document.value, [])
  const pipelines = document.value.pipelines
  if (pipelines === undefined || pipelineName === undefined) return Either.right({ scopes: [topLevel], topLevel })
  if (!isTable(pipelines)) {
    return Either.left(
      new InvalidConfigFile({ path: file, reason: `pipelines must be a table of [pipelines.<name>] sections` })
    )
  }
  const section = pipelines[pipelineName]
  if (section === undefined) return Either.right({ scopes: [topLevel], topLevel })
  const prefix = ["pipelines", pipelineName]
  if (!isTable(section)) {
    return Either.left(
      new InvalidConfigFile({ path: file, reason: `${tomlKey(prefix)} must be a table ([${tomlKey(prefix)}])` })
    )
  }
  return Either.right({ scopes: [makeScope(section, prefix), topLevel], topLevel })
}

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

/**
 * Resolves every option from code, env (the current `ConfigProvider`), the TOML file and defaults,
 * remembering each one's origin. A missing default file is fine; an unreadable or invalid one is an
 * {@link InvalidConfigFile}; a value that does not parse is an {@link InvalidConfigValue} naming the
 * key and its origin.
 *
 * @example
 * ```ts
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { PipestateConfig } from "effect-pipestate"
 *
 * const program = Effect.gen(function* () {
 *   const config = yield* PipestateConfig.load({ pipelineName: "chess_pipeline", overrides: { devMode: true } })
 *   return config.concurrency // { value: 8, origin: { _tag: "File", ... } }
 * })
 * Effect.runPromise(program.pipe(Effect.provide(NodeContext.layer)))
 * ```
 *
 * @since 0.1.0
 */
export const load = (
  options: LoadOptions = {}
): Effect.Effect<EffectiveConfig, InvalidConfigFile | InvalidConfigValue, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    const cwd = path.resolve(options.cwd ?? ".")
    const file = path.resolve(cwd, options.file ?? DEFAULT_FILE)
    const document = yield* readFile(file, options.file !== undefined)
    const { scopes, topLevel } = yield* scopesOf(file, document, options.pipelineName)
    const env = yield* Effect.configProviderWith(Effect.succeed)
    const sources: Sources = { env, file, scopes, topLevel }
    const code = options.overrides ?? {}
    const postgresUrl =
      code.postgresUrl === undefined || Redacted.isRedacted(code.postgresUrl)
        ? code.postgresUrl
        : Redacted.make(code.postgresUrl)

    return {
      pipelinesDir: optional(yield* resolve(specs.pipelinesDir, code.pipelinesDir, sources)),
      dataset: optional(yield* resolve(specs.dataset, code.dataset, sources)),
      destination: withDefault(yield* resolve(specs.destination, code.destination, sources), "sqlite"),
      restoreFromDestination: withDefault(
        yield* resolve(specs.restoreFromDestination, code.restoreFromDestination, sources),
        defaults.restoreFromDestination
      ),
      devMode: withDefault(yield* resolve(specs.devMode, code.devMode, sources), defaults.devMode),
      concurrency: withDefault(yield* resolve(specs.concurrency, code.concurrency, sources), defaults.concurrency),
      keepStateVersions: withDefault(
        yield* resolve(specs.keepStateVersions, code.keepStateVersions, sources),
        defaults.keepStateVersions
      ),
      stateSizeWarningBytes: withDefault(
        yield* resolve(specs.stateSizeWarningBytes, code.stateSizeWarningBytes, sources),
        defaults.stateSizeWarningBytes
      ),
      postgresUrl: optional(yield* resolve(specs.postgresUrl, postgresUrl, sources)),
      sqliteDirectory: optional(yield* resolve(specs.sqliteDirectory, code.sqliteDirectory, sources)),
      sqlitePath: optional(yield* resolve(specs.sqlitePath, code.sqlitePath, sources))
    } satisfies EffectiveConfig
  })

/**
 * One line of `pipestate pipeline <name> info`.
 *
 * @since 0.1.0
 */
export interface Described {
  readonly key: string
  readonly value: string
  readonly origin: string
}

const NOT_SET = "(not set)"

const text = (value: Option.Option<string>): string => Option.getOrElse(value, () => NOT_SET)

/**
 * The effective options as printable rows, keyed by their TOML names. A secret shows as
 * `<redacted>` (or `(not set)`); its value is never part of the output.
 *
 * @example
 * ```ts
 * for (const row of PipestateConfig.describe(config)) console.log(`${row.key} = ${row.value}  [${row.origin}]`)
 * // restore_from_destination = false  [file /p/.pipestate/config.toml (restore_from_destination)]
 * // destination.postgres.url = <redacted>  [env PIPESTATE_POSTGRES_URL]
 * ```
 *
 * @since 0.1.0
 */
export const describe = (config: EffectiveConfig): ReadonlyArray<Described> => {
  const row = <A>(spec: { readonly key: string }, setting: Setting<A>, show: (value: A) => string): Described => ({
    key: spec.key,
    value: show(setting.value),
    origin: formatOrigin(setting.origin)
  })
  return [
    row(specs.pipelinesDir, config.pipelinesDir, text),
    row(specs.dataset, config.dataset, text),
    row(specs.destination, config.destination, String),
    row(specs.restoreFromDestination, config.restoreFromDestination, String),
    row(specs.devMode, config.devMode, String),
    row(specs.concurrency, config.concurrency, String),
    row(specs.keepStateVersions, config.keepStateVersions, String),
    row(specs.stateSizeWarningBytes, config.stateSizeWarningBytes, String),
    row(specs.postgresUrl, config.postgresUrl, (url) => (Option.isSome(url) ? "<redacted>" : NOT_SET)),
    row(specs.sqliteDirectory, config.sqliteDirectory, text),
    row(specs.sqlitePath, config.sqlitePath, text)
  ]
}
