"""``row_style`` metadata: list rows (and related lists) coloured by a condition in the expression
language, evaluated on the server; conditions are checked at start-up; layers change the rules."""
import pytest

from crm.core import registry
from crm.hooks import hookimpl
from tests.api_fixtures import create_user
from tests.plugin_fixtures import DEAL, DEAL_LINE, PARTNER, STAGES
from tests.test_pages import Site, records_of

STYLES = {"extends": "deal", "row_style": [
    {"id": "big_lost", "when": {"and": [{"==": [{"var": "stage"}, "lost"]}, {">=": [{"var": "amount"}, 10000]}]},
     "style": "danger", "label": {"zh_CN": "大单丢失", "en": "Big deal lost"}},
    {"id": "won", "when": {"==": [{"var": "stage"}, "won"]}, "style": "success"},
    {"id": "lost", "when": {"==": [{"var": "stage"}, "lost"]}, "style": "muted"},
]}


class Styled:
    def __init__(self, *extra):
        self.extra = extra

    @hookimpl
    def crm_metadata(self):
        return [DEAL, DEAL_LINE, PARTNER, STAGES, STYLES, *self.extra]


def styles(page):
    return {tr.select_one("a.row-link").get_text(strip=True): (tr.get("data-style"), tr.get("title"))
            for tr in page.html.select(".list-table tbody tr")}


def test_list_rows_take_the_first_matching_style(make_runtime):
    runtime = make_runtime(plugins=[("styled", Styled())], enabled="styled")
    create_user(runtime, "admin")
    site = Site(runtime)
    site.login()
    with records_of(runtime, 1) as records:
        partner = records.create("partner", {"name": "甲方"})
        for title, stage, amount in (("大单", "lost", 20000), ("小单", "lost", 10), ("赢了", "won", 5), ("进行中", "new", 1)):
            records.create("deal", {"title": title, "stage": stage, "amount": amount, "partner_id": partner["id"],
                                    **({"lost_reason": "价格"} if stage == "lost" else {})})
    page = site.get("/app/deal")
    assert {k: v for k, v in styles(page).items() if k in ("大单", "小单", "赢了", "进行中")} == {
        "大单": ("danger", "大单丢失"), "小单": ("muted", None), "赢了": ("success", None), "进行中": (None, None)}
    row = page.html.select_one('.list-table tr[data-style="danger"]')
    assert "row-danger" in row["class"] and row.select_one(".sr-only").text == "大单丢失"
    english = site.get("/app/deal", params={"_LOCALE_": "en"})
    assert english.html.select_one('.list-table tr[data-style="danger"]')["title"] == "Big deal lost"
    related = site.get(f"/app/partner/{partner['id']}")                       # the partner's deals tab
    assert sorted(tr["data-style"] for tr in related.html.select('tr[data-style]')) == ["danger", "muted", "success"]


def test_a_layer_changes_the_rules_by_id(make_runtime):
    quieter = {"extends": "deal", "row_style": {"$merge": [{"id": "big_lost", "style": "warning"}], "$remove": ["won"]}}
    runtime = make_runtime(plugins=[("styled", Styled(quieter))], enabled="styled")
    assert [(r["id"], r["style"]) for r in runtime.metadata["deal"].spec["row_style"]] == [("big_lost", "warning"), ("lost", "muted")]


@pytest.mark.parametrize("rule, pointer", [
    ({"id": "x", "when": {"==": [{"var": "ghost"}, 1]}, "style": "danger"}, "/row_style/0/when/==/0"),
    ({"id": "x", "when": {"frobnicate": [1]}, "style": "danger"}, "/row_style/0/when"),
    ({"id": "x", "when": True, "style": "purple"}, "/row_style/0/style"),
    ({"when": True, "style": "danger"}, "/row_style/0"),
])
def test_bad_rules_stop_start_up_with_their_pointer(rule, pointer):
    with pytest.raises(registry.MetadataError) as failed:
        registry.build([("styled", [DEAL, DEAL_LINE, PARTNER, STAGES, {"extends": "deal", "row_style": [rule]}])])
    assert any(p.pointer.startswith(pointer) for p in failed.value.problems), [p.pointer for p in failed.value.problems]
