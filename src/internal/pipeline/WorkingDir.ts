/**
 * The pipeline working directory `<pipelines_dir>/<pipeline_name>/`: the local `state.json`
 * (written atomically: temp file, fsync, rename, fsync of the directory), a `.lock` file against
 * two local runs of one pipeline, and the spool of load packages.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import { homedir, hostname } from "node:os"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import type { PlatformError } from "@effect/platform/Error"
import { Config, Effect, Either, Option, Schema, type Scope } from "effect"
import * as PipelineState from "../state/PipelineState.js"
import { shellQuote } from "../Shell.js"

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * A file system operation on the working directory failed.
 *
 * @since 0.1.0
 */
export class WorkingDirError extends Schema.TaggedError<WorkingDirError>()("WorkingDirError", {
  path: Schema.String,
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Could not ${this.operation} (${this.path}): ${this.reason}`
  }
}

/**
 * The local `state.json` cannot be read as a state document.
 *
 * @since 0.1.0
 */
export class CorruptStateFile extends Schema.TaggedError<CorruptStateFile>()("CorruptStateFile", {
  path: Schema.String,
  reason: Schema.String,
  pipelineName: Schema.optional(Schema.String),
  /** the command that restores this pipeline's state from its destination, as a shell reads it */
  command: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const name = this.pipelineName === undefined ? "<name>" : shellQuote(this.pipelineName)
    // without a command, nothing left in the file says where the destination is
    const restore =
      this.command === undefined
        ? `Run \`pipestate pipeline ${name} sync --dataset <dataset> --yes\` with the pipeline's dataset, adding \`--destination postgres --url <url>\` for a PostgreSQL destination (or \`--sqlite-path <file>\` for a SQLite file outside the working dir), to restore the state from the destination, `
        : `Run \`${this.command}\` to restore the state from the destination, `
    return (
      `The local state file ${this.path} is corrupt: ${this.reason}. ` +
      restore +
      "or delete the file (the next run then restores from the destination, or starts fresh when restore_from_destination is off)."
    )
  }
}

/**
 * Another run holds the lock of this pipeline's working directory.
 *
 * @since 0.1.0
 */
export class PipelineLocked extends Schema.TaggedError<PipelineLocked>()("PipelineLocked", {
  pipelineName: Schema.String,
  path: Schema.String,
  pid: Schema.optional(Schema.Number),
  hostname: Schema.optional(Schema.String),
  acquiredAt: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const holder =
      this.pid === undefined
        ? "another run (its lock file is still being written or unreadable)"
        : `process ${this.pid} on ${this.hostname ?? "an unknown host"}` +
          (this.acquiredAt === undefined ? "" : ` since ${this.acquiredAt}`)
    return (
      `Pipeline "${this.pipelineName}" is locked by ${holder}; lock file ${this.path}. ` +
      "Wait for that run to finish. If no run of this pipeline is going on (it crashed, or ran on another " +
      "machine sharing this directory), delete the lock file and try again."
    )
  }
}

/**
 * A pipeline name that cannot name a directory.
 *
 * @since 0.1.0
 */
export class InvalidPipelineName extends Schema.TaggedError<InvalidPipelineName>()("InvalidPipelineName", {
  name: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `${JSON.stringify(this.name)} is not a valid pipeline name: ${this.reason}`
  }
}

// ---------------------------------------------------------------------------------------------
// Locations
// ---------------------------------------------------------------------------------------------

/**
 * The directory holding the pipelines' working directories: `override`, else the environment
 * variable `PIPESTATE_PIPELINES_DIR`, else `~/.pipestate/pipelines`; made absolute.
 *
 * @example
 * ```ts
 * const dir = yield* WorkingDir.resolvePipelinesDir() // "/home/me/.pipestate/pipelines"
 * ```
 *
 * @since 0.1.0
 */
export const resolvePipelinesDir = (override?: string): Effect.Effect<string, never, Path.Path> =>
  Effect.gen(function* () {
    const path = yield* Path.Path
    if (override !== undefined && override !== "") return path.resolve(override)
    const fromEnv = yield* Config.option(Config.nonEmptyString("PIPESTATE_PIPELINES_DIR")).pipe(
      Effect.orElseSucceed(() => Option.none<string>())
    )
    if (Option.isSome(fromEnv)) return path.resolve(fromEnv.value)
    const home = yield* Effect.try(() => homedir()).pipe(Effect.orElseSucceed(() => process.cwd()))
    return path.join(home, ".pipestate", "pipelines")
  })

const MAX_NAME_LENGTH = 200

/**
 * Checks that a pipeline name can name its working directory: not empty, at most 200 characters,
 * no path separator, no `..`, no NUL, not `.`.
 *
 * @example
 * ```ts
 * validatePipelineName("chess_pipeline") // Right("chess_pipeline")
 * validatePipelineName("../etc")         // Left(InvalidPipelineName)
 * ```
 *
 * @since 0.1.0
 */
export const validatePipelineName = (name: string): Either.Either<string, InvalidPipelineName> => {
  const reason =
    name.length === 0
      ? "it is empty"
      : name.length > MAX_NAME_LENGTH
        ? `it is longer than ${MAX_NAME_LENGTH} characters`
        : name.includes("/") || name.includes("\\")
          ? "it contains a path separator"
          : name.includes("..")
            ? 'it contains ".."'
            : name.includes("\0")
              ? "it contains a NUL character"
              : name === "."
                ? 'it is "."'
                : undefined
  return reason === undefined
    ? Either.right(name)
    : Either.left(new InvalidPipelineName({ name, reason: `${reason}; use a plain name such as "chess_pipeline"` }))
}

// ---------------------------------------------------------------------------------------------
// The working directory
// ---------------------------------------------------------------------------------------------

/**
 * A pipeline's working directory.
 *
 * @since 0.1.0
 */
export interface WorkingDir {
  readonly name: string
  readonly dir: string
  /**
   * the pipeline directory the destination is addressed with (`DatasetTarget.pipelineDir`, where an
   * embedded destination keeps its files by default): `dir`, or for a group of an orchestrated run
   * the working directory of its pipeline, so every group loads into the pipeline's own dataset
   */
  readonly datasetDir: string
  readonly statePath: string
  readonly lockPath: string
  /** the local state, `None` when there is no state file */
  readonly readState: Effect.Effect<Option.Option<PipelineState.PipelineState>, CorruptStateFile | WorkingDirError>
  /** writes the state file atomically: a crash leaves the old file or the new one, never a mix */
  readonly writeState: (state: PipelineState.PipelineState) => Effect.Effect<void, WorkingDirError>
  /** removes the state file (no error when there is none) */
  readonly deleteState: Effect.Effect<void, WorkingDirError>
  /**
   * a state kept for another target (`targets/<key>.json`): when a pipeline switches destination or
   * dataset, the state of the target it leaves is kept here, and found again when it comes back
   */
  readonly readStash: (key: string) => Effect.Effect<Option.Option<PipelineState.PipelineState>>
  readonly writeStash: (key: string, state: PipelineState.PipelineState) => Effect.Effect<void, WorkingDirError>
  /** a source's stored schema as last committed (`schemas/<name>.schema.json`, dlt's document) */
  readonly readSchema: (name: string) => Effect.Effect<Option.Option<string>, WorkingDirError>
  readonly writeSchema: (name: string, text: string) => Effect.Effect<void, WorkingDirError>
  /** holds the exclusive lock of this working directory until the scope closes */
  readonly lock: Effect.Effect<void, PipelineLocked | WorkingDirError, Scope.Scope>
  /** `<dir>/load/<loadId>` */
  readonly spoolDir: (loadId: string) => string
  /** creates the load's spool directory, removed with everything in it when the scope closes */
  readonly makeSpool: (loadId: string) => Effect.Effect<string, WorkingDirError, Scope.Scope>
}

const STATE_FILE = "state.json"
const LOCK_FILE = ".lock"
const STASH_DIR = "targets"
const SCHEMA_DIR = "schemas"
const LOCK_ATTEMPTS = 5

const randomSuffix = (): string => randomBytes(6).toString("hex")

const isNotFound = (error: PlatformError): boolean => error._tag === "SystemError" && error.reason === "NotFound"
const isAlreadyExists = (error: PlatformError): boolean =>
  error._tag === "SystemError" && error.reason === "AlreadyExists"

interface LockHolder {
  readonly pid: number
  readonly hostname: string
  readonly acquiredAt: string
}

const LockHolderJson = Schema.parseJson(
  Schema.Struct({ pid: Schema.Int.pipe(Schema.positive()), hostname: Schema.String, acquiredAt: Schema.String })
)

const parseHolder = (text: string): Option.Option<LockHolder> =>
  Either.getRight(Schema.decodeUnknownEither(LockHolderJson)(text))

// process.kill(pid, 0) sends nothing: it only asks whether the process exists
const isProcessDead = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH"
  }
}

/**
 * Opens (creating if needed) the working directory of a pipeline.
 *
 * @example
 * ```ts
 * const wd = yield* WorkingDir.make({ pipelinesDir: yield* WorkingDir.resolvePipelinesDir(), pipelineName: "chess" })
 * const state = yield* wd.readState
 * ```
 *
 * @since 0.1.0
 */
export const make = (options: {
  readonly pipelinesDir: string
  readonly pipelineName: string
}): Effect.Effect<WorkingDir, WorkingDirError | InvalidPipelineName, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const name = yield* validatePipelineName(options.pipelineName)
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const dir = path.join(path.resolve(options.pipelinesDir), name)
    const statePath = path.join(dir, STATE_FILE)
    const lockPath = path.join(dir, LOCK_FILE)

    const fail = (target: string, operation: string) => (error: PlatformError) =>
      new WorkingDirError({ path: target, operation, reason: error.message })

    const ensureDir = fs
      .makeDirectory(dir, { recursive: true })
      .pipe(Effect.mapError(fail(dir, "create the working directory")))
    yield* ensureDir

    const readState: WorkingDir["readState"] = fs.readFileString(statePath).pipe(
      Effect.map(Option.some),
      Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<string>())),
      Effect.mapError(fail(statePath, "read the state file")),
      Effect.flatMap(
        Option.match({
          onNone: () => Effect.succeed(Option.none()),
          onSome: (text) =>
            PipelineState.fromFileText(text).pipe(
              Either.map(Option.some),
              Either.mapLeft(
                (error) => new CorruptStateFile({ path: statePath, reason: error.reason, pipelineName: name })
              )
            )
        })
      )
    )

    // best effort: a directory cannot be opened for fsync everywhere (Windows)
    const syncDirectory = Effect.scoped(Effect.flatMap(fs.open(dir, { flag: "r" }), (handle) => handle.sync)).pipe(
      Effect.ignore
    )

    const writeStateAt = (target: string, state: PipelineState.PipelineState) =>
      Effect.gen(function* () {
        const text = yield* PipelineState.toFileText(state).pipe(
          Either.mapLeft(
            (error) => new WorkingDirError({ path: target, operation: "encode the state", reason: error.message })
          )
        )
        const tmpPath = `${target}.${randomSuffix()}.tmp`
        const writeTmp = Effect.scoped(
          Effect.gen(function* () {
            const handle = yield* fs.open(tmpPath, { flag: "wx" })
            yield* handle.writeAll(new TextEncoder().encode(text))
            yield* handle.sync
          })
        ).pipe(Effect.mapError(fail(tmpPath, "write the temporary state file")))
        yield* writeTmp.pipe(
          Effect.zipRight(fs.rename(tmpPath, target).pipe(Effect.mapError(fail(target, "replace the state file")))),
          Effect.onError(() => fs.remove(tmpPath).pipe(Effect.ignore))
        )
      })

    const writeState: WorkingDir["writeState"] = (state) =>
      Effect.zipRight(writeStateAt(statePath, state), syncDirectory)

    const schemaDir = path.join(dir, SCHEMA_DIR)
    const schemaPath = (name: string) => path.join(schemaDir, `${encodeURIComponent(name)}.schema.json`)

    const readSchema: WorkingDir["readSchema"] = (name) =>
      fs.readFileString(schemaPath(name)).pipe(
        Effect.map(Option.some),
        Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<string>())),
        Effect.mapError(fail(schemaPath(name), "read the stored schema"))
      )

    const writeSchema: WorkingDir["writeSchema"] = (name, text) =>
      Effect.gen(function* () {
        yield* fs
          .makeDirectory(schemaDir, { recursive: true })
          .pipe(Effect.mapError(fail(schemaDir, "create the schema directory")))
        const target = schemaPath(name)
        const tmpPath = `${target}.${randomSuffix()}.tmp`
        yield* fs.writeFileString(tmpPath, text).pipe(
          Effect.zipRight(fs.rename(tmpPath, target)),
          Effect.onError(() => fs.remove(tmpPath).pipe(Effect.ignore)),
          Effect.mapError(fail(target, "write the stored schema"))
        )
      })

    const stashDir = path.join(dir, STASH_DIR)
    const stashPath = (key: string) => path.join(stashDir, `${key}.json`)

    const readStash: WorkingDir["readStash"] = (key) =>
      fs.readFileString(stashPath(key)).pipe(
        Effect.map((text) => Either.getRight(PipelineState.fromFileText(text))),
        // a stash that cannot be read is as good as none: the destination (or a fresh start) decides
        Effect.catchAll(() => Effect.succeed(Option.none<PipelineState.PipelineState>()))
      )

    const writeStash: WorkingDir["writeStash"] = (key, state) =>
      fs
        .makeDirectory(stashDir, { recursive: true })
        .pipe(
          Effect.mapError(fail(stashDir, "create the directory of kept states")),
          Effect.zipRight(writeStateAt(stashPath(key), state))
        )

    const deleteState: WorkingDir["deleteState"] = fs.remove(statePath).pipe(
      Effect.catchIf(isNotFound, () => Effect.void),
      Effect.mapError(fail(statePath, "delete the state file"))
    )

    const locked = (holder: Option.Option<LockHolder>) =>
      Option.match(holder, {
        onNone: () => new PipelineLocked({ pipelineName: name, path: lockPath }),
        onSome: (h) => new PipelineLocked({ pipelineName: name, path: lockPath, ...h })
      })

    // The holder we judged stale is moved aside first and checked: if the lock changed between our
    // read and the move, we took a live lock and put it back instead of deleting it.
    const takeOver = (staleText: string) =>
      Effect.gen(function* () {
        const aside = `${lockPath}.${randomSuffix()}.stale`
        const moved = yield* fs.rename(lockPath, aside).pipe(
          Effect.as(true),
          Effect.catchIf(isNotFound, () => Effect.succeed(false)),
          Effect.mapError(fail(lockPath, "take over a stale lock"))
        )
        if (!moved) return
        const movedText = yield* fs.readFileString(aside).pipe(Effect.orElseSucceed(() => ""))
        if (movedText !== staleText) {
          yield* fs.link(aside, lockPath).pipe(Effect.ignore)
          yield* fs.remove(aside).pipe(Effect.ignore)
          return yield* Effect.fail(locked(parseHolder(movedText)))
        }
        yield* fs.remove(aside).pipe(Effect.ignore)
      })

    const me: LockHolder = { pid: process.pid, hostname: hostname(), acquiredAt: "" }

    // the lock file appears whole or not at all: written under a temporary name, then linked into
    // place (link fails when the lock exists), so a writer killed midway leaves no empty lock
    const createLock = (content: string) =>
      Effect.gen(function* () {
        const tmp = `${lockPath}.${randomSuffix()}.tmp`
        yield* fs.writeFileString(tmp, content, { flag: "wx" }).pipe(Effect.mapError(fail(tmp, "write the lock file")))
        return yield* fs.link(tmp, lockPath).pipe(
          Effect.as<"created" | "exists" | "vanished">("created"),
          Effect.catchIf(isAlreadyExists, () => Effect.succeed("exists" as const)),
          // the lock holder's debris scan removed our temporary file: try again
          Effect.catchIf(isNotFound, () => Effect.succeed("vanished" as const)),
          Effect.mapError(fail(lockPath, "create the lock file")),
          Effect.ensuring(fs.remove(tmp).pipe(Effect.ignore))
        )
      })

    const tryAcquire = (attempt: number): Effect.Effect<string, PipelineLocked | WorkingDirError> =>
      Effect.gen(function* () {
        const mine = JSON.stringify({ ...me, acquiredAt: new Date().toISOString() })
        const created = yield* createLock(mine)
        if (created === "created") return mine
        if (created === "vanished") return yield* retry(attempt, Option.none())
        const existing = yield* fs.readFileString(lockPath).pipe(
          Effect.map(Option.some),
          Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<string>())),
          Effect.mapError(fail(lockPath, "read the lock file"))
        )
        // released between our create and our read
        if (Option.isNone(existing)) return yield* retry(attempt, Option.none())
        const holder = parseHolder(existing.value)
        // a lock file appears whole (see createLock), so one that does not parse is debris: a file
        // left by an older version killed while writing it, or damaged on disk
        const stale = Option.match(holder, {
          onSome: (h) => h.hostname === me.hostname && h.pid !== me.pid && isProcessDead(h.pid),
          onNone: () => true
        })
        if (!stale) return yield* Effect.fail(locked(holder))
        yield* takeOver(existing.value)
        return yield* retry(attempt, holder)
      })

    const retry = (attempt: number, holder: Option.Option<LockHolder>) =>
      attempt + 1 < LOCK_ATTEMPTS ? tryAcquire(attempt + 1) : Effect.fail(locked(holder))

    // temp files of writes that crashed before their rename; only safe to remove while locked
    const removeDebris = fs.readDirectory(dir).pipe(
      Effect.flatMap((entries) =>
        Effect.forEach(
          entries.filter(
            (entry) =>
              (entry.startsWith(`${STATE_FILE}.`) || entry.startsWith(`${LOCK_FILE}.`)) && entry.endsWith(".tmp")
          ),
          (entry) => fs.remove(path.join(dir, entry)).pipe(Effect.ignore),
          { discard: true }
        )
      ),
      Effect.ignore
    )

    const release = (mine: string) =>
      fs.readFileString(lockPath).pipe(
        Effect.flatMap((text) => (text === mine ? fs.remove(lockPath) : Effect.void)),
        Effect.ignore
      )

    // the directory may have been deleted since `make` (a clean start in a long-lived process)
    const lock: WorkingDir["lock"] = Effect.acquireRelease(Effect.zipRight(ensureDir, tryAcquire(0)), release).pipe(
      Effect.zipLeft(removeDebris),
      // spools of runs that were killed (SIGKILL skips their finalizers); no live run owns one while we hold the lock
      Effect.zipLeft(fs.remove(path.join(dir, "load"), { recursive: true }).pipe(Effect.ignore)),
      Effect.asVoid
    )

    return {
      name,
      dir,
      datasetDir: dir,
      statePath,
      lockPath,
      readState,
      writeState,
      deleteState,
      readStash,
      writeStash,
      readSchema,
      writeSchema,
      lock,
      spoolDir: (loadId) => path.join(dir, "load", loadId),
      makeSpool: (loadId) => {
        const spool = path.join(dir, "load", loadId)
        return Effect.acquireRelease(
          fs.makeDirectory(spool, { recursive: true }).pipe(Effect.mapError(fail(spool, "create the load spool"))),
          () => fs.remove(spool, { recursive: true }).pipe(Effect.ignore)
        ).pipe(Effect.as(spool))
      }
    } satisfies WorkingDir
  })

/**
 * The names of the pipelines under `pipelinesDir` that have a local state file, sorted.
 *
 * @example
 * ```ts
 * const names = yield* WorkingDir.listPipelines(yield* WorkingDir.resolvePipelinesDir())
 * ```
 *
 * @since 0.1.0
 */
export const listPipelines = (
  pipelinesDir: string
): Effect.Effect<ReadonlyArray<string>, WorkingDirError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const root = path.resolve(pipelinesDir)
    const entries = yield* fs.readDirectory(root).pipe(
      Effect.catchIf(isNotFound, () => Effect.succeed<Array<string>>([])),
      Effect.mapError(
        (error) => new WorkingDirError({ path: root, operation: "list the pipelines", reason: error.message })
      )
    )
    const withState = yield* Effect.filter(entries, (entry) =>
      fs.exists(path.join(root, entry, STATE_FILE)).pipe(Effect.orElseSucceed(() => false))
    )
    return withState.sort()
  })
