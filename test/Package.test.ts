/**
 * The package as a user gets it: `npm pack` on a copy of the sources without dist/ (so `prepack`
 * must build it), the tarball installed with `npm ci` into a fresh project that already depends on
 * effect@3, the README's tour type-checked there with strict settings, and run twice (the second
 * run loads nothing: the state works from the installed package).
 *
 * Offline and without native builds: the fresh project's lockfile is made from this repository's
 * (same versions and integrity hashes, so npm takes every tarball from its cache), the install runs
 * with `--offline --ignore-scripts`, and better-sqlite3 gets this repository's already-built binary.
 */
import { execFile } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const root = NodePath.resolve(import.meta.dirname, "..")

interface LockEntry {
  readonly version?: string
  readonly resolved?: string
  readonly integrity?: string
  readonly dependencies?: Record<string, string>
  readonly optionalDependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
  readonly peerDependenciesMeta?: Record<string, { readonly optional?: boolean }>
  readonly [key: string]: unknown
}

interface PackageJson {
  readonly name: string
  readonly version: string
  readonly dependencies: Record<string, string>
  readonly peerDependencies: Record<string, string>
  readonly [key: string]: unknown
}

const readJson = <A>(file: string): A => JSON.parse(NodeFs.readFileSync(file, "utf8")) as A

/** runs a command; fails with its output when it exits non-zero */
const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env?: Record<string, string> }
) =>
  new Promise<string>((resolve, reject) =>
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        env: { ...process.env, npm_config_update_notifier: "false", ...options.env },
        encoding: "utf8",
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024
      },
      (error, stdout, stderr) =>
        error === null
          ? resolve(stdout)
          : reject(new Error(`${command} ${args.join(" ")} failed (${String(error.code)}):\n${stdout}\n${stderr}`))
    )
  )

/**
 * A lockfile for a project that depends on `effect` and the tarball: every package the tarball
 * needs (dependencies, peer dependencies, theirs in turn), as this repository's lockfile pins them.
 */
const lockfileFor = (tarball: string, packed: PackageJson, effectVersion: string) => {
  const ours = readJson<{ packages: Record<string, LockEntry> }>(NodePath.join(root, "package-lock.json")).packages
  const packages: Record<string, LockEntry> = {}
  /** where `name` resolves from the package installed at `from`, Node's way (nearest node_modules first) */
  const resolve = (from: string, name: string): string | undefined => {
    let dir = from
    for (;;) {
      const candidate = `${dir === "" ? "" : `${dir}/`}node_modules/${name}`
      if (ours[candidate] !== undefined) return candidate
      if (dir === "") return undefined
      const at = dir.lastIndexOf("/node_modules/")
      dir = at < 0 ? "" : dir.slice(0, at)
    }
  }
  const visit = (from: string, needs: Record<string, string>, optional: ReadonlySet<string>) => {
    for (const name of Object.keys(needs)) {
      const at = resolve(from, name)
      if (at === undefined) {
        if (optional.has(name)) continue
        throw new Error(`${name} (needed by ${from || "the tarball"}) is not in package-lock.json`)
      }
      if (packages[at] !== undefined) continue
      const { dev: _dev, peer: _peer, devOptional: _devOptional, ...entry } = ours[at] as LockEntry
      packages[at] = entry
      const optionalPeers = new Set(
        Object.entries(entry.peerDependenciesMeta ?? {})
          .filter(([, meta]) => meta.optional === true)
          .map(([peer]) => peer)
      )
      visit(
        at,
        {
          ...entry.dependencies,
          ...entry.optionalDependencies,
          ...Object.fromEntries(Object.entries(entry.peerDependencies ?? {}).filter(([p]) => !optionalPeers.has(p)))
        },
        new Set([...Object.keys(entry.optionalDependencies ?? {}), ...optionalPeers])
      )
    }
  }
  visit("", { effect: effectVersion, ...packed.dependencies, ...packed.peerDependencies }, new Set())
  const tarballRef = `file:${tarball}`
  return {
    name: "tour",
    lockfileVersion: 3,
    requires: true,
    packages: {
      "": { name: "tour", dependencies: { effect: effectVersion, [packed.name]: tarballRef } },
      [`node_modules/${packed.name}`]: {
        version: packed.version,
        resolved: tarballRef,
        license: packed.license,
        dependencies: packed.dependencies,
        peerDependencies: packed.peerDependencies,
        bin: packed.bin,
        engines: packed.engines
      },
      ...packages
    }
  }
}

/** the README's tour (its first TypeScript block), importing the chess client it leaves out */
const tourFromReadme = (packageName: string) => {
  const readme = NodeFs.readFileSync(NodePath.join(root, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf("## A tour"))
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1]
  if (block === undefined) throw new Error("README.md has no TypeScript block in its tour")
  expect(block).toContain(`from "${packageName}"`)
  return [
    `import { baseUrl, fetchGames, listArchives } from "./chess-client.js"`,
    block,
    `console.log("tour:", JSON.stringify(summary.tables))`,
    ""
  ].join("\n")
}

/** what the tour leaves to examples/chess/client.ts: a chess API, here two archives served from memory */
const CHESS_CLIENT = `import { Effect } from "effect"

export const baseUrl = "https://chess.example"

export interface Game {
  readonly url: string
  readonly white: string
  readonly black: string
}

export const listArchives = (base: string, player: string): Effect.Effect<ReadonlyArray<string>> =>
  Effect.succeed([\`\${base}/pub/player/\${player}/games/2024/01\`, \`\${base}/pub/player/\${player}/games/2024/02\`])

export const fetchGames = (archive: string): Effect.Effect<ReadonlyArray<Game>> =>
  Effect.succeed([1, 2, 3].map((n) => ({ url: \`\${archive}/\${n}\`, white: "magnuscarlsen", black: \`player\${n}\` })))
`

/**
 * The user's compiler settings: strict, as Effect's own guide sets them (skipLibCheck: the
 * @effect/platform declarations need the DOM library and @types/ws, which a Node project lacks)
 */
const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2022"],
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    skipLibCheck: true,
    typeRoots: [NodePath.join(root, "node_modules", "@types")],
    types: ["node"],
    outDir: "out"
  },
  include: ["*.ts"]
}

describe("the packed package", () => {
  let tmp = ""
  beforeAll(() => {
    tmp = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "pipestate-package-"))
  })
  afterAll(() => {
    if (tmp !== "") NodeFs.rmSync(tmp, { recursive: true, force: true })
  })

  it("installs next to effect@3, and the README's tour type-checks strictly and runs", async () => {
    // a copy of the sources without dist/: `npm pack` must build it (prepack)
    const source = NodePath.join(tmp, "source")
    NodeFs.mkdirSync(source)
    for (const entry of ["package.json", "README.md", "LICENSE", "tsconfig.json", "tsconfig.build.json", "src"]) {
      NodeFs.cpSync(NodePath.join(root, entry), NodePath.join(source, entry), { recursive: true })
    }
    NodeFs.symlinkSync(NodePath.join(root, "node_modules"), NodePath.join(source, "node_modules"), "dir")
    const packOut = await run("npm", ["pack", "--json", "--pack-destination", tmp], { cwd: source })
    const [packed] = JSON.parse(packOut.slice(packOut.indexOf("["))) as Array<{
      readonly filename: string
      readonly files: ReadonlyArray<{ readonly path: string }>
    }>
    if (packed === undefined) throw new Error(`npm pack printed no package:\n${packOut}`)
    const files = packed.files.map((f) => f.path)
    for (const file of ["LICENSE", "README.md", "dist/index.js", "dist/index.d.ts", "dist/index.d.ts.map"]) {
      expect(files).toContain(file)
    }
    expect(files).toContain("dist/bin/pipestate.js")
    expect(files.filter((f) => f.startsWith("test/"))).toEqual([])

    const manifest = readJson<PackageJson>(NodePath.join(source, "package.json"))
    expect(Object.keys(manifest.peerDependencies)).toContain("effect")
    expect(Object.keys(manifest.dependencies)).not.toContain("effect")

    // a user's project that already depends on effect@3 adds the package
    const project = NodePath.join(tmp, "project")
    NodeFs.mkdirSync(project)
    const effectVersion = readJson<PackageJson>(NodePath.join(root, "node_modules", "effect", "package.json")).version
    const tarball = NodePath.join(tmp, packed.filename)
    NodeFs.writeFileSync(
      NodePath.join(project, "package.json"),
      JSON.stringify({
        name: "tour",
        private: true,
        type: "module",
        dependencies: { effect: effectVersion, [manifest.name]: `file:${tarball}` }
      })
    )
    NodeFs.writeFileSync(
      NodePath.join(project, "package-lock.json"),
      JSON.stringify(lockfileFor(tarball, manifest, effectVersion), null, 2)
    )
    await run("npm", ["ci", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: project })
    // every dependency and peer dependency is met, and there is one effect: the project's
    await run("npm", ["ls", "--all", "--offline"], { cwd: project })
    expect(NodeFs.existsSync(NodePath.join(project, "node_modules", manifest.name, "node_modules", "effect"))).toBe(
      false
    )
    // the native module this repository already built, instead of a rebuild
    const binary = ["node_modules", "better-sqlite3", "build", "Release", "better_sqlite3.node"]
    NodeFs.mkdirSync(NodePath.dirname(NodePath.join(project, ...binary)), { recursive: true })
    NodeFs.copyFileSync(NodePath.join(root, ...binary), NodePath.join(project, ...binary))

    NodeFs.writeFileSync(NodePath.join(project, "chess-client.ts"), CHESS_CLIENT)
    NodeFs.writeFileSync(NodePath.join(project, "tour.ts"), tourFromReadme(manifest.name))
    NodeFs.writeFileSync(NodePath.join(project, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2))
    await run(process.execPath, [NodePath.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "."], {
      cwd: project
    })

    const env = { PIPESTATE_PIPELINES_DIR: NodePath.join(tmp, "pipelines") }
    const first = await run(process.execPath, ["out/tour.js"], { cwd: project, env })
    expect(first).toContain(`tour: {"players_games":6}`)
    const second = await run(process.execPath, ["out/tour.js"], { cwd: project, env })
    expect(second).toMatch(/tour: \{("players_games":0)?\}/)

    // the command the package installs
    const help = await run(NodePath.join(project, "node_modules", ".bin", "pipestate"), ["--help"], { cwd: project })
    expect(help).toContain("pipestate")
  }, 600_000)
})
