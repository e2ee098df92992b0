/**
 * Temporary folders for tests: each test makes its own under `os.tmpdir()` and removes it after.
 * Datasets are copied out of `datasets/` first, since cairn must never build inside the repository.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (holds `package.json`, `bin/`, `dist/`, `datasets/`). */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** A set of temporary folders, removed together by {@link TempDirs.cleanup} (call it in `afterEach`). */
export interface TempDirs {
  /** A new empty folder under `os.tmpdir()`. */
  make(): Promise<string>
  /**
   * A copy of `datasets/<name>` in a new temporary folder, named `<name>` (so a card without a name
   * would default to it). A `.cairn/` store left in the repository copy is not copied.
   */
  copyDataset(name?: string): Promise<string>
  /** Removes every folder made so far. */
  cleanup(): Promise<void>
}

/** Makes a {@link TempDirs}; folder names start with `prefix`. */
export function tempDirs(prefix = 'cairn-test-'): TempDirs {
  const made: string[] = []
  const make = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), prefix))
    made.push(dir)
    return dir
  }
  return {
    make,
    async copyDataset(name = 'tiny-instruct') {
      const from = join(repoRoot, 'datasets', name)
      const to = join(await make(), name)
      await cp(from, to, { recursive: true, filter: (src) => basename(src) !== '.cairn' })
      return to
    },
    async cleanup() {
      await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
    },
  }
}
