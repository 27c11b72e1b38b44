"""Deep merge of metadata layers, with explicit list operations.

A dict merges key by key; a scalar or a plain list in the overlay replaces the base value; a list
operation changes the base list instead:

    {"$append": [...]}   items added at the end (items already there are skipped)
    {"$prepend": [...]}  items added at the start
    {"$remove": [...]}   items taken out
    {"$merge": [...]}    objects matched by their "id" are deep-merged, new ids appended
"""
import copy

LIST_OPS = ("$append", "$prepend", "$remove", "$merge")


def is_list_op(value):
    return isinstance(value, dict) and value and all(k in LIST_OPS for k in value)


def apply_list_op(base, op):
    result = list(base or [])
    for item in op.get("$remove", []):
        result = [x for x in result if x != item and not (isinstance(x, dict) and x.get("id") == item)]
    for item in op.get("$merge", []):
        for i, existing in enumerate(result):
            if isinstance(existing, dict) and existing.get("id") == item["id"]:
                result[i] = deep_merge(existing, item)
                break
        else:
            result.append(resolve(item))
    result = [resolve(x) for x in op.get("$prepend", []) if x not in result] + result
    result += [resolve(x) for x in op.get("$append", []) if x not in result]
    return result


def resolve(value):
    """A value with any list operations applied against nothing (when there is no base)."""
    if is_list_op(value):
        return apply_list_op([], value)
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    return copy.deepcopy(value)


def deep_merge(base, overlay):
    """A new value: ``overlay`` merged onto ``base``; neither argument is changed."""
    if is_list_op(overlay):
        return apply_list_op(base if isinstance(base, list) else [], overlay)
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in overlay.items():
            merged[key] = deep_merge(base[key], value) if key in base else resolve(value)
        return merged
    return resolve(overlay)
