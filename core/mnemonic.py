"""助记码: the pinyin initials of a name, e.g. 北京华信科技 → BJHXKJ."""
import re

from pypinyin import Style, lazy_pinyin

MAX_LENGTH = 64


def mnemonic(text):
    if not text:
        return None
    initials = lazy_pinyin(str(text), style=Style.FIRST_LETTER, errors=lambda chars: list(chars))
    code = re.sub(r"[^0-9A-Za-z]", "", "".join(initials)).upper()
    return code[:MAX_LENGTH] or None
