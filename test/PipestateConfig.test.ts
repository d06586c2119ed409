import { FileSystem, Path } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option, Redacted, type Scope } from "effect"
import * as PipestateConfig from "../src/config/PipestateConfig.js"
import * as Pipeline from "../src/pipeline/Pipeline.js"

const SECRET = "postgres://loader:s3cr3t-pa55@db.internal:5432/warehouse"

/** a temp dir (the "current directory"), with `.pipestate/config.toml` when `toml` is given */
const project = (toml?: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "pipestate-config-" })
    const file = path.join(dir, ".pipestate", "config.toml")
    if (toml !== undefined) {
      yield* fs.makeDirectory(path.join(dir, ".pipestate"))
      yield* fs.writeFileString(file, toml)
    }
    return { dir, file }
  })

/** loads with `vars` as the whole environment (never the test runner's own env) */
const load = (options: PipestateConfig.LoadOptions, vars: Record<string, string> = {}) =>
  PipestateConfig.load(options).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars)))))

const run = <A, E>(effect: Effect.Effect<A, E, FileSystem.FileSystem | Path.Path | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const FULL_FILE = `
pipelines_dir = "/srv/pipelines"
restore_from_destination = false
dev_mode = false
keep_state_versions = 20
state_size_warning_bytes = 2048
concurrency = 2

[destination]
default = "postgres"

[destination.postgres]
url = "${SECRET}"

[destination.sqlite]
directory = "./data"

[pipelines.chess]
dataset = "chess_data"
concurrency = 3
dev_mode = true
pipelines_dir = "/ignored/per/pipeline"

[pipelines.other]
concurrency = 9
`

describe("load: origins", () => {
  it.effect("uses the defaults when there is no file, env or code", () =>
    run(
      Effect.gen(function* () {
        const { dir } = yield* project()
        const config = yield* load({ cwd: dir, pipelineName: "chess" })
        expect(config.restoreFromDestination).toEqual({ value: true, origin: { _tag: "Default" } })
        expect(config.devMode).toEqual({ value: false, origin: { _tag: "Default" } })
        expect(config.keepStateVersions.value).toBe(100)
        expect(config.stateSizeWarningBytes.value).toBe(1048576)
        expect(config.concurrency.value).toBe(4)
        expect(config.destination.value).toBe("sqlite")
        const unset: ReadonlyArray<PipestateConfig.Setting<Option.Option<unknown>>> = [
          config.pipelinesDir,
          config.dataset,
          config.postgresUrl,
          config.sqliteDirectory,
          config.sqlitePath
        ]
        for (const setting of unset) {
          expect(Option.isNone(setting.value)).toBe(true)
          expect(setting.origin).toEqual({ _tag: "Default" })
        }
      })
    )
  )

  it.effect("reads the file's top level and the pipeline's own section", () =>
    run(
      Effect.gen(function* () {
        const { dir, file } = yield* project(FULL_FILE)
        const config = yield* load({ cwd: dir, pipelineName: "chess" })
        expect(config.restoreFromDestination).toEqual({
          value: false,
          origin: { _tag: "File", path: file, key: "restore_from_destination" }
        })
        expect(config.keepStateVersions).toEqual({
          value: 20,
          origin: { _tag: "File", path: file, key: "keep_state_versions" }
        })
        expect(config.stateSizeWarningBytes.value).toBe(2048)
        // the pipeline's section wins over the top level
        expect(config.concurrency).toEqual({
          value: 3,
          origin: { _tag: "File", path: file, key: "pipelines.chess.concurrency" }
        })
        expect(config.devMode).toEqual({
          value: true,
          origin: { _tag: "File", path: file, key: "pipelines.chess.dev_mode" }
        })
        expect(config.dataset.value).toEqual(Option.some("chess_data"))
        // pipelines_dir is global: a pipeline's section cannot move it
        expect(config.pipelinesDir).toEqual({
          value: Option.some("/srv/pipelines"),
          origin: { _tag: "File", path: file, key: "pipelines_dir" }
        })
        expect(config.destination).toEqual({
          value: "postgres",
          origin: { _tag: "File", path: file, key: "destination.default" }
        })
        expect(config.sqliteDirectory.value).toEqual(Option.some("./data"))
        expect(config.postgresUrl.origin).toEqual({ _tag: "File", path: file, key: "destination.postgres.url" })
        expect(Option.map(config.postgresUrl.value, Redacted.value)).toEqual(Option.some(SECRET))

        // without a pipeline name (or for a pipeline without a section) only the top level applies
        const top = yield* load({ cwd: dir })
        expect(top.concurrency).toEqual({ value: 2, origin: { _tag: "File", path: file, key: "concurrency" } })
        expect(top.dataset.origin).toEqual({ _tag: "Default" })
        const other = yield* load({ cwd: dir, pipelineName: "unknown" })
        expect(other.concurrency.value).toBe(2)
      })
    )
  )

  it.effect("applies code > env > pipeline section > file top level > default, key by key", () =>
    run(
      Effect.gen(function* () {
        const { dir, file } = yield* project(
          `keep_state_versions = 10\nconcurrency = 5\n[pipelines.chess]\nconcurrency = 6\nkeep_state_versions = 11\n`
        )
        const env = { PIPESTATE_CONCURRENCY: "7", PIPESTATE_DEV_MODE: "true" }

        const withCode = yield* load({ cwd: dir, pipelineName: "chess", overrides: { concurrency: 8 } }, env)
        expect(withCode.concurrency).toEqual({ value: 8, origin: { _tag: "Code" } })

        const withEnv = yield* load({ cwd: dir, pipelineName: "chess", overrides: { concurrency: undefined } }, env)
        expect(withEnv.concurrency).toEqual({ value: 7, origin: { _tag: "Env", variable: "PIPESTATE_CONCURRENCY" } })
        expect(withEnv.devMode).toEqual({ value: true, origin: { _tag: "Env", variable: "PIPESTATE_DEV_MODE" } })
        // env beats the pipeline's section too
        expect(withEnv.keepStateVersions).toEqual({
          value: 11,
          origin: { _tag: "File", path: file, key: "pipelines.chess.keep_state_versions" }
        })

        const withSection = yield* load({ cwd: dir, pipelineName: "chess" })
        expect(withSection.concurrency).toEqual({
          value: 6,
          origin: { _tag: "File", path: file, key: "pipelines.chess.concurrency" }
        })

        const withTop = yield* load({ cwd: dir, pipelineName: "other" })
        expect(withTop.concurrency).toEqual({ value: 5, origin: { _tag: "File", path: file, key: "concurrency" } })

        const { dir: empty } = yield* project()
        const withDefault = yield* load({ cwd: empty, pipelineName: "chess" })
        expect(withDefault.concurrency).toEqual({ value: 4, origin: { _tag: "Default" } })
      })
    )
  )

  it.effect("reads every option from env", () =>
    run(
      Effect.gen(function* () {
        const { dir } = yield* project(FULL_FILE)
        const config = yield* load(
          { cwd: dir, pipelineName: "chess" },
          {
            PIPESTATE_PIPELINES_DIR: "/env/pipelines",
            PIPESTATE_RESTORE_FROM_DESTINATION: "yes",
            PIPESTATE_DEV_MODE: "0",
            PIPESTATE_KEEP_STATE_VERSIONS: "3",
            PIPESTATE_STATE_SIZE_WARNING_BYTES: "999",
            PIPESTATE_CONCURRENCY: "12",
            PIPESTATE_DESTINATION: "sqlite",
            PIPESTATE_POSTGRES_URL: "postgres://other:pw@h/db?options=a,b",
            PIPESTATE_SQLITE_DIRECTORY: "/env/sqlite",
            PIPESTATE_SQLITE_PATH: "/env/one.sqlite"
          }
        )
        expect(config.pipelinesDir.value).toEqual(Option.some("/env/pipelines"))
        expect(config.restoreFromDestination.value).toBe(true)
        expect(config.devMode.value).toBe(false)
        expect(config.keepStateVersions.value).toBe(3)
        expect(config.stateSizeWarningBytes.value).toBe(999)
        expect(config.concurrency.value).toBe(12)
        expect(config.destination).toEqual({
          value: "sqlite",
          origin: { _tag: "Env", variable: "PIPESTATE_DESTINATION" }
        })
        expect(Option.map(config.postgresUrl.value, Redacted.value)).toEqual(
          Option.some("postgres://other:pw@h/db?options=a,b")
        )
        expect(config.postgresUrl.origin).toEqual({ _tag: "Env", variable: "PIPESTATE_POSTGRES_URL" })
        expect(config.sqliteDirectory.value).toEqual(Option.some("/env/sqlite"))
        expect(config.sqlitePath).toEqual({
          value: Option.some("/env/one.sqlite"),
          origin: { _tag: "Env", variable: "PIPESTATE_SQLITE_PATH" }
        })
        // the dataset has no env variable: the file's section still applies
        expect(config.dataset.value).toEqual(Option.some("chess_data"))
      })
    )
  )

  it.effect("treats an empty env variable as unset", () =>
    run(
      Effect.gen(function* () {
        const { dir, file } = yield* project("dev_mode = true\n")
        const config = yield* load({ cwd: dir }, { PIPESTATE_DEV_MODE: "", PIPESTATE_POSTGRES_URL: " " })
        expect(config.devMode).toEqual({ value: true, origin: { _tag: "File", path: file, key: "dev_mode" } })
        expect(config.postgresUrl.origin).toEqual({ _tag: "Default" })
      })
    )
  )

  it.effect("takes secrets from code as a string or Redacted, and keeps them Redacted", () =>
    run(
      Effect.gen(function* () {
        const { dir } = yield* project()
        const plain = yield* load({ cwd: dir, overrides: { postgresUrl: SECRET } })
        expect(plain.postgresUrl.origin).toEqual({ _tag: "Code" })
        const url = Option.getOrThrow(plain.postgresUrl.value)
        expect(Redacted.isRedacted(url)).toBe(true)
        expect(Redacted.value(url)).toBe(SECRET)
        expect(String(url)).not.toContain("s3cr3t")
        const redacted = yield* load({ cwd: dir, overrides: { postgresUrl: Redacted.make(SECRET) } })
        expect(Option.map(redacted.postgresUrl.value, Redacted.value)).toEqual(Option.some(SECRET))
      })
    )
  )

  it.effect("accepts `destination = ...` as a plain key when there are no destination tables", () =>
    run(
      Effect.gen(function* () {
        const { dir, file } = yield* project(`destination = "postgres"\n[pipelines.chess]\ndestination = "sqlite"\n`)
        expect((yield* load({ cwd: dir })).destination).toEqual({
          value: "postgres",
          origin: { _tag: "File", path: file, key: "destination" }
        })
        expect((yield* load({ cwd: dir, pipelineName: "chess" })).destination).toEqual({
          value: "sqlite",
          origin: { _tag: "File", path: file, key: "pipelines.chess.destination" }
        })
      })
    )
  )

  it.effect("reads per-pipeline destination tables, and quotes odd pipeline names in keys", () =>
    run(
      Effect.gen(function* () {
        const { dir, file } = yield* project(
          `[destination.sqlite]\npath = "/top.sqlite"\n[pipelines."eu.orders".destination.sqlite]\npath = "/eu.sqlite"\n`
        )
        const config = yield* load({ cwd: dir, pipelineName: "eu.orders" })
        expect(config.sqlitePath).toEqual({
          value: Option.some("/eu.sqlite"),
          origin: { _tag: "File", path: file, key: `pipelines."eu.orders".destination.sqlite.path` }
        })
        expect(config.destination.origin).toEqual({ _tag: "Default" })
      })
    )
  )

  it.effect("reads a file at another path, relative to cwd", () =>
    run(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const { dir } = yield* project()
        yield* fs.writeFileString(path.join(dir, "custom.toml"), "concurrency = 9\n")
        const config = yield* load({ cwd: dir, file: "custom.toml" })
        expect(config.concurrency).toEqual({
          value: 9,
          origin: { _tag: "File", path: path.join(dir, "custom.toml"), key: "concurrency" }
        })
      })
    )
  )
})

describe("load: errors", () => {
  const failure = (toml: string | undefined, options: PipestateConfig.LoadOptions, vars: Record<string, string> = {}) =>
    Effect.gen(function* () {
      const { dir, file } = yield* project(toml)
      const error = yield* Effect.flip(load({ cwd: dir, ...options }, vars))
      return { error, file, dir }
    })

  it.effect("an invalid file value names the key and the file", () =>
    run(
      Effect.gen(function* () {
        const { error, file } = yield* failure(`restore_from_destination = "maybe"\n`, {})
        expect(error._tag).toBe("InvalidConfigValue")
        if (error._tag !== "InvalidConfigValue") return
        expect(error.key).toBe("restore_from_destination")
        expect(error.origin).toEqual({ _tag: "File", path: file, key: "restore_from_destination" })
        expect(error.message).toContain("restore_from_destination")
        expect(error.message).toContain(file)
        expect(error.message).toContain("maybe")
        expect(error.message).toContain("true or false")
      })
    )
  )

  it.effect("an invalid pipeline-section value names the section key", () =>
    run(
      Effect.gen(function* () {
        const { error, file } = yield* failure(`[pipelines.chess]\nconcurrency = 0\n`, { pipelineName: "chess" })
        expect(error).toMatchObject({
          _tag: "InvalidConfigValue",
          key: "concurrency",
          origin: { _tag: "File", path: file, key: "pipelines.chess.concurrency" }
        })
        expect(error.message).toContain("1 or more")
      })
    )
  )

  it.effect("an invalid env value names the variable", () =>
    run(
      Effect.gen(function* () {
        const { error } = yield* failure(undefined, {}, { PIPESTATE_KEEP_STATE_VERSIONS: "lots" })
        expect(error).toMatchObject({
          _tag: "InvalidConfigValue",
          key: "keep_state_versions",
          origin: { _tag: "Env", variable: "PIPESTATE_KEEP_STATE_VERSIONS" }
        })
        expect(error.message).toContain("env PIPESTATE_KEEP_STATE_VERSIONS")
        expect(error.message).toContain("lots")
        const destination = yield* failure(undefined, {}, { PIPESTATE_DESTINATION: "mysql" })
        expect(destination.error).toMatchObject({ key: "destination", origin: { variable: "PIPESTATE_DESTINATION" } })
        expect(destination.error.message).toContain("sqlite or postgres")
      })
    )
  )

  it.effect("an invalid code value is an error from code", () =>
    run(
      Effect.gen(function* () {
        const { error } = yield* failure(undefined, { overrides: { stateSizeWarningBytes: 1.5 } })
        expect(error).toMatchObject({
          _tag: "InvalidConfigValue",
          key: "state_size_warning_bytes",
          origin: { _tag: "Code" }
        })
        expect(error.message).toContain("from code")
        const empty = yield* failure(undefined, { overrides: { dataset: " " } })
        expect(empty.error).toMatchObject({ key: "dataset", origin: { _tag: "Code" } })
      })
    )
  )

  it.effect("a value of the wrong TOML type is an error, not silently ignored", () =>
    run(
      Effect.gen(function* () {
        const array = yield* failure(`concurrency = [1, 2]\n`, {})
        expect(array.error).toMatchObject({ key: "concurrency" })
        expect(array.error.message).toContain("found an array")
        const date = yield* failure(`pipelines_dir = 2024-01-01\n`, {})
        expect(date.error.message).toContain("found a date")
        const float = yield* failure(`concurrency = 2.5\n`, {})
        expect(float.error.message).toContain("2.5")
        const section = yield* failure(`[pipelines]\nchess = 1\n`, { pipelineName: "chess" })
        expect(section.error).toMatchObject({ _tag: "InvalidConfigFile", path: section.file })
        expect(section.error.message).toContain("pipelines.chess must be a table")
      })
    )
  )

  it.effect("a higher-precedence value masks an invalid lower one", () =>
    run(
      Effect.gen(function* () {
        const { dir } = yield* project(`concurrency = "many"\n`)
        const config = yield* load({ cwd: dir }, { PIPESTATE_CONCURRENCY: "2" })
        expect(config.concurrency.value).toBe(2)
      })
    )
  )

  it.effect("a TOML syntax error gives the file, line and column", () =>
    run(
      Effect.gen(function* () {
        const { error, file } = yield* failure(`dev_mode = true\nconcurrency = \nkeep_state_versions = 3\n`, {})
        expect(error).toMatchObject({ _tag: "InvalidConfigFile", path: file, line: 2, column: 15 })
        expect(error.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2:15: invalid TOML`))
      })
    )
  )

  it.effect("a missing default file is fine; a missing named file or a directory is not", () =>
    run(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const { dir } = yield* project()
        expect((yield* load({ cwd: dir })).concurrency.origin).toEqual({ _tag: "Default" })
        const named = yield* Effect.flip(load({ cwd: dir, file: "nope.toml" }))
        expect(named).toMatchObject({ _tag: "InvalidConfigFile", path: path.join(dir, "nope.toml") })
        expect(named.message).toContain("does not exist")
        yield* fs.makeDirectory(path.join(dir, ".pipestate", "config.toml"), { recursive: true })
        const directory = yield* Effect.flip(load({ cwd: dir }))
        expect(directory).toMatchObject({
          _tag: "InvalidConfigFile",
          path: path.join(dir, ".pipestate", "config.toml")
        })
        expect(directory.message).toContain("cannot read")
      })
    )
  )
})

describe("secrets", () => {
  const leaks = (value: unknown): boolean => {
    const texts = [String(value), JSON.stringify(value)]
    if (value instanceof Error) texts.push(value.message, value.stack ?? "")
    return texts.some((text) => text.includes("s3cr3t"))
  }

  it.effect("describe shows <redacted> for the postgres url, from any origin", () =>
    run(
      Effect.gen(function* () {
        const { dir } = yield* project(FULL_FILE)
        for (const [options, vars] of [
          [{ cwd: dir }, {}],
          [{ cwd: dir }, { PIPESTATE_POSTGRES_URL: SECRET }],
          [{ cwd: dir, overrides: { postgresUrl: SECRET } }, {}]
        ] as const) {
          const config = yield* load(options, vars)
          const rows = PipestateConfig.describe(config)
          const url = rows.find((row) => row.key === "destination.postgres.url")
          expect(url?.value).toBe("<redacted>")
          expect(leaks(rows)).toBe(false)
          expect(leaks(config)).toBe(false)
        }
      })
    )
  )

  it.effect("errors never carry the url", () =>
    run(
      Effect.gen(function* () {
        // a syntax error on the url's line: smol-toml's message quotes the line; ours does not
        const syntax = yield* failure(`[destination.postgres]\nurl = "${SECRET}\n`)
        expect(syntax).toMatchObject({ _tag: "InvalidConfigFile", line: 2 })
        expect(leaks(syntax)).toBe(false)
        // the url where a table belongs
        const shape = yield* failure(`[destination]\npostgres = "${SECRET}"\n`)
        expect(shape).toMatchObject({ _tag: "InvalidConfigValue", key: "destination.postgres.url" })
        expect(shape.message).toContain("destination.postgres must be a table")
        expect(leaks(shape)).toBe(false)
        // a url of the wrong type in env / code cannot happen; an empty one from code is refused quietly
        const empty = yield* Effect.flip(
          Effect.gen(function* () {
            const { dir } = yield* project()
            return yield* load({ cwd: dir, overrides: { postgresUrl: "" } })
          })
        )
        expect(empty).toMatchObject({ _tag: "InvalidConfigValue", key: "destination.postgres.url" })
        expect(empty.message).toContain("not shown")
      })
    )
  )

  const failure = (toml: string) =>
    Effect.gen(function* () {
      const { dir } = yield* project(toml)
      return yield* Effect.flip(load({ cwd: dir }))
    })
})

describe("describe", () => {
  it.effect("lists every option with its value and origin", () =>
    run(
      Effect.gen(function* () {
        const { dir, file } = yield* project(FULL_FILE)
        const config = yield* load(
          { cwd: dir, pipelineName: "chess", overrides: { keepStateVersions: 7 } },
          {
            PIPESTATE_SQLITE_PATH: "/one.sqlite"
          }
        )
        expect(PipestateConfig.describe(config)).toEqual([
          { key: "pipelines_dir", value: "/srv/pipelines", origin: `file ${file} (pipelines_dir)` },
          { key: "dataset", value: "chess_data", origin: `file ${file} (pipelines.chess.dataset)` },
          { key: "destination", value: "postgres", origin: `file ${file} (destination.default)` },
          { key: "restore_from_destination", value: "false", origin: `file ${file} (restore_from_destination)` },
          { key: "dev_mode", value: "true", origin: `file ${file} (pipelines.chess.dev_mode)` },
          { key: "concurrency", value: "3", origin: `file ${file} (pipelines.chess.concurrency)` },
          { key: "keep_state_versions", value: "7", origin: "code" },
          { key: "state_size_warning_bytes", value: "2048", origin: `file ${file} (state_size_warning_bytes)` },
          { key: "destination.postgres.url", value: "<redacted>", origin: `file ${file} (destination.postgres.url)` },
          {
            key: "destination.sqlite.directory",
            value: "./data",
            origin: `file ${file} (destination.sqlite.directory)`
          },
          { key: "destination.sqlite.path", value: "/one.sqlite", origin: "env PIPESTATE_SQLITE_PATH" }
        ])
        const { dir: empty } = yield* project()
        const defaults = PipestateConfig.describe(yield* load({ cwd: empty }))
        expect(defaults.find((row) => row.key === "pipelines_dir")).toEqual({
          key: "pipelines_dir",
          value: "(not set)",
          origin: "default"
        })
        expect(defaults.find((row) => row.key === "destination.postgres.url")?.value).toBe("(not set)")
      })
    )
  )
})

describe("Pipeline.layer resolves options the way the CLI does (code > env > file > default)", () => {
  const pipelineFile = (pipelinesDir: string) => `
pipelines_dir = "${pipelinesDir}"
restore_from_destination = false
keep_state_versions = 20
state_size_warning_bytes = 2048
concurrency = 2

[pipelines.chess]
dataset = "chess_data"
concurrency = 3
`
  it.effect("the config file's options reach Pipeline.make", () =>
    run(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const pipelines = yield* fs.makeTempDirectoryScoped({ prefix: "pipestate-pipelines-" })
        const { dir } = yield* project(pipelineFile(pipelines))
        const { config } = yield* Pipeline.make({ name: "chess", cwd: dir }).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map()))
        )
        expect(config.pipelinesDir).toBe(pipelines)
        expect(config.dataset).toBe("chess_data")
        expect(config.restoreFromDestination).toBe(false)
        expect(config.concurrency).toBe(3)
        expect(config.keepStateVersions).toBe(20)
        expect(config.stateSizeWarningBytes).toBe(2048)
        expect(config.settings.concurrency.origin).toEqual({
          _tag: "File",
          path: `${dir}/.pipestate/config.toml`,
          key: "pipelines.chess.concurrency"
        })
      })
    )
  )

  it.effect("env wins over the file, code over env; dev mode comes from env too", () =>
    run(
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const pipelines = yield* fs.makeTempDirectoryScoped({ prefix: "pipestate-pipelines-" })
        const { dir } = yield* project(pipelineFile(pipelines))
        const env = ConfigProvider.fromMap(
          new Map([
            ["PIPESTATE_CONCURRENCY", "7"],
            ["PIPESTATE_DEV_MODE", "true"],
            ["PIPESTATE_RESTORE_FROM_DESTINATION", "true"]
          ])
        )
        const fromEnv = yield* Pipeline.make({ name: "chess", cwd: dir }).pipe(Effect.withConfigProvider(env))
        expect(fromEnv.config.concurrency).toBe(7)
        expect(fromEnv.config.restoreFromDestination).toBe(true)
        expect(fromEnv.config.devMode).toBe(true)
        expect(fromEnv.config.baseDataset).toBe("chess_data")
        expect(fromEnv.config.dataset).toMatch(/^chess_data_\d{14}$/)
        const fromCode = yield* Pipeline.make({ name: "chess", cwd: dir, concurrency: 1, devMode: false }).pipe(
          Effect.withConfigProvider(env)
        )
        expect(fromCode.config.concurrency).toBe(1)
        expect(fromCode.config.dataset).toBe("chess_data")
      })
    )
  )

  it.effect("an invalid value in the file fails Pipeline.make with the key and its origin", () =>
    run(
      Effect.gen(function* () {
        const { dir } = yield* project("concurrency = 0\n")
        const error = yield* Effect.flip(
          Pipeline.make({ name: "chess", cwd: dir }).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
        )
        expect(error._tag).toBe("InvalidConfigValue")
        expect(error.message).toContain("concurrency")
      })
    )
  )
})
