import { mkdir, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { comparePaths } from '../src/manifest.js'
import { scan } from '../src/scan.js'
import { tempDirs } from './helpers/tmp.js'

const dirs = tempDirs('cairn-scan-')
afterEach(() => dirs.cleanup())

async function lay(root: string, paths: readonly string[]): Promise<void> {
  for (const p of paths) {
    await mkdir(dirname(join(root, p)), { recursive: true })
    await writeFile(join(root, p), p)
  }
}

function listed(files: Awaited<ReturnType<typeof scan>>['files']): string[] {
  return Array.from({ length: files.length }, (_, i) => files.path(i))
}

describe('scan', () => {
  it('lists files in canonical path order without sorting the whole list (a folder sorts as its name and /)', async () => {
    // '-' and '.' sort before '/', '0' after it; U+1F600 (a surrogate pair in UTF-16) after U+FF46 in UTF-8
    const paths = ['a-b', 'a.txt', 'a/x', 'a/b/c', 'a0', 'ab/c', 'a/b-', 'a/b.', 'ｆ/1', '😀/1', '😀.txt', 'Z', 'z/z/z']
    const root = await dirs.make()
    await lay(root, paths)
    const { files } = await scan(root)
    expect(listed(files)).toEqual([...paths].sort(comparePaths))
  })

  it('keeps size, stamp and identity per file, and the total', async () => {
    const root = await dirs.make()
    await lay(root, ['b/one', 'a'])
    await writeFile(join(root, 'b/one'), Buffer.alloc(1000))
    const { files } = await scan(root)
    expect(files.totalBytes).toBe(1000 + 1)
    const f = files.at(1)
    const st = await stat(join(root, 'b/one'), { bigint: true })
    expect(f).toMatchObject({ path: 'b/one', abs: join(root, 'b/one'), size: 1000 })
    expect([...files.stamp(1)]).toEqual([st.size, st.mtimeNs, st.ctimeNs, BigInt.asIntN(64, st.ino)])
    expect(files.sameStamp(1, files.stamp(1), 0)).toBe(true)
    expect(files.sameStamp(0, files.stamp(1), 0)).toBe(false)
    expect(f.identity).toEqual({ size: 1000, mtimeNs: st.mtimeNs, ino: st.ino })
    expect(files.size(0)).toBe(1)
  })

  it('gives the canonical order for any set of names (property)', async () => {
    const char = fc.constantFrom('a', 'b', 'Z', '0', '9', '.', '_', '-', 'é', 'ｆ', '😀')
    const segment = fc
      .array(char, { minLength: 1, maxLength: 4 })
      .map((c) => c.join(''))
      .filter((s) => !s.startsWith('.'))
    const path = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'))
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(path, { minLength: 1, maxLength: 12 }), async (paths) => {
        // no path may be a folder of another
        const usable = paths.filter((p) => !paths.some((q) => q !== p && (q.startsWith(p + '/') || p.startsWith(q + '/'))))
        const root = await dirs.make()
        await lay(root, usable)
        const { files } = await scan(root)
        expect(listed(files)).toEqual([...usable].sort(comparePaths))
      }),
      { numRuns: 40 },
    )
  })
})
