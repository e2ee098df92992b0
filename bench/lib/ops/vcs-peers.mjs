/**
 * The tools dataset teams use beside ipfs-car: DataLad (`datalad save`, git-annex underneath) and
 * `git lfs` (`git add` + `git commit` with every data file tracked by LFS). Each is its own program,
 * run as whole processes from the child: the repository is made and the files copied in first, before
 * the clock (the dataset folder stays pristine: both tools move or rewrite what they add); only the
 * command that hashes the files and stores them is timed. The child's CPU time includes these
 * processes (child.mjs adds the CPU of the processes it waited for), and its peak RSS is the largest
 * of them (`/usr/bin/time -v` counts waited-for descendants).
 *
 * Git runs with a throw-away HOME and an identity in the environment: nothing of the user's git
 * configuration is read or written.
 */
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'

/** The environment every git, git-annex and DataLad process of the bench gets. */
function gitEnv(home) {
  return {
    ...process.env,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'cairn bench',
    GIT_AUTHOR_EMAIL: 'bench@localhost',
    GIT_COMMITTER_NAME: 'cairn bench',
    GIT_COMMITTER_EMAIL: 'bench@localhost',
    GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z',
    GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z',
  }
}

/** Runs `cmd` to the end (stdin closed); rejects with its output when it fails. */
function run(cmd, args, cwd, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d) => (output = (output + d).slice(-4000)))
    child.stderr.on('data', (d) => (output = (output + d).slice(-4000)))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(output) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${output}`))))
  })
}

/** Untimed set-up run synchronously: the same as {@link run}, for `prepare`. */
function runSync(cmd, args, cwd, env) {
  const r = spawnSync(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.error?.message ?? ''}${r.stderr}`)
  return r.stdout
}

/**
 * Removes a peer's work folder. git-annex leaves its object folders read-only (so that nothing edits
 * an annexed file in place), which a plain recursive remove cannot delete: write access comes back first.
 * DataLad's git-annex helpers may still be writing into it for a moment after `datalad save` returns
 * (ENOTEMPTY under load): the remove is retried.
 */
export function removeWork(work) {
  spawnSync('chmod', ['-R', 'u+w', work], { stdio: ['ignore', 'ignore', 'ignore'] })
  rmSync(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
}

/** Copies the dataset's files (not `.cairn/` nor `cairn.json`) into `dest`. */
function copyData(dir, dest) {
  for (const name of readdirSync(dir)) {
    if (name === '.cairn' || name === 'cairn.json') continue
    cpSync(join(dir, name), join(dest, name), { recursive: true })
  }
}

/** How many files git tracks at HEAD in `repo` (each annexed or LFS file counts once). */
function trackedFiles(repo, env) {
  return runSync('git', ['ls-files'], repo, env)
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('.')).length
}

/**
 * Whether a peer's programs run here (`datalad`, `git-annex`; `git-lfs`): `undefined`, or why not,
 * for the bench's line saying the peer was skipped.
 */
export function peerMissing(peer) {
  const need = peer === 'datalad' ? ['datalad', 'git-annex', 'git'] : ['git-lfs', 'git']
  for (const cmd of need) {
    // git-annex answers `version`, not `--version`
    const r = spawnSync(cmd, [cmd === 'git-annex' ? 'version' : '--version'], { stdio: ['ignore', 'ignore', 'ignore'] })
    if (r.error || r.status !== 0) return `${cmd} is not installed (Debian: apt-get install datalad git-annex git-lfs)`
  }
  return undefined
}

export const vcsPeerOps = {
  /** `datalad save` of the files copied into a fresh `datalad create` dataset. */
  'datalad.save': {
    prepare(p) {
      removeWork(p.work)
      const home = join(p.work, 'home')
      const repo = join(p.work, 'repo')
      mkdirSync(home, { recursive: true })
      const env = gitEnv(home)
      runSync('datalad', ['create', repo], p.work, env)
      copyData(p.dir, repo)
      return { repo, env }
    },
    async run(p, { repo, env }) {
      await run('datalad', ['save', '-m', 'bench'], repo, env)
    },
    after(p, { repo, env }) {
      return { files: trackedFiles(repo, env) }
    },
  },

  /** `git add` + `git commit` of the files copied into a fresh repository that tracks `*.bin` with LFS. */
  'git-lfs.add': {
    prepare(p) {
      removeWork(p.work)
      const home = join(p.work, 'home')
      const repo = join(p.work, 'repo')
      mkdirSync(home, { recursive: true })
      mkdirSync(repo, { recursive: true })
      const env = gitEnv(home)
      runSync('git', ['init', '-q'], repo, env)
      runSync('git', ['lfs', 'install', '--local'], repo, env)
      runSync('git', ['lfs', 'track', '*.bin'], repo, env)
      copyData(p.dir, repo)
      return { repo, env }
    },
    async run(p, { repo, env }) {
      await run('git', ['add', '-A'], repo, env)
      await run('git', ['commit', '-q', '-m', 'bench'], repo, env)
    },
    after(p, { repo, env }) {
      const lfsFiles = runSync('git', ['lfs', 'ls-files'], repo, env).split('\n').filter(Boolean).length
      return { files: trackedFiles(repo, env), lfsFiles }
    },
  },
}
