/**
 * Every file a comment or a document cites exists in this repository.
 *
 * Comments and documents point readers at other files ("see lambda/rotation/records.ts", a link to
 * docs/deploy.md). A citation of a file that was renamed, deleted or never part of the repository
 * sends the reader nowhere, so this test reads every file git knows about (tracked, or new and not
 * ignored): the comments of TypeScript and JavaScript files (`ts`, `js`, `mjs`, `cjs`; found with the
 * TypeScript parser, so a `//` inside a string or a regular expression is not a comment), and the
 * whole text of Markdown files. It fails naming `file:line`, the cited path and why.
 *
 * What counts as a citation:
 * - a path ending in `.ts`, `.js`, `.mjs`, `.cjs`, `.md` or `.json`: it must exist relative to the
 *   repository root or to the citing file's directory. A bare file name (no directory, such as
 *   roles.ts) may also name a file anywhere in the repository: the README's layout tree lists files
 *   under their directory;
 * - a Markdown link target: it must exist relative to the document's directory, as GitHub resolves it;
 * - any mention of the working papers kept outside the repository (the upper-case DESIGN and STYLE
 *   Markdown files, paths into the seeds and notes directories, the shared working directory): these
 *   are flagged even where a file of that name happens to exist.
 *
 * Not citations: URLs; paths into npm packages (`aws-cdk-lib/aws-iam`) and `node_modules`; build
 * output and the other generated directories of .gitignore (`dist/`, `cdk.out/`, `coverage/`,
 * `.drill/`, `.bench/`); and the few names in {@link NOT_REPOSITORY_FILES}.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import * as ts from 'typescript';

const ROOT = join(__dirname, '..', '..');

/** Extensions of the files whose comments are read. */
const CODE_FILE = /\.(?:ts|js|mjs|cjs)$/;
/** Extensions of the documents read whole. */
const DOCUMENT_FILE = /\.md$/;

/**
 * A path that ends in a file extension a citation uses. It may not start in the middle of a word, a
 * path, a URL or a scoped package name (`@aws-sdk/...`), so only whole paths match.
 */
const PATH_REFERENCE =
  /(?<![\w@$./\\-])((?:\.{1,2}\/)*(?:[A-Za-z0-9_][\w.-]*\/)*[A-Za-z0-9_][\w-]*(?:\.[\w-]+)*\.(?:ts|js|mjs|cjs|md|json))(?![\w/-])/g;

/** A Markdown link or image target: `](target)` or `](target "title")`. */
const MARKDOWN_LINK = /\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;

/** Mentions of working papers that are not part of the repository. */
const OUTSIDE_PAPERS: readonly { readonly pattern: RegExp; readonly what: string }[] = [
  { pattern: /(?<![\w-])(?:DESIGN|STYLE)\.md\b/g, what: 'a working paper outside the repository' },
  {
    pattern: /(?<![\w./-])(?:\.{1,2}\/)*(?:shared\/)?(?:seeds|notes)\/[\w.-]*/g,
    what: 'a seeds/ or notes/ path outside the repository',
  },
  { pattern: /\/work\/shared\b[\w./-]*/g, what: 'a path outside the repository' },
];

/** Directories whose files are generated, never tracked (.gitignore). */
const GENERATED_DIRECTORIES = new Set([
  'dist',
  'cdk.out',
  'coverage',
  'node_modules',
  '.drill',
  '.bench',
]);

/** Names that look like file paths but are not files of this repository, each with why. */
const NOT_REPOSITORY_FILES: readonly {
  readonly ref: string;
  readonly file?: string;
  readonly why: string;
}[] = [
  { ref: 'Node.js', why: 'the runtime, not a file' },
  {
    ref: 'cdk.context.json',
    why: 'written by the CDK at the first synth with lookups; not tracked',
  },
  {
    ref: 'secret.json',
    why: 'the file name inside a Kubernetes secret volume, in examples of FileSource',
  },
  ...['index.js', 'index.mjs'].map((ref) => ({
    ref,
    file: 'scripts/build-packages.mjs',
    why: 'the file names of the package builds that script writes (into dist/)',
  })),
  {
    ref: 'index.js',
    file: 'lib/constructs/converge-function.ts',
    why: 'the file name of a prebuilt function bundle inside the installed @converge/cdk package',
  },
  {
    ref: 'app.js',
    file: 'test/support/offline-project.ts',
    why: 'a program in the TSDoc example, written into a temporary project',
  },
  {
    ref: 'cli/answer.ts',
    file: 'test/e2e/cli-bin.test.ts',
    why: 'a file that test writes into its scratch copy of the CLI',
  },
];

/** One citation that does not lead anywhere. */
export interface CitationProblem {
  readonly file: string;
  readonly line: number;
  readonly ref: string;
  readonly why: string;
}

/** What the checker needs to know about the repository. */
export interface RepositoryView {
  /** Whether a repository-relative path (normalized, no leading `./`) is a file or directory. */
  readonly exists: (path: string) => boolean;
  /** Whether a file with this base name exists anywhere in the repository. */
  readonly hasBaseName: (name: string) => boolean;
  /** Whether `name` is an installed npm package (the first segment of a package path). */
  readonly isPackage: (name: string) => boolean;
}

/**
 * The comments of a JavaScript or TypeScript file, each with its offset in the text. Every token's
 * leading and trailing trivia is read, so comments before a closing brace or at the end of the file
 * count too.
 *
 * @example
 * commentsOf('cli/main.ts', "const u = 'x//y'; // see roles.ts"); // [{ text: '// see roles.ts', offset: 18 }]
 */
export function commentsOf(file: string, text: string): { text: string; offset: number }[] {
  const kind = file.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  const found = new Map<number, string>();
  const add = (ranges: ts.CommentRange[] | undefined) => {
    for (const r of ranges ?? []) found.set(r.pos, text.slice(r.pos, r.end));
  };
  const visit = (node: ts.Node) => {
    add(ts.getLeadingCommentRanges(text, node.getFullStart()));
    add(ts.getTrailingCommentRanges(text, node.end));
    for (const child of node.getChildren(source)) visit(child);
  };
  add(ts.getLeadingCommentRanges(text, 0));
  visit(source);
  return [...found].sort(([a], [b]) => a - b).map(([offset, t]) => ({ text: t, offset }));
}

/**
 * The citations in one file that lead nowhere.
 *
 * @example
 * const problems = checkFile('cli/main.ts', '// see lambda/rotation/records.ts\n', repository);
 * // [] when that file exists; otherwise [{ file: 'cli/main.ts', line: 1, ref: 'lambda/rotation/records.ts', why: '...' }]
 */
export function checkFile(file: string, text: string, repo: RepositoryView): CitationProblem[] {
  const lineOf = lineIndex(text);
  const chunks = CODE_FILE.test(file)
    ? commentsOf(file, text)
    : DOCUMENT_FILE.test(file)
      ? [{ text, offset: 0 }]
      : [];
  const problems: CitationProblem[] = [];
  const dir = posix.dirname(file);
  const offsets = new Map<CitationProblem, number>();
  const report = (offset: number, ref: string, why: string) => {
    const problem = { file, line: lineOf(offset), ref, why };
    offsets.set(problem, offset);
    problems.push(problem);
  };

  for (const chunk of chunks) {
    // URLs are not citations: blank them out, keeping offsets.
    let body = chunk.text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s)>\]"'`]+/gi, blank);
    for (const { pattern, what } of OUTSIDE_PAPERS) {
      for (const m of body.matchAll(pattern)) report(chunk.offset + m.index!, m[0], what);
      body = body.replace(pattern, blank);
    }
    if (DOCUMENT_FILE.test(file)) {
      for (const m of body.matchAll(MARKDOWN_LINK)) {
        const target = m[1].split('#')[0];
        if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        const resolved = posix.normalize(posix.join(dir, decodeURI(target)));
        if (!ignored(resolved, target, file, repo) && !repo.exists(stripSlash(resolved))) {
          report(chunk.offset + m.index!, target, `link target ${resolved} does not exist`);
        }
      }
      // A link target is checked once, as a link.
      body = body.replace(MARKDOWN_LINK, blank);
    }
    for (const m of body.matchAll(PATH_REFERENCE)) {
      const ref = m[1];
      const candidates = [posix.normalize(ref), posix.normalize(posix.join(dir, ref))];
      if (candidates.some((c) => ignored(c, ref, file, repo))) continue;
      if (candidates.some((c) => !c.startsWith('../') && repo.exists(c))) continue;
      if (!ref.includes('/') && repo.hasBaseName(ref)) continue;
      // A link's text that repeats its target was reported with the link.
      if (problems.some((p) => p.ref === ref && p.line === lineOf(chunk.offset + m.index!)))
        continue;
      report(
        chunk.offset + m.index!,
        ref,
        `no such file relative to the repository root or to ${dir === '.' ? 'it' : dir + '/'}`,
      );
    }
  }
  return problems.sort((a, b) => offsets.get(a)! - offsets.get(b)!);
}

/** Whether a cited path is outside what this test checks (generated, a package, a known non-file). */
function ignored(resolved: string, ref: string, file: string, repo: RepositoryView): boolean {
  if (NOT_REPOSITORY_FILES.some((n) => n.ref === ref && (n.file === undefined || n.file === file)))
    return true;
  if (resolved.split('/').some((segment) => GENERATED_DIRECTORIES.has(segment))) return true;
  const written = ref.replace(/^(?:\.\/)+/, '').split('/');
  // `aws-cdk-lib/...`, `pg/lib/client.js`: a path into an npm package, unless it is also a directory here.
  return (
    written.length > 1 &&
    !ref.startsWith('.') &&
    repo.isPackage(written[0]) &&
    !repo.exists(written[0])
  );
}

function stripSlash(path: string): string {
  return path.endsWith('/') ? path.slice(0, -1) : path;
}

function blank(match: string): string {
  return ' '.repeat(match.length);
}

/** Maps an offset to its 1-based line number. */
function lineIndex(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

/** The repository as git sees it: tracked files, and new files that are not ignored. */
function repositoryFiles(): string[] {
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f !== '' && existsSync(join(ROOT, f)));
}

function repositoryView(files: readonly string[]): RepositoryView {
  const paths = new Set<string>();
  const baseNames = new Set<string>();
  for (const f of files) {
    baseNames.add(posix.basename(f));
    for (let p = f; p !== '.'; p = posix.dirname(p)) paths.add(p);
  }
  return {
    exists: (p) => paths.has(p),
    hasBaseName: (n) => baseNames.has(n),
    isPackage: (n) => existsSync(join(ROOT, 'node_modules', n, 'package.json')),
  };
}

function format(p: CitationProblem): string {
  return `${p.file}:${p.line}: "${p.ref}": ${p.why}`;
}

describe('citations of repository files', () => {
  describe('the checker', () => {
    const repo = repositoryView([
      'README.md',
      'docs/deploy.md',
      'eslint.config.mjs',
      'lambda/rotation/roles.ts',
      'lambda/rotation/records.ts',
      'lambda/rotation/gates/decision.ts',
      'lib/constructs/converge-function.ts',
    ]);
    const check = (file: string, text: string) => checkFile(file, text, repo).map(format);

    it('names file, line and path of a comment citing a file that does not exist', () => {
      expect(
        check('lib/x.ts', '/**\n * Built as in lib/constructs/wrapper.ts.\n */\nexport {};\n'),
      ).toEqual([
        'lib/x.ts:2: "lib/constructs/wrapper.ts": no such file relative to the repository root or to lib/',
      ]);
    });

    it('flags the working papers outside the repository, however they are cited', () => {
      expect(
        check(
          'eslint.config.mjs',
          [
            '// Lint gates (STYLE.md 14)',
            '// see ../shared/DESIGN.md section 4',
            '/* from /work/shared/seeds/003.txt and notes/gates.md */',
            'export default [];',
          ].join('\n'),
        ),
      ).toEqual([
        'eslint.config.mjs:1: "STYLE.md": a working paper outside the repository',
        'eslint.config.mjs:2: "DESIGN.md": a working paper outside the repository',
        'eslint.config.mjs:3: "/work/shared/seeds/003.txt": a path outside the repository',
        'eslint.config.mjs:3: "notes/gates.md": a seeds/ or notes/ path outside the repository',
      ]);
    });

    it('resolves a path from the repository root, from the citing directory, or a bare name anywhere', () => {
      const text = [
        '// lambda/rotation/records.ts, ./roles.ts, gates/decision.ts, ../rotation/roles.ts',
        '// and the bare names records.ts and converge-function.ts',
        'export {};',
      ].join('\n');
      expect(check('lambda/rotation/x.ts', text)).toEqual([]);
      expect(check('cli/x.ts', '// see gates/decision.ts\nexport {};\n')).toEqual([
        'cli/x.ts:1: "gates/decision.ts": no such file relative to the repository root or to cli/',
      ]);
    });

    it('reads comments only: paths in strings, templates and regular expressions are code', () => {
      const text = [
        "const a = 'docs/missing.md'; const b = `// lib/missing.ts`;",
        'const c = /\\/\\/ missing\\.md/;',
        '// but this one counts: docs/gone.md',
        'export { a, b, c };',
      ].join('\n');
      expect(check('cli/x.ts', text)).toEqual([
        'cli/x.ts:3: "docs/gone.md": no such file relative to the repository root or to cli/',
      ]);
    });

    it('ignores URLs, npm package paths, generated directories and known non-files', () => {
      const text = [
        '// https://github.com/aws/aws-cdk/blob/main/packages/aws-cdk-lib/aws-iam/lib/grant.ts',
        '// aws-cdk-lib/aws-iam, typescript/lib/typescript.js, @aws-sdk/client-rds/dist-cjs/index.js',
        '// node_modules/pg/lib/client.js, dist/cli/main.js, ../dist/cli/build.json, cdk.out/x.json',
        '// Node.js 22 is recommended',
        'export {};',
      ].join('\n');
      expect(check('cli/x.ts', text)).toEqual([]);
    });

    it('checks Markdown link targets relative to the document, and paths in its text', () => {
      const text = [
        '# Title',
        'See [deploy](deploy.md#alarms), [the top](../README.md), [here](#title) and [AWS](https://aws.amazon.com/x.md).',
        'Also [broken](docs/deploy.md) and `lambda/rotation/missing.ts`.',
        'Once only: [gone.md](gone.md).',
      ].join('\n');
      expect(check('docs/guide.md', text)).toEqual([
        'docs/guide.md:3: "docs/deploy.md": link target docs/docs/deploy.md does not exist',
        'docs/guide.md:3: "lambda/rotation/missing.ts": no such file relative to the repository root or to docs/',
        'docs/guide.md:4: "gone.md": link target docs/gone.md does not exist',
      ]);
    });
  });

  it('every file cited in a comment or document of the repository exists in it', () => {
    const files = repositoryFiles();
    const repo = repositoryView(files);
    const problems = files
      .filter((f) => CODE_FILE.test(f) || DOCUMENT_FILE.test(f))
      .flatMap((f) => checkFile(f, readFileSync(join(ROOT, f), 'utf8'), repo));
    // Expected empty; otherwise each entry is file:line, the cited path and why.
    expect(problems.map(format)).toEqual([]);
  });
});
