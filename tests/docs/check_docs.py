#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that the API reference in docs/reference/ covers the public API.

The public API is the union of
  - the vh_* functions the shared library exports (nm -D --defined-only, type T), and
  - the vh_* functions declared or defined static inline in include/libvhost/*.h
    (inline ones have no symbol but are API all the same).

Rules (each broken rule is printed as "FAIL: ..." and makes the exit status 1):
  1. every public function has exactly one Markdown heading whose text is its exact name
     (`## vh_x` or `## \\`vh_x\\``) in docs/reference/*.md, unless listed in
     docs/reference/.pending;
  2. the page holding that heading shows the function's prototype exactly as the header
     declares it (whitespace aside) inside a ```c block, and #includes that header;
  3. every exported function is declared in a public header;
  4. .pending stays honest: a listed name must still be public and must not be documented;
  5. each page has a Synopsis and a Return value section, and docs/README.md links every page
     and every other Markdown file in docs/;
  6. relative links in docs/README.md and docs/reference/*.md point at existing files;
  7. with --cc, every ```c block under an "Example" heading compiles (-fsyntax-only, warnings
     are errors) against include/, so examples keep up with the API.

Functions listed in .pending are reported ("PENDING: ...") but do not fail the check.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys


def strip_comments(text):
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    return re.sub(r'//[^\n]*', '', text)


def strip_preprocessor(text):
    # Drop C++ guards entirely (they hold the extern "C" braces), then every directive
    # including continuation lines.
    text = re.sub(r'#ifdef __cplusplus.*?#endif', '', text, flags=re.S)
    out, cont = [], False
    for line in text.split('\n'):
        if cont or line.lstrip().startswith('#'):
            cont = line.rstrip().endswith('\\')
            continue
        out.append(line)
    return '\n'.join(out)


def norm(proto):
    p = ' '.join(proto.split())
    p = re.sub(r'\(\s+', '(', p)
    p = re.sub(r'\s+\)', ')', p)
    p = re.sub(r'\s*,\s*', ', ', p)
    return p.rstrip(';').strip()


def head_name(stmt):
    """Name of the function a top-level declaration (or definition head) declares, or None."""
    s = stmt.strip()
    if s.startswith(('typedef', '_Static_assert')):
        return None
    paren = s.find('(')
    if paren < 0:
        return None  # a variable, or a struct/enum/union definition
    m = re.search(r'(\w+)\s*$', s[:paren])
    if not m or not m.group(1).startswith('vh_'):
        return None
    return m.group(1)


def declarations(text):
    """Yields (name, prototype) for each top-level function declaration or definition head."""
    depth, cur = 0, []
    for c in text:
        if depth > 0:
            if c == '{':
                depth += 1
            elif c == '}':
                depth -= 1
            continue
        if c not in ';{':
            cur.append(c)
            continue
        stmt = ''.join(cur)
        name = head_name(stmt)
        if name:
            # Before '{' a function body follows (static inline): the head is the prototype.
            yield name, norm(stmt)
        if name or c == ';':
            cur = []  # a struct/enum head stays until its closing ';'
        if c == '{':
            depth = 1


def parse_header(path):
    """Returns {name: prototype} for the functions a header declares or defines inline."""
    with open(path, encoding='utf-8') as f:
        text = strip_preprocessor(strip_comments(f.read()))
    return dict(declarations(text))


def exported(lib):
    out = subprocess.run(['nm', '-D', '--defined-only', lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == 'T':
            name = parts[2].split('@')[0]
            if name.startswith('vh_'):
                names.add(name)
    return names


HEADING_RE = re.compile(r'^(#{1,6})\s+`?(\w+)`?\s*$')
INCLUDE_RE = re.compile(r'#include\s*<(libvhost/[\w.]+)>')
LINK_RE = re.compile(r'\]\(([^)#\s]+)(#[^)]*)?\)')


def code_blocks(text):
    return re.findall(r'^```c\s*\n(.*?)^```', text, flags=re.S | re.M)


def doc_protos(text):
    """{name: [prototype, ...]} of the declarations in a page's ```c blocks (calls inside
    example function bodies are skipped with the bodies)."""
    found = {}
    for block in code_blocks(text):
        body = strip_preprocessor(strip_comments(block))
        for name, proto in declarations(body):
            found.setdefault(name, []).append(proto)
    return found


def anchors(text):
    """The anchors GitHub-style renderers give the headings of a Markdown text."""
    out, seen, in_code = set(), {}, False
    for line in text.splitlines():
        if line.startswith('```'):
            in_code = not in_code
            continue
        m = None if in_code else re.match(r'^#{1,6}\s+(.*?)\s*$', line)
        if not m:
            continue
        slug = re.sub(r'[^\w\- ]', '', m.group(1).strip().lower()).replace(' ', '-')
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f'{slug}-{n}')
    return out


def examples(text):
    """The ```c blocks that sit under a heading called Example(s)."""
    out, section, block, in_code = [], '', None, False
    for line in text.splitlines(keepends=True):
        if line.startswith('```'):
            if in_code:
                if block is not None:
                    out.append(''.join(block))
                block, in_code = None, False
            else:
                in_code = True
                block = [] if line.strip() == '```c' and section in ('example', 'examples') \
                    else None
            continue
        if in_code:
            if block is not None:
                block.append(line)
            continue
        m = re.match(r'^#{1,6}\s+(.*?)\s*$', line)
        if m:
            section = m.group(1).lower()
    return out


EXAMPLE_FLAGS = ['-std=gnu11', '-D_GNU_SOURCE', '-fsyntax-only', '-Wall', '-Wextra', '-Werror',
                 '-Wno-unused-function', '-Wno-unused-parameter', '-Wno-unused-variable',
                 '-Wno-unused-but-set-variable']


def compile_example(cc, incdir, code):
    cmd = cc + EXAMPLE_FLAGS + ['-I', incdir, '-x', 'c', '-']
    p = subprocess.run(cmd, input=code, capture_output=True, text=True)
    return p.returncode, p.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--source-root', default=os.path.join(os.path.dirname(__file__), '..', '..'))
    ap.add_argument('--lib', help='built libvhost.so (its exports are checked too)')
    ap.add_argument('--cc', help='C compiler command to syntax-check the examples with')
    args = ap.parse_args()

    root = os.path.abspath(args.source_root)
    incdir = os.path.join(root, 'include', 'libvhost')
    refdir = os.path.join(root, 'docs', 'reference')
    fails, pending_report = [], []

    # Public API from the headers.
    protos, header_of = {}, {}
    for h in sorted(os.listdir(incdir)):
        if not h.endswith('.h'):
            continue
        for name, proto in parse_header(os.path.join(incdir, h)).items():
            protos[name] = proto
            header_of[name] = 'libvhost/' + h
    public = set(protos)

    if args.lib:
        exp = exported(args.lib)
        for name in sorted(exp - public):
            fails.append(f'{name}: exported by {os.path.basename(args.lib)} but declared in '
                         'no public header')
        public |= exp
        print(f'# {len(exp)} exported vh_* functions, {len(protos)} declared in headers')
    else:
        print(f'# {len(protos)} vh_* functions declared in headers (no library given)')

    # The allow-list of functions whose headers are still changing.
    pending = {}
    pend_path = os.path.join(refdir, '.pending')
    if os.path.exists(pend_path):
        with open(pend_path, encoding='utf-8') as f:
            for n, line in enumerate(f, 1):
                line = line.split('#', 1)[0].strip()
                if line:
                    pending[line] = n

    # Headings and prototypes in the reference pages.
    pages = sorted(p for p in os.listdir(refdir) if p.endswith('.md')) \
        if os.path.isdir(refdir) else []
    where = {}
    n_examples = 0
    for page in pages:
        with open(os.path.join(refdir, page), encoding='utf-8') as f:
            text = f.read()
        in_code = False
        sections = set()
        names_here = []
        for line in text.splitlines():
            if line.startswith('```'):
                in_code = not in_code
                continue
            if in_code:
                continue
            m = HEADING_RE.match(line)
            if m and m.group(2).startswith('vh_'):
                where.setdefault(m.group(2), []).append(page)
                names_here.append(m.group(2))
            hm = re.match(r'^#{1,6}\s+(.*?)\s*$', line)
            if hm:
                sections.add(hm.group(1).lower())
        if 'synopsis' not in sections:
            fails.append(f'docs/reference/{page}: no "Synopsis" section')
        if 'return value' not in sections:
            fails.append(f'docs/reference/{page}: no "Return value" section')
        dp = doc_protos(text)
        includes = set(INCLUDE_RE.findall(text))
        for name in names_here:
            if name not in protos:
                if name in public:
                    continue  # reported as undeclared above
                fails.append(f'docs/reference/{page}: heading {name} names no public function')
                continue
            if protos[name] not in dp.get(name, []):
                got = dp.get(name)
                fails.append(f'docs/reference/{page}: {name}: synopsis does not match '
                             f'{header_of[name]}\n    header: {protos[name]}\n'
                             f'    page:   {got[0] if got else "(no prototype in a ```c block)"}')
            if header_of[name] not in includes:
                fails.append(f'docs/reference/{page}: {name}: synopsis lacks '
                             f'#include <{header_of[name]}>')

        if args.cc:
            for k, code in enumerate(examples(text), 1):
                rc, err = compile_example(shlex.split(args.cc),
                                          os.path.join(root, 'include'), code)
                n_examples += 1
                if rc:
                    fails.append(f'docs/reference/{page}: example {k} does not compile:\n' +
                                 '\n'.join('    ' + l for l in err.strip().splitlines()[:12]))

    for name, pl in sorted(where.items()):
        if len(pl) > 1:
            fails.append(f'{name}: documented more than once ({", ".join(pl)})')

    documented = 0
    for name in sorted(public):
        if name in where:
            documented += 1
            if name in pending:
                fails.append(f'{name}: documented but still listed in docs/reference/.pending '
                             f'(line {pending[name]}); remove it there')
        elif name in pending:
            pending_report.append(f'{name} ({header_of.get(name, "no header")})')
        else:
            hint = f' (declared in {header_of[name]})' if name in header_of else ''
            fails.append(f'{name}: no reference entry in docs/reference/{hint}')
    for name, n in sorted(pending.items()):
        if name not in public:
            fails.append(f'docs/reference/.pending:{n}: {name} is not a public function '
                         '(stale entry)')

    # The index and the links.
    readme = os.path.join(root, 'docs', 'README.md')
    link_files = [readme] + [os.path.join(refdir, p) for p in pages]
    if not os.path.exists(readme):
        fails.append('docs/README.md is missing')
        link_files = link_files[1:]
    else:
        with open(readme, encoding='utf-8') as f:
            rtext = f.read()
        linked = {os.path.normpath(os.path.join(os.path.dirname(readme), m[0]))
                  for m in LINK_RE.findall(rtext)}
        for page in pages:
            if os.path.normpath(os.path.join(refdir, page)) not in linked:
                fails.append(f'docs/README.md does not link reference/{page}')
        docdir = os.path.dirname(readme)
        for doc in sorted(os.listdir(docdir)):
            if doc.endswith('.md') and doc != 'README.md' and \
                    os.path.normpath(os.path.join(docdir, doc)) not in linked:
                fails.append(f'docs/README.md does not link {doc}')
    for path in link_files:
        with open(path, encoding='utf-8') as f:
            text = f.read()
        for target, frag in LINK_RE.findall(text):
            if re.match(r'^[a-z]+:', target):
                continue
            dest = os.path.join(os.path.dirname(path), target)
            if not os.path.exists(dest):
                fails.append(f'{os.path.relpath(path, root)}: broken link {target}')
            elif frag and dest.endswith('.md'):
                with open(dest, encoding='utf-8') as f:
                    if frag[1:] not in anchors(f.read()):
                        fails.append(f'{os.path.relpath(path, root)}: link {target}{frag}: '
                                     'no such heading')

    for p in pending_report:
        print(f'PENDING: {p}')
    for f_ in fails:
        print(f'FAIL: {f_}')
    print(f'# {documented} of {len(public)} public functions documented, '
          f'{len(pending_report)} pending, {n_examples} examples compiled, '
          f'{len(fails)} problem(s)')
    return 1 if fails else 0


if __name__ == '__main__':
    sys.exit(main())
