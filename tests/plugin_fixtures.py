"""Small metadata and plugins the tests register through the public hook API."""
from crm.hooks import hookimpl

DEAL = {
    "name": "deal",
    "label": {"zh_CN": "交易", "en": "Deal"},
    "title_field": "title",
    "fields": {
        "title": {"type": "text", "label": {"zh_CN": "标题", "en": "Title"}, "required": True, "searchable": True, "max_length": 100},
        "code": {"type": "autonumber", "autonumber": "JY{YYYY}{MM}-{###}", "label": "编号"},
        "mnemonic": {"type": "mnemonic", "source": "title", "label": "助记码"},
        "stage": {"type": "select", "dictionary": "deal_stage", "label": "阶段", "default": "new"},
        "amount": {"type": "money", "label": "金额", "min": 0},
        "quantity": {"type": "integer", "label": "数量"},
        "price": {"type": "decimal", "label": "单价"},
        "total": {"type": "computed", "result_type": "decimal", "expression": {"*": [{"var": "quantity"}, {"var": "price"}]}},
        "lost_reason": {"type": "text", "label": "丢单原因",
                        "visible_if": {"==": [{"var": "stage"}, "lost"]}, "required_if": {"==": [{"var": "stage"}, "lost"]}},
        "closed_on": {"type": "date", "label": "成交日期"},
        "email": {"type": "email", "label": "邮箱", "unique": True},
        "partner_id": {"type": "link", "entity": "partner", "label": "伙伴"},
        "partners": {"type": "links", "entity": "partner", "label": "相关伙伴"},
        "lines": {"type": "table", "entity": "deal_line", "label": "明细"},
    },
    "indexes": [{"fields": ["stage", "created_at"]}],
    "default_sort": "-created_at",
    "list_columns": ["code", "title", "stage", "amount"],
    "layout": {"tabs": [{"id": "main", "label": "基本", "sections": [{"id": "basic", "fields": ["title", "stage", "amount"]}]}]},
}
DEAL_LINE = {
    "name": "deal_line", "label": "明细", "child_of": "deal",
    "fields": {"product": {"type": "text", "required": True}, "qty": {"type": "integer", "min": 1}},
}
PARTNER = {
    "name": "partner", "label": {"zh_CN": "伙伴", "en": "Partner"},
    "fields": {"name": {"type": "text", "required": True, "searchable": True}, "city": {"type": "text"}},
}
STAGES = {
    "dictionary": "deal_stage", "label": "阶段",
    "items": [{"value": "new", "label": {"zh_CN": "新建", "en": "New"}},
              {"value": "won", "label": {"zh_CN": "赢单", "en": "Won"}},
              {"value": "lost", "label": {"zh_CN": "丢单", "en": "Lost"}}],
}


class DealsPlugin:
    """A plugin contributing entities and a dictionary as dicts."""

    @hookimpl
    def crm_metadata(self):
        return [DEAL, DEAL_LINE, PARTNER, STAGES]


def deals_plugin():
    return ("deals", DealsPlugin())
