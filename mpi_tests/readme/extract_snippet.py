#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a fenced code block of a Markdown file to a file, so tests build what the docs show.

    extract_snippet.py DOC HEADING LANG INDEX OUT

takes the INDEX-th (0-based) ```LANG block in the section whose heading text is HEADING (any
level; the section ends at the next heading of the same or a higher level). Fails, naming what it
looked for, if there is no such block: a renamed heading must not make the test pass vacuously.
"""
import re
import sys


def main():
    doc, heading, lang, index, out = sys.argv[1:6]
    lines = open(doc, encoding="utf-8").read().split("\n")
    level = None
    blocks = []
    block = None
    for line in lines:
        if block is not None:
            if line.strip() == "```":
                blocks.append("\n".join(block) + "\n")
                block = None
            else:
                block.append(line)
            continue
        m = re.match(r"^(#+)\s+(.*?)\s*$", line)
        if m:
            if level is None and m.group(2) == heading:
                level = len(m.group(1))
            elif level is not None and len(m.group(1)) <= level:
                break
            continue
        if level is not None and line.strip() == "```" + lang:
            block = []
    wanted = int(index)
    if level is None or wanted >= len(blocks):
        sys.exit(f"{doc}: no ```{lang} block number {wanted} under heading '{heading}' "
                 f"(found {len(blocks)} there)")
    with open(out, "w", encoding="utf-8") as f:
        f.write(blocks[wanted])


if __name__ == "__main__":
    main()
