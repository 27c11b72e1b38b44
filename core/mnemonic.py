"""助记码: the pinyin initials of a name, e.g. 北京华信科技 → BJHXKJ."""
import functools
import itertools
import re

from pypinyin import Style, lazy_pinyin
from pypinyin.constants import PHRASES_DICT, RE_HANS
from pypinyin.seg import mmseg

MAX_LENGTH = 64
NOT_CODE = re.compile(r"[^0-9A-Za-z]")


def mnemonic(text):
    if not text:
        return None
    # pypinyin segments the text into words (有限公司, 重庆 …) and converts word by word; doing the
    # same with a cache per word gives the same initials ~10× faster (names share their words)
    code = NOT_CODE.sub("", "".join(_initials(word) for word in _words(str(text)))).upper()
    return code[:MAX_LENGTH] or None


@functools.lru_cache(maxsize=100_000)
def _initials(word):
    return "".join(lazy_pinyin(word, style=Style.FIRST_LETTER, errors=lambda chars: list(chars)))


@functools.lru_cache(maxsize=50_000)
def _is_han(char):
    return RE_HANS.match(char) is not None


def _words(text):
    """What ``pypinyin.core.Pinyin().seg(text)`` gives (pypinyin.seg.simpleseg.seg): the text split
    into runs of Han characters and runs of others, each Han run cut into the words of pypinyin's
    phrase dictionary by its forward maximum matching (pypinyin.seg.mmseg.Seg.cut) — the same
    steps without a regular-expression match per character and a method call per prefix, which
    were most of the time an import of 100 000 names spent on 助记码 (tests/test_create_many.py
    compares the result with pypinyin's)."""
    words = []
    for han, run in itertools.groupby(text, _is_han):
        run = "".join(run)
        if han and PHRASES_DICT:
            _cut(run, mmseg.seg._prefix_set._set, mmseg.seg._no_non_phrases, words)
        else:
            words.append(run)
    return words


def _cut(text, prefixes, strict, out):
    """pypinyin.seg.mmseg.Seg.cut, step by step, appending to ``out``."""
    remain = text
    while remain:
        matched, last_valid_word, last_valid_index = "", "", 0
        for index in range(len(remain)):
            word = remain[:index + 1]
            if word in prefixes:
                matched = word
                if not strict or word in PHRASES_DICT:
                    last_valid_word, last_valid_index = word, index + 1
                continue
            if last_valid_word:
                out.append(last_valid_word)
                remain = remain[last_valid_index:]
            elif strict or not matched:
                out.append(remain[0])
                remain = remain[1:]
            else:
                out.append(matched)
                remain = remain[len(matched):]
            break
        else:
            if last_valid_word:
                out.append(last_valid_word)
                remain = remain[last_valid_index:]
            else:
                if strict and remain not in PHRASES_DICT:
                    out.extend(remain)
                else:
                    out.append(remain)
                break
