/**
 * The errors only the CLI raises, and how any failure is printed: one line (or a few) a user can
 * act on, never a stack trace.
 *
 * @since 0.1.0
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { shellQuote } from "../internal/Shell.js"

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
    return `${what}: use \`pipestate pipeline list\` or \`pipestate pipeline ${shellQuote(this.pipeline)} info|sync|drop|history|restore|schema\` (--help for their options)`
  }
}

/**
 * An argument `pipestate pipeline list` does not take (@effect/cli lets them through there).
 *
 * @since 0.2.0
 */
export class UnknownArgument extends Schema.TaggedError<UnknownArgument>()("UnknownArgument", {
  command: Schema.String,
  argument: Schema.String,
  takes: Schema.String
}) {
  override get message(): string {
    return `${this.command} does not take ${JSON.stringify(this.argument)}; it takes ${this.takes}`
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
    // sync has no dry run: what it would do is printed above the refusal
    const look = this.action === "sync" ? "" : ", or --dry-run to only look"
    return `refusing to ${this.action} without confirmation: stdin is not a terminal. Pass --yes to confirm${look}.`
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
