/**
 * The errors only the CLI raises, and how any failure is printed: one line (or a few) a user can
 * act on, never a stack trace.
 *
 * @since 0.1.0
 */
import { ValidationError } from "@effect/cli"
import { Cause, Option, Schema } from "effect"

/**
 * The pipeline has no working dir with a state file under the pipelines dir.
 *
 * @example
 * ```ts
 * // pipeline "chess" not found in /home/me/.pipestate/pipelines; known pipelines: chess_pipeline
 * ```
 *
 * @since 0.1.0
 */
export class UnknownPipeline extends Schema.TaggedError<UnknownPipeline>()("UnknownPipeline", {
  name: Schema.String,
  pipelinesDir: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const known =
      this.known.length === 0 ? "there are no pipelines there yet" : `known pipelines: ${this.known.join(", ")}`
    return (
      `pipeline ${JSON.stringify(this.name)} not found in ${this.pipelinesDir}; ${known}. ` +
      "Pass --pipelines-dir (or set PIPESTATE_PIPELINES_DIR) if it lives elsewhere, or restore it on this machine " +
      `with \`pipestate pipeline ${this.name} sync --destination <sqlite|postgres> --dataset <dataset>\`.`
    )
  }
}

/**
 * A command that needs a pipeline name got none.
 *
 * @since 0.1.0
 */
export class MissingPipelineName extends Schema.TaggedError<MissingPipelineName>()("MissingPipelineName", {
  command: Schema.String
}) {
  override get message(): string {
    return `\`pipestate pipeline ${this.command}\` needs a pipeline name: pipestate pipeline <name> ${this.command}`
  }
}

/**
 * `pipestate pipeline <name>` without a command, or with one that does not exist.
 *
 * @since 0.1.0
 */
export class UnknownCommand extends Schema.TaggedError<UnknownCommand>()("UnknownCommand", {
  pipeline: Schema.String,
  given: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const what = this.given === undefined ? "a command is missing" : `unknown command ${JSON.stringify(this.given)}`
    return `${what}: use \`pipestate pipeline list\` or \`pipestate pipeline ${this.pipeline} info|sync|drop|history|restore\` (--help for their options)`
  }
}

/**
 * PostgreSQL was chosen but no server was given.
 *
 * @since 0.1.0
 */
export class MissingPostgresUrl extends Schema.TaggedError<MissingPostgresUrl>()("MissingPostgresUrl", {
  destinationFrom: Schema.String
}) {
  override get message(): string {
    return (
      `the destination is postgres (from ${this.destinationFrom}) but no server is given: pass ` +
      "--url postgres://user@host:5432/database, set PIPESTATE_POSTGRES_URL, or set destination.postgres.url in .pipestate/config.toml"
    )
  }
}

/**
 * The pipeline's state names a destination the CLI cannot reach.
 *
 * @since 0.1.0
 */
export class UnsupportedDestination extends Schema.TaggedError<UnsupportedDestination>()("UnsupportedDestination", {
  destination: Schema.String
}) {
  override get message(): string {
    return `the pipeline's state names the destination ${JSON.stringify(this.destination)}, which the CLI cannot reach; pass --destination sqlite or --destination postgres`
  }
}

/**
 * `sync` cannot tell which dataset to restore from: the local state file is damaged and names none,
 * and neither a flag nor the config does.
 *
 * @since 0.1.0
 */
export class DatasetRequired extends Schema.TaggedError<DatasetRequired>()("DatasetRequired", {
  pipelineName: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return (
      `cannot tell which dataset holds the state of pipeline ${this.pipelineName}: ${this.reason} ` +
      `Name it: pipestate pipeline ${this.pipelineName} sync --dataset <dataset> [--destination sqlite|postgres]`
    )
  }
}

/**
 * A change needs confirmation and there is no terminal to ask on.
 *
 * @since 0.1.0
 */
export class ConfirmationRequired extends Schema.TaggedError<ConfirmationRequired>()("ConfirmationRequired", {
  action: Schema.String
}) {
  override get message(): string {
    return `refusing to ${this.action} without confirmation: stdin is not a terminal. Pass --yes to confirm, or --dry-run to only look.`
  }
}

const messageOf = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const message = (error as { message?: unknown }).message
    if (typeof message === "string" && message !== "") return message
    const tag = (error as { _tag?: unknown })._tag
    if (typeof tag === "string") return tag
  }
  return String(error)
}

/**
 * The text printed for a failed command, or none when @effect/cli already printed it (a
 * `ValidationError`: bad flags, unknown command). Defects are printed without their stack unless
 * `PIPESTATE_DEBUG` is set.
 *
 * @example
 * ```ts
 * Option.getOrNull(describeFailure(cause)) // "error: pipeline \"x\" not found in ..."
 * ```
 *
 * @since 0.1.0
 */
export const describeFailure = (cause: Cause.Cause<unknown>): Option.Option<string> => {
  if (Cause.isInterruptedOnly(cause)) return Option.some("interrupted")
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    if (ValidationError.isValidationError(failure.value)) return Option.none()
    return Option.some(`error: ${messageOf(failure.value)}`)
  }
  const defect = Cause.dieOption(cause)
  const debug = process.env.PIPESTATE_DEBUG !== undefined && process.env.PIPESTATE_DEBUG !== ""
  if (Option.isSome(defect)) {
    const value = defect.value
    const detail = debug && value instanceof Error && value.stack !== undefined ? value.stack : messageOf(value)
    return Option.some(
      `internal error: ${detail}${debug ? "" : "\n(set PIPESTATE_DEBUG=1 for details; please report this at the project's issue tracker)"}`
    )
  }
  return Option.some(`error: ${debug ? Cause.pretty(cause) : "the command failed"}`)
}
