"""助记码: the pinyin initials of a name, e.g. 北京华信科技 → BJHXKJ."""
import functools
import re

from pypinyin import Style, lazy_pinyin
from pypinyin.core import Pinyin

MAX_LENGTH = 64
NOT_CODE = re.compile(r"[^0-9A-Za-z]")
_segmenter = Pinyin()


def mnemonic(text):
    if not text:
        return None
    # pypinyin segments the text into words (有限公司, 重庆 …) and converts word by word; doing the
    # same with a cache per word gives the same initials ~10× faster (names share their words)
    code = NOT_CODE.sub("", "".join(_initials(word) for word in _segmenter.seg(str(text)))).upper()
    return code[:MAX_LENGTH] or None


@functools.lru_cache(maxsize=100_000)
def _initials(word):
    return "".join(lazy_pinyin(word, style=Style.FIRST_LETTER, errors=lambda chars: list(chars)))
