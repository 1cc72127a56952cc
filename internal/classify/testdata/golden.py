#!/usr/bin/env python3
"""Writes golden.jsonl: what the reference article's classify_prompt (Python 3)
says about a few thousand texts, so that the Go port can be checked against
Python itself rather than against our reading of it.

Run from this directory: python3 golden.py
Deterministic (fixed seed). Each line: {"rules", "text", "tier", "word_count",
"complex_hits", "moderate_hits"}. "default" rules are the article's code
verbatim; "custom" rules (golden_rules.json) compile each keyword alternative
as re.compile(r"\\b" + re.escape(alt) + r"\\b") on prompt.lower(), which is how
the Go classifier defines configured keywords.
"""
import json
import random
import re

# --- the article's function, verbatim apart from returning the counts ---
def classify_prompt(prompt):
    word_count = len(prompt.split())

    complex_signals = [
        r"\banalyze\b", r"\bcompare\b", r"\bdesign\b", r"\barchitect\b",
        r"\brefactor\b", r"\bdebug\b", r"\boptimize\b", r"\bprove\b",
        r"\btrade-?offs?\b", r"\bimplications?\b",
    ]
    moderate_signals = [
        r"\bexplain\b", r"\bwrite\b", r"\bimplement\b", r"\bcreate\b",
        r"\bsummarize\b", r"\btranslate\b",
    ]

    lower = prompt.lower()
    complex_hits = sum(1 for p in complex_signals if re.search(p, lower))
    moderate_hits = sum(1 for p in moderate_signals if re.search(p, lower))

    if complex_hits >= 2 or (complex_hits >= 1 and word_count > 50):
        tier = "complex"
    elif moderate_hits >= 1 or word_count > 30:
        tier = "moderate"
    else:
        tier = "simple"
    return tier, word_count, complex_hits, moderate_hits


RULES = json.load(open("golden_rules.json"))


def compile_list(entries):
    return [[re.compile(r"\b" + re.escape(alt.lower()) + r"\b") for alt in e.split("|")] for e in entries]


CUSTOM_COMPLEX = compile_list(RULES["complex_keywords"])
CUSTOM_MODERATE = compile_list(RULES["moderate_keywords"])


def classify_custom(prompt):
    r = RULES
    word_count = len(prompt.split())
    lower = prompt.lower()
    ch = sum(1 for alts in CUSTOM_COMPLEX if any(p.search(lower) for p in alts))
    mh = sum(1 for alts in CUSTOM_MODERATE if any(p.search(lower) for p in alts))
    if ch >= r["complex_min_hits"] or (ch >= r["complex_long_hits"] and word_count > r["complex_long_words"]):
        tier = "complex"
    elif mh >= r["moderate_min_hits"] or word_count > r["moderate_long_words"]:
        tier = "moderate"
    else:
        tier = "simple"
    return tier, word_count, ch, mh


FIXED = [
    "", " ", "What is the capital of France?",
    "Explain how gradient descent works with momentum",
    "Analyze the tradeoffs between LORA and full fine-tuning for a 70B parameter model, compare memory usage and downstream task performance",
    "Analyze the tradeoffs between vector databases and traditional full-text search for a RAG pipeline handling 10M documents",
    "trade-off", "trade-offs", "tradeoff", "tradeoffs", "trade--off", "trade_off", "tradeoffss", "a trade-offs.",
    "implication", "implications", "implicationss", "IMPLICATIONS!",
    "redesign", "writer", "explained", "write_code", "(debug)", "Analyze,", "ANALYZE", "AnAlYzE",
    "design design design", "design-design", "design2", "2design", "désign", "designé",
    "İmplement", "implementİ", "ıMPLEMENT", "DESİGN", "debug\u0307", "\u0301debug", "deb\u00adug",
    "write\u200bcode", "write\u00a0code", "write\x1ccode", "write\x1fcode", "write\u3000code", "write\u2028code",
    "write\u180ecode", "write\u0085code", "ANAL\u212aYZE", "\u212a8s",
    "ΟΔΟΣ", "οδος", "οδοσ", "ΟΔΟΣ.", "ΟΔΟΣ.Α", "ΟΔΟΣ'", "Σ", "ΑΣ", "ΣΟΦΙΑ", "ΑΣΟΦΙΑ", "σοφια σοφίας",
    "trade off", "trade  off", "trade\toff", "TRADE OFF", "naïve", "NAÏVE", "nai\u0308ve", "c3po", "C3PO", "x_y", "X_Y",
    "straße", "STRASSE", "STRAẞE", "i", "İ", "I", "k8s", "K8S", "\u212a8S",
]


def words(n, w="word"):
    return " ".join([w] * n)


for n in (29, 30, 31, 32, 49, 50, 51, 52):
    FIXED.append(words(n))
    FIXED.append("design " + words(n - 1))
    FIXED.append("write " + words(n - 1))
    FIXED.append("design compare " + words(max(n - 2, 0)))

PIECES = [
    "analyze", "Analyze", "ANALYZE", "compare", "design", "Design", "architect", "refactor", "debug", "optimize",
    "prove", "trade", "-", "off", "offs", "s", "tradeoff", "Trade-Offs", "implication", "Implications",
    "explain", "write", "Write", "implement", "create", "summarize", "translate", "re", "er", "ed", "_",
    " ", " ", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
    "\u1680", "\u2000", "\u2007", "\u200a", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u180e", "\ufeff",
    ",", ".", "(", ")", "!", "?", "'", ":", "\"", "/", "0", "7", "42", "é", "É", "中文", "日本語", "🙂", "ǅ", "ǆ", "ß", "ẞ",
    "Ⅷ", "ⅷ", "²", "½", "İ", "ı", "Σ", "σ", "ς", "ΟΔΟΣ", "οδος", "σοφια", "ΣΟΦΙΑ", "\u0301", "\u0307", "\u00ad",
    "\u212a", "k8s", "c3po", "x_y", "naïve", "ï", "straße", "i", "I", "word", "the", "and", "of", "Ω", "ω",
]

rng = random.Random(20240501)
texts = list(FIXED)
for _ in range(3000):
    k = rng.randint(0, 40)
    texts.append("".join(rng.choice(PIECES) for _ in range(k)))

with open("golden.jsonl", "w", encoding="utf-8") as out:
    for t in texts:
        for name, fn in (("default", classify_prompt), ("custom", classify_custom)):
            tier, wc, ch, mh = fn(t)
            out.write(json.dumps({"rules": name, "text": t, "tier": tier, "word_count": wc,
                                  "complex_hits": ch, "moderate_hits": mh}, ensure_ascii=True) + "\n")
