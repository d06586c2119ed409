/**
 * The seed's chess example: `players_games` keeps the list of archives already loaded in its
 * resource state and skips them on the next run.
 */
import { Effect, Schema, Stream } from "effect"
import { Resource, ResourceState, Source } from "../../src/index.js"
import { fetchGames, listArchives } from "./client.js"

/** the archives already loaded, private to `players_games` */
export const CheckedArchives = ResourceState.key("archives", Schema.Array(Schema.String), () => [])

// the demo's API listens on an ephemeral port, so an archive is remembered by its path, which
// stays the same from one run (and one machine) to the next
const archiveKey = (url: string): string => new URL(url).pathname

export const playersGames = (baseUrl: string, players: ReadonlyArray<string>) =>
  Resource.make(
    { name: "players_games", writeDisposition: "append" },
    Stream.unwrap(
      Effect.gen(function* () {
        const checked = yield* CheckedArchives.get
        const archives = (yield* Effect.forEach(players, (player) => listArchives(baseUrl, player))).flat()
        const todo = archives.filter((url) => !checked.includes(archiveKey(url)))
        yield* Effect.logDebug(`skipping ${archives.length - todo.length} archives loaded before`)
        return Stream.fromIterable(todo).pipe(
          Stream.mapEffect((url) =>
            fetchGames(url).pipe(Effect.tap(() => CheckedArchives.update((list) => [...list, archiveKey(url)])))
          ),
          Stream.flattenIterables
        )
      })
    )
  )

export const chess = (baseUrl: string, players: ReadonlyArray<string>) =>
  Source.make({ name: "chess", resources: [playersGames(baseUrl, players)] })
