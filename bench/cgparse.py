#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reads a callgrind output file (one dump) and reports, for named functions, how often they
were called and their inclusive instruction count (summed over every call site, recursive
calls excluded), plus the dump's total.

    cgparse.py FILE [FUNC ...]        prints "total=N" and "FUNC calls=N incl=N" lines
"""
import re
import sys

_NAME = re.compile(r'^\((\d+)\)(?: (.*))?$')


def _name(table, spec):
    """Resolves callgrind name compression: "(id) name" defines, "(id)" refers."""
    m = _NAME.match(spec)
    if not m:
        return spec
    if m.group(2) is not None:
        table[m.group(1)] = m.group(2)
        return m.group(2)
    return table.get(m.group(1), spec)


def parse(path):
    """Returns (total Ir, {function: [calls, inclusive Ir, self Ir]})."""
    fns = {}
    cur_fn = None
    cfn = None
    pending_calls = None
    total = None
    summed = 0
    npos = 1
    names = {}
    with open(path, encoding='utf-8', errors='replace') as f:
        for line in f:
            line = line.rstrip('\n')
            if not line or line[0] == '#':
                continue
            c0 = line[0]
            if c0.isdigit() or c0 in '+-*':
                parts = line.split()
                cost = int(parts[npos]) if len(parts) > npos else 0
                if pending_calls is not None:
                    if cfn is not None and cfn != cur_fn:
                        e = fns.setdefault(cfn, [0, 0, 0])
                        e[0] += pending_calls
                        e[1] += cost
                    pending_calls = None
                else:
                    summed += cost
                    fns.setdefault(cur_fn, [0, 0, 0])[2] += cost
                continue
            key, _, val = line.partition('=')
            if key == 'fn':
                cur_fn = _name(names, val)
            elif key == 'cfn':
                cfn = _name(names, val)
            elif key == 'calls':
                pending_calls = int(val.split()[0])
            elif key in ('ob', 'fl', 'fi', 'fe', 'cob', 'cfi', 'cfl'):
                pass
            elif line.startswith('summary:') or line.startswith('totals:'):
                total = int(line.split(':', 1)[1].split()[0])
            elif line.startswith('positions:'):
                npos = len(line.split(':', 1)[1].split())
    return (total if total is not None else summed), fns


def lookup(fns, name):
    """Calls and inclusive Ir of a function by exact name (0, 0 if it never ran)."""
    e = fns.get(name)
    return (e[0], e[1]) if e else (0, 0)


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 1
    total, fns = parse(argv[1])
    print('total=%d' % total)
    for name in argv[2:]:
        calls, incl = lookup(fns, name)
        own = fns[name][2] if name in fns else 0
        print('%s calls=%d incl=%d self=%d' % (name, calls, incl, own))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
