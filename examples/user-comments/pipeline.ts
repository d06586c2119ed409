/**
 * The seed's "use your loaded data as the state" example: instead of keeping every comment id in
 * the state, `user_comments` asks the destination for the newest comment id it already holds for
 * the user, and loads only the comments after it.
 */
import { Effect, Schema, Stream } from "effect"
import { PipelineContext, Resource, Source } from "../../src/index.js"

export interface Comment {
  readonly _id: number
  readonly value: string
}

/** what the (simulated) comments API returns for every user */
export const seedComments: ReadonlyArray<Comment> = [
  { _id: 1, value: "A" },
  { _id: 2, value: "B" },
  { _id: 3, value: "C" }
]

const MaxId = Schema.Struct({ max_id: Schema.NullOr(Schema.Number) })

/** the newest comment id of `userId` in the destination, 0 when there is none */
const maxCommentId = (userId: string) =>
  Effect.gen(function* () {
    const pipeline = yield* PipelineContext.PipelineContext
    // on the first run the user_comments table does not exist yet, so do not query at all
    if (pipeline.firstRun) return 0
    const dataset = yield* pipeline.dataset
    // `userId` is bound as a parameter in each destination's own syntax; `max_id` comes back as
    // the same JS number on SQLite and PostgreSQL (null when the user has no comments yet), and
    // the schema gives the row its type
    const [row] = yield* dataset.query({ schema: MaxId })`
      SELECT max(_id) AS max_id FROM ${dataset.table("user_comments")} WHERE user_id = ${userId}`
    return row?.max_id ?? 0
  })

/** the comments of `userId` not loaded yet; `comments` stands in for an API query */
export const userComments = (userId: string, comments: ReadonlyArray<Comment> = seedComments) =>
  Resource.make(
    { name: "user_comments", writeDisposition: "append" },
    Stream.unwrap(
      Effect.gen(function* () {
        const maxId = yield* maxCommentId(userId)
        return Stream.fromIterable(comments.filter((c) => c._id > maxId).map((c) => ({ ...c, user_id: userId })))
      })
    )
  )

export const comments = (userId: string, data?: ReadonlyArray<Comment>) =>
  Source.make({ name: "comments", resources: [userComments(userId, data)] })
