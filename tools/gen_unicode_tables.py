#!/usr/bin/env python3
"""Generates src/models/unicode_tables.c: the Unicode data the CLIP tokenizer
(src/models/tokenizer.c) needs to reproduce transformers 4.26.1's slow
CLIPTokenizer without ftfy (BERT BasicTokenizer path), exactly.

Every property is taken from the very functions the reference calls, so the
tables are right by construction for the Python in the tools venv:
  - transformers' _is_control / _is_whitespace / _is_punctuation and
    BasicTokenizer._is_chinese_char (Python's unicodedata, Unicode 14.0 on 3.11);
  - str.isspace (whitespace_tokenize's strip/split, merges.txt's split);
  - str.lower, including CPython's Final_Sigma rule, whose Cased and
    Case_Ignorable properties are measured through str.lower itself;
  - unicodedata.normalize("NFD") (full canonical decompositions + combining
    classes for canonical ordering) and category "Mn" (accent stripping);
  - the `regex` module's [\\p{L}], [\\p{N}], \\s and [^\\s\\p{L}\\p{N}] with
    re.IGNORECASE, as in CLIPTokenizer.pat (regex has its own Unicode tables).

Run: .venv-tools/bin/python tools/gen_unicode_tables.py [out.c]
"""
import sys
import unicodedata

import regex
from transformers.models.clip.tokenization_clip import BasicTokenizer
from transformers.tokenization_utils import _is_control, _is_punctuation, _is_whitespace

MAXCP = 0x110000
SBASE, SCOUNT = 0xAC00, 11172

# Property bits; keep in sync with src/models/unicode.h.
UC_DROP = 1 << 0      # removed by BasicTokenizer._clean_text (NUL, U+FFFD, category C* but \t\n\r)
UC_BWS = 1 << 1       # _is_whitespace: becomes " " in _clean_text
UC_PUNCT = 1 << 2     # _is_punctuation: split off as its own word
UC_MN = 1 << 3        # category Mn: removed by _run_strip_accents
UC_PYSPACE = 1 << 4   # str.isspace: separator of str.split()/strip()
UC_CJK = 1 << 5       # _is_chinese_char: surrounded by spaces
UC_RE_L = 1 << 6      # regex [\p{L}] (IGNORECASE)
UC_RE_N = 1 << 7      # regex [\p{N}] (IGNORECASE)
UC_RE_S = 1 << 8      # regex \s (IGNORECASE)
UC_RE_O = 1 << 9      # regex [^\s\p{L}\p{N}] (IGNORECASE)
UC_CASE_IGN = 1 << 10  # Case_Ignorable as CPython's lower() sees it
UC_CASED = 1 << 11    # Cased and not Case_Ignorable (only those matter for Final_Sigma)


def props_of(cp, pats, basic):
    ch = chr(cp)
    p = 0
    if cp == 0 or cp == 0xFFFD or _is_control(ch):
        p |= UC_DROP
    if _is_whitespace(ch):
        p |= UC_BWS
    if _is_punctuation(ch):
        p |= UC_PUNCT
    if unicodedata.category(ch) == "Mn":
        p |= UC_MN
    if ch.isspace():
        p |= UC_PYSPACE
    if basic._is_chinese_char(cp):
        p |= UC_CJK
    pl, pn, ps, po = pats
    if pl.fullmatch(ch):
        p |= UC_RE_L
    if pn.fullmatch(ch):
        p |= UC_RE_N
    if ps.fullmatch(ch):
        p |= UC_RE_S
    if po.fullmatch(ch):
        p |= UC_RE_O
    # Final_Sigma probes: "A" is cased, " " is neither cased nor ignorable.
    # final("A" c "Σ") = ign(c) or cased(c); final(" " c "Σ") = !ign(c) and cased(c).
    t1 = ("A" + ch + "\u03a3").lower()[-1] == "\u03c2"
    t2 = (" " + ch + "\u03a3").lower()[-1] == "\u03c2"
    if t1 and not t2:
        p |= UC_CASE_IGN
    if t2:
        p |= UC_CASED
    return p


def lower_runs():
    """(start, end, stride, delta) runs for single-code-point lowercasing, and
    the multi-code-point mappings separately."""
    single, multi = [], []
    for cp in range(MAXCP):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        lo = chr(cp).lower()
        if lo == chr(cp):
            continue
        if len(lo) == 1:
            single.append((cp, ord(lo) - cp))
        else:
            multi.append((cp, [ord(c) for c in lo]))
    runs = []
    i = 0
    while i < len(single):
        cp, d = single[i]
        # Try stride 1 and 2, take the longer run.
        best = (cp, cp, 1, d, 1)
        for stride in (1, 2):
            j, n = i, 1
            while j + 1 < len(single) and single[j + 1] == (single[j][0] + stride, d):
                j += 1
                n += 1
            if n > best[4]:
                best = (cp, single[j][0], stride, d, n)
        runs.append(best[:4])
        i += best[4]
    return runs, multi


def fmt_list(items, per_line, indent="    "):
    lines = []
    for k in range(0, len(items), per_line):
        lines.append(indent + " ".join(items[k:k + per_line]))
    return "\n".join(lines)


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "src/models/unicode_tables.c"
    I = regex.IGNORECASE
    pats = (regex.compile(r"[\p{L}]", I), regex.compile(r"[\p{N}]", I),
            regex.compile(r"\s", I), regex.compile(r"[^\s\p{L}\p{N}]", I))
    basic = BasicTokenizer(do_lower_case=True)

    # Property ranges over the whole code space.
    ranges = []
    prev = None
    for cp in range(MAXCP):
        p = props_of(cp, pats, basic)
        if p != prev:
            ranges.append((cp, p))
            prev = p
    assert max(p for _, p in ranges) < (1 << 16)

    runs, multi = lower_runs()
    assert all(len(m) <= 3 for _, m in multi)

    # Canonical decompositions (full, already canonically ordered), Hangul excluded.
    decomp = []
    for cp in range(MAXCP):
        if 0xD800 <= cp <= 0xDFFF or SBASE <= cp < SBASE + SCOUNT:
            continue
        d = unicodedata.normalize("NFD", chr(cp))
        if d != chr(cp):
            decomp.append((cp, [ord(c) for c in d]))
    # The Hangul algorithm in tokenizer.c must agree with Python.
    L, V, T, NV, NT = 0x1100, 0x1161, 0x11A7, 21, 28
    for s in range(SCOUNT):
        want = [L + s // (NV * NT), V + (s % (NV * NT)) // NT] + ([T + s % NT] if s % NT else [])
        assert [ord(c) for c in unicodedata.normalize("NFD", chr(SBASE + s))] == want
    assert max(len(d) for _, d in decomp) <= 15
    # Decomposed characters never decompose further (so one lookup suffices).
    dset = {cp for cp, _ in decomp}
    assert all(c not in dset and not (SBASE <= c < SBASE + SCOUNT) for _, d in decomp for c in d)

    # Canonical combining classes as (start, end, ccc) runs.
    ccc = []
    for cp in range(MAXCP):
        c = unicodedata.combining(chr(cp))
        if c:
            if ccc and ccc[-1][1] == cp - 1 and ccc[-1][2] == c:
                ccc[-1] = (ccc[-1][0], cp, c)
            else:
                ccc.append((cp, cp, c))

    o = []
    o.append("/* Generated by tools/gen_unicode_tables.py -- do not edit.")
    o.append(" * Python %s, unicodedata %s, regex %s." % (
        sys.version.split()[0], unicodedata.unidata_version, regex.__version__))
    o.append(" * Unicode data for the CLIP tokenizer (src/models/tokenizer.c); see unicode.h. */")
    o.append('#include "models/unicode.h"')
    o.append("")
    o.append('const char uc_unicode_version[] = "%s";' % unicodedata.unidata_version)
    o.append("")
    o.append("/* (first code point, property bits) -- a range runs to the next entry's start. */")
    o.append("const uc_range uc_props[] = {")
    o.append(fmt_list(["{0x%X,0x%X}," % (s, p) for s, p in ranges], 8))
    o.append("};")
    o.append("const int uc_props_len = %d;" % len(ranges))
    o.append("")
    o.append("/* str.lower(): for cp in [first, last] with (cp - first) %% stride == 0, lower = cp + delta. */")
    o.append("const uc_lower_run uc_lower[] = {")
    o.append(fmt_list(["{0x%X,0x%X,%d,%d}," % r for r in runs], 6))
    o.append("};")
    o.append("const int uc_lower_len = %d;" % len(runs))
    o.append("/* Lowercase mappings to more than one code point: {cp, a, b, c} (0 = none). */")
    o.append("const uint32_t uc_lower_multi[][4] = {")
    o.append(fmt_list(["{0x%X,%s}," % (cp, ",".join("0x%X" % c for c in (m + [0] * (3 - len(m)))))
                       for cp, m in multi], 4))
    o.append("};")
    o.append("const int uc_lower_multi_len = %d;" % len(multi))
    o.append("")
    flat, idx = [], []
    for cp, d in decomp:
        idx.append((cp, len(flat), len(d)))
        flat.extend(d)
    assert len(flat) < (1 << 16)
    o.append("/* Full canonical decomposition (NFD of one code point, Hangul syllables excluded):")
    o.append(" * {cp, offset into uc_decomp_data, length}, sorted by cp. */")
    o.append("const uc_decomp_entry uc_decomp[] = {")
    o.append(fmt_list(["{0x%X,%d,%d}," % e for e in idx], 6))
    o.append("};")
    o.append("const int uc_decomp_len = %d;" % len(idx))
    o.append("const uint32_t uc_decomp_data[] = {")
    o.append(fmt_list(["0x%X," % c for c in flat], 10))
    o.append("};")
    o.append("")
    o.append("/* Canonical combining class runs {first, last, ccc}; absent = 0. */")
    o.append("const uc_ccc_run uc_ccc[] = {")
    o.append(fmt_list(["{0x%X,0x%X,%d}," % r for r in ccc], 6))
    o.append("};")
    o.append("const int uc_ccc_len = %d;" % len(ccc))
    o.append("")
    with open(out_path, "w", encoding="ascii") as f:
        f.write("\n".join(o))
    print("%s: %d property ranges, %d lower runs, %d multi, %d decompositions (%d cps), %d ccc runs"
          % (out_path, len(ranges), len(runs), len(multi), len(idx), len(flat), len(ccc)))


if __name__ == "__main__":
    main()
