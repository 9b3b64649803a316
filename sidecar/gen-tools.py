#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Compiles protocol/mcp/tools.json, the one source of the MCP tools, into the
# sidecar (Redis generates its command table from JSON the same way):
#
#   tools_json.c   the document itself (served by tools/list and used to
#                  validate arguments) and the tool table: for each tool its
#                  name, handler cx_tools_run_<name>, read-only flag, and for
#                  each top-level argument its default and limits
#   tools_table.h  the handlers' prototypes and one macro per default and
#                  limit, CX_TOOL_<TOOL>_<ARG>_{DEFAULT,MINIMUM,MAXIMUM,
#                  MAX_LENGTH,MAX_ITEMS}, so that C code names the contract's
#                  numbers instead of repeating them
#
# It first checks the rules that real MCP clients enforce (names, flat
# schemas, a required output schema).
import json, re, sys

src, dst_c, dst_h = sys.argv[1], sys.argv[2], sys.argv[3]
with open(src, encoding='utf-8') as f:
    text = f.read()
doc = json.loads(text)
names = set()
for t in doc['tools']:
    n = t['name']
    if not re.fullmatch(r'[a-z0-9_]{1,30}', n):
        sys.exit(f'{src}: tool name {n!r} breaks ^[a-z0-9_]{{1,30}}$')
    if n in names:
        sys.exit(f'{src}: duplicate tool {n!r}')
    names.add(n)
    for key in ('title', 'description', 'inputSchema', 'outputSchema', 'annotations'):
        if key not in t:
            sys.exit(f'{src}: tool {n!r} lacks {key}')
    for which in ('inputSchema', 'outputSchema'):
        s = t[which]
        if s.get('type') != 'object':
            sys.exit(f'{src}: {n}.{which} must be an object schema')
        for bad in ('oneOf', 'anyOf', 'allOf', '$ref', '$defs', '$schema'):
            if bad in s or bad in json.dumps(s):
                sys.exit(f'{src}: {n}.{which} uses {bad}, which clients reject')
    if not isinstance(t['annotations'].get('readOnlyHint'), bool):
        sys.exit(f'{src}: tool {n!r} must say annotations.readOnlyHint (true or false)')


def c_string(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def macro(*parts):
    return 'CX_TOOL_' + '_'.join(re.sub(r'[^A-Za-z0-9]', '_', p).upper() for p in parts)


compact = json.dumps(doc, separators=(',', ':'), ensure_ascii=False)
raw = compact.encode('utf-8') + b'\0'
c = ['/* Generated from protocol/mcp/tools.json by sidecar/gen-tools.py. */',
     '#include "tool-table.h"',
     '#include "tools_table.h"',
     '',
     '#include <limits.h>',
     '#include <stddef.h>',
     '',
     '/* A byte array: string literals this long are beyond ISO C\'s minimum. */',
     'const char cx_tools_json[] = {']
for i in range(0, len(raw), 16):
    # bytes past 127 (UTF-8) as character constants: fine whether char is signed or not
    c.append('    ' + ' '.join(("'\\x%02x'," % b) if b > 127 else ('%d,' % b)
                               for b in raw[i:i + 16]))
c.append('};')
c.append(f'const size_t cx_tools_json_len = {len(raw) - 1};')
c.append('')

h = ['/* Generated from protocol/mcp/tools.json by sidecar/gen-tools.py. */',
     '#pragma once',
     '',
     '#include "tool-table.h"',
     '',
     'extern const char cx_tools_json[];',
     'extern const size_t cx_tools_json_len;',
     '']

rows = []
for t in doc['tools']:
    n = t['name']
    h.append(f'int cx_tools_run_{n}(const cx_tool_def *def, const json_t *args, '
             f'const cx_tool_env *env, json_t **out);')
    args = []
    for an, a in t['inputSchema'].get('properties', {}).items():
        d = a.get('default')
        dint, dstr = '0', 'NULL'
        if d is None:
            pass
        elif isinstance(d, bool):
            dint = '1' if d else '0'
            h.append(f'#define {macro(n, an, "default")} {"true" if d else "false"}')
        elif isinstance(d, int):
            dint = str(d)
            h.append(f'#define {macro(n, an, "default")} {d}')
        elif isinstance(d, str):
            dstr = c_string(d)
            h.append(f'#define {macro(n, an, "default")} {dstr}')
        else:
            sys.exit(f'{src}: {n}.{an}: unsupported default {d!r}')
        lim = {}
        for key, suffix in (('minimum', 'minimum'), ('maximum', 'maximum'),
                            ('maxLength', 'max_length'), ('maxItems', 'max_items')):
            if key in a:
                lim[key] = a[key]
                h.append(f'#define {macro(n, an, suffix)} {a[key]}')
        # the string limits of a batch's elements, for C to check too
        for ipn, ip in a.get('items', {}).get('properties', {}).items():
            if 'maxLength' in ip:
                h.append(f'#define {macro(n, an, ipn, "max_length")} {ip["maxLength"]}')
        args.append('{%s, %s, %sLL, %s, %s, %s, %s, %s}' % (
            c_string(an), 'true' if d is not None else 'false', dint, dstr,
            f'{lim["minimum"]}LL' if 'minimum' in lim else 'LLONG_MIN',
            f'{lim["maximum"]}LL' if 'maximum' in lim else 'LLONG_MAX',
            f'{lim["maxLength"]}LL' if 'maxLength' in lim else '-1',
            f'{lim["maxItems"]}LL' if 'maxItems' in lim else '-1'))
    if args:
        c.append(f'static const cx_tool_arg args_{n}[] = {{')
        for a in args:
            c.append(f'    {a},')
        c.append('};')
        rows.append((n, f'args_{n}', len(args), t['annotations']['readOnlyHint']))
    else:
        rows.append((n, 'NULL', 0, t['annotations']['readOnlyHint']))
    h.append('')

c.append('')
c.append('const cx_tool_def cx_tool_table[] = {')
for n, arr, cnt, ro in rows:
    c.append(f'    {{{c_string(n)}, cx_tools_run_{n}, {"true" if ro else "false"}, {arr}, {cnt}}},')
c.append('};')
c.append(f'const size_t cx_tool_table_len = {len(rows)};')

with open(dst_c, 'w', encoding='utf-8') as f:
    f.write('\n'.join(c) + '\n')
with open(dst_h, 'w', encoding='utf-8') as f:
    f.write('\n'.join(h) + '\n')
