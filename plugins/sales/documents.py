"""Quotes and orders (报价单, 销售订单): totals from the product lines, and the documents one step of
the sales chain makes from the previous one (报价 → 合同, 报价/合同 → 订单).

Totals: each line's ``amount`` is a computed field (quantity × unit price × (1 − discount %));
a line with a product and no unit price (or unit) takes the product's; ``subtotal`` is the sum
of the lines and ``total`` = subtotal − ``discount_amount`` (整单优惠, which may not exceed the
subtotal). Child rows are not given to the ``crm_before_*`` hooks, so the totals are written
after the save, as derived values, and put into the record the caller gets back.
"""
from decimal import Decimal

import sqlalchemy as sa

from crm.core.errors import Conflict
from crm.hooks import Veto

from .common import evaluate, row, say

WITH_LINES = ("quote", "sales_order")


def refresh_totals(ctx, entity, record):
    """Fill line prices from products, then write subtotal and total (and update ``record``)."""
    field = entity.fields["lines"]
    child = ctx.entity(field.entity)
    subtotal = Decimal(0)
    for line in record.get("lines") or []:
        product = row(ctx, "product", line.get("product_id")) if line.get("product_id") else None
        fill = {}
        if product and line.get("unit_price") is None and product.get("price") is not None:
            fill["unit_price"] = product["price"]
        if product and not line.get("unit") and product.get("unit"):
            fill["unit"] = product["unit"]
        if fill:
            line.update(fill)
            fill["amount"] = line["amount"] = evaluate(child, "amount", line, ctx.today())
            ctx.session.execute(child.table.update().where(child.table.c.id == line["id"]).values(fill))
        subtotal += Decimal(line.get("amount") or 0)
    discount = Decimal(record.get("discount_amount") or 0)
    if discount > subtotal:
        raise Veto(say(ctx, f"整单优惠 {discount:,.2f} 不能超过明细合计 {subtotal:,.2f}",
                       f"the order discount {discount:,.2f} exceeds the subtotal {subtotal:,.2f}"), field="discount_amount")
    totals = {"subtotal": subtotal, "total": subtotal - discount}
    if any(record.get(k) is None or Decimal(record[k]) != v for k, v in totals.items()):
        ctx.set_derived(entity.name, record["id"], totals)
    record.update(totals)
    return totals["total"]


def _lines_of(ctx, name, record_id):
    child = ctx.entity(ctx.entity(name).fields["lines"].entity)
    stmt = sa.select(child.table).where(child.table.c.parent_id == record_id).order_by(child.table.c.sort_order, child.table.c.id)
    keep = ("product_id", "description", "quantity", "unit", "unit_price", "discount")
    return [{k: child.fields[k].ftype.to_json(r[k]) for k in keep} for r in ctx.session.execute(stmt).mappings()]


def contract_from_quote(records, quote_id):
    """报价 → 合同: a draft contract with the quote's customer, contact, opportunity and total."""
    quote = records.get("quote", quote_id)
    return records.create("contract", {
        "name": quote["subject"], "customer_id": quote["customer_id"], "contact_id": quote.get("contact_id"),
        "opportunity_id": quote.get("opportunity_id"), "quote_id": quote["id"], "amount": str(quote.get("total") or 0),
        "terms": quote.get("terms")})


def order_from(records, source, source_id):
    """合同/报价 → 订单: a draft order linked to the contract (or quote), with the quote's lines and
    order discount. A contract without a quote gives one line for its amount, to be split up as
    needed. Contracts make orders once approved (or signed)."""
    document = records.get(source, source_id)
    values = {"customer_id": document["customer_id"], "contact_id": document.get("contact_id"), "status": "draft"}
    if source == "contract":
        if document.get("status") not in ("approved", "signed"):
            raise Conflict(say(records, "只有已审批或已签订的合同才能生成订单", "only approved or signed contracts make orders"),
                           {"status": document.get("status") or ""})
        values.update(contract_id=document["id"], subject=document["name"])
        quote = records.get("quote", document["quote_id"]) if document.get("quote_id") else None
    else:
        values.update(subject=document["subject"])
        quote = document
    lines = _lines_of(records, "quote", quote["id"]) if quote else []
    if lines:
        values.update(quote_id=quote["id"], discount_amount=str(quote.get("discount_amount") or 0))
    elif source == "contract":
        lines = [{"description": f"{document['code']} {document['name']}"[:300], "quantity": 1, "unit_price": str(document["amount"])}]
    return records.create("sales_order", {**{k: v for k, v in values.items() if v is not None}, "lines": lines})
