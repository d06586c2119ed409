/**
 * Writes `archives.json` next to this script. The output depends only on the seed, so running it
 * again reproduces the shipped file byte for byte:
 *
 *     npx tsx examples/chess/data/generate.ts [seed]
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Schema } from "effect"
import { DEFAULT_SEED, generateChessData, renderChessData } from "./dataset.js"

class InvalidSeed extends Schema.TaggedError<InvalidSeed>()("InvalidSeed", { message: Schema.String }) {}

const program = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const arg = process.argv[2]
  const seed = arg === undefined ? DEFAULT_SEED : Number(arg)
  if (!Number.isSafeInteger(seed)) {
    return yield* new InvalidSeed({ message: `Seed must be an integer, got "${arg}". Omit it to use ${DEFAULT_SEED}.` })
  }
  const target = path.join(yield* path.fromFileUrl(new URL(".", import.meta.url)), "archives.json")
  const data = generateChessData(seed)
  yield* fs.writeFileString(target, renderChessData(data))
  const games = data.players.reduce((n, p) => n + p.archives.reduce((m, a) => m + a.games.length, 0), 0)
  yield* Console.log(`Wrote ${target}: ${data.players.length} players, ${games} games (seed ${seed})`)
})

program.pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
