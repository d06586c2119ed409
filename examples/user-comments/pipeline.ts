/**
 * The seed's "use your loaded data as the state" example: instead of keeping every comment id in
 * the state, `user_comments` asks the destination for the newest comment id it already holds for
 * the user, and loads only the comments after it.
 */
import { Effect, Stream } from "effect"
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

/** the newest comment id of `userId` in the destination, 0 when there is none */
const maxCommentId = (userId: string) =>
  Effect.gen(function* () {
    const pipeline = yield* PipelineContext.PipelineContext
    // on the first run the user_comments table does not exist yet, so do not query at all
    if (pipeline.firstRun) return 0
    const dataset = yield* pipeline.dataset
    // the dataset's SQL client (None on a destination that is not SQL); its template binds
    // `userId` as a parameter in the right syntax for SQLite and PostgreSQL alike
    const sql = yield* dataset.sql
    const rows = yield* sql<{ readonly max_id: number | string | null }>`
      SELECT max(_id) AS max_id FROM ${sql.literal(dataset.table("user_comments"))} WHERE user_id = ${userId}`
    // no comments for this user yet: max() is NULL. PostgreSQL returns bigint as text, hence Number
    return Number(rows[0]?.max_id ?? 0)
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
