#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Compiles protocol/mcp/tools.json into a C string, after checking the rules
# that real MCP clients enforce (names, flat schemas, required output schema).
import json, re, sys

src, dst = sys.argv[1], sys.argv[2]
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
compact = json.dumps(doc, separators=(',', ':'), ensure_ascii=False)
raw = compact.encode('utf-8') + b'\0'
out = ['/* Generated from protocol/mcp/tools.json by sidecar/gen-tools.py. */',
       '#include <stddef.h>',
       'extern const char cx_tools_json[];',
       'extern const size_t cx_tools_json_len;',
       '/* A byte array: string literals this long are beyond ISO C\'s minimum. */',
       'const char cx_tools_json[] = {']
for i in range(0, len(raw), 16):
    out.append('    ' + ' '.join('%d,' % b for b in raw[i:i + 16]))
out.append('};')
out.append(f'const size_t cx_tools_json_len = {len(raw) - 1};')
with open(dst, 'w', encoding='utf-8') as f:
    f.write('\n'.join(out) + '\n')
